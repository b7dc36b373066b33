"""``megastyle app``: build the page and serve it on this machine only (unless told otherwise).

Gradio's public share link is never used, its analytics are off, uploads have a size limit, and no
file is served but the page's own results: the browser gets images from the app, never a path.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console

from megastyle.app.config import AppConfig

console = Console(stderr=True)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def quiet_environment() -> None:
    """Gradio's analytics off and no hub lookups, before gradio is imported; launch may call itself locally."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    no_proxy = {h for h in os.environ.get("NO_PROXY", "").split(",") if h}
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(sorted(no_proxy | {"127.0.0.1", "localhost"}))


def launch(cfg: AppConfig, *, block: bool = True) -> Any:
    """Start the services and serve the page; returns the Blocks (with ``block=False``, at once)."""
    quiet_environment()
    from megastyle.app.services import AppServices
    from megastyle.app.ui import CSS, build_ui

    if cfg.host not in LOOPBACK:
        console.print(
            f"warning: listening on {cfg.host}: anyone who can reach this machine can use the app and its "
            "models; there is no login"
        )
    services = AppServices.start(cfg)
    page = build_ui(services)
    page.queue(default_concurrency_limit=1)  # one GPU: one generation at a time, the others wait in line
    page.launch(
        server_name=cfg.host,
        server_port=cfg.port,
        share=False,
        max_file_size=int(cfg.max_upload_mb * 1024 * 1024),  # bytes
        allowed_paths=[],
        show_error=True,
        prevent_thread_lock=not block,
        quiet=not block,
        ssr_mode=False,
        enable_monitoring=False,
        mcp_server=False,
        footer_links=["api"],
        css=CSS,
    )
    return page


def run_app(cfg: AppConfig) -> None:
    """Serve the app until interrupted."""
    console.print(f"megastyle app on http://{cfg.host}:{cfg.port} (Ctrl+C stops it)")
    launch(cfg, block=True)
