"""``launch``: what it asks Gradio for, and the warning a non-loopback host gets (no server is started)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from megastyle.app import server
from megastyle.app.config import AppConfig


class FakePage:
    """Stands in for the Blocks: records what ``launch`` and ``queue`` were given."""

    def __init__(self) -> None:
        self.launched: dict[str, Any] = {}
        self.queued: dict[str, Any] = {}

    def queue(self, **kwargs: Any) -> None:
        self.queued = kwargs

    def launch(self, **kwargs: Any) -> None:
        self.launched = kwargs


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    import megastyle.app.services as services
    import megastyle.app.ui as ui

    out = io.StringIO()
    monkeypatch.setattr(server, "console", Console(file=out, width=200))
    monkeypatch.setattr(services.AppServices, "start", classmethod(lambda cls, cfg: object()))
    page = FakePage()
    monkeypatch.setattr(ui, "build_ui", lambda _services: page)
    for name in ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_OFFLINE", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    def run(host: str) -> tuple[str, FakePage]:
        server.launch(AppConfig(run=tmp_path, host=host, work_dir=tmp_path / "w"), block=False)
        return out.getvalue(), page

    return run


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_host_other_than_loopback_is_warned_about(launched: Any, host: str) -> None:
    printed, page = launched(host)
    assert f"warning: listening on {host}" in printed and "no login" in printed
    assert page.launched["server_name"] == host


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_gets_no_warning(launched: Any, host: str) -> None:
    printed, _ = launched(host)
    assert "warning" not in printed


def test_never_a_share_link_no_analytics_no_extra_paths_and_one_job_at_a_time(launched: Any) -> None:
    import os

    _, page = launched("127.0.0.1")
    assert page.launched["share"] is False and page.launched["allowed_paths"] == []
    assert page.launched["mcp_server"] is False and page.launched["enable_monitoring"] is False
    assert page.queued == {"default_concurrency_limit": 1}
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False" and os.environ["HF_HUB_OFFLINE"] == "1"
    assert "127.0.0.1" in os.environ["NO_PROXY"].split(",")
