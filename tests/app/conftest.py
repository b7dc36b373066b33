"""The app served for the browser tests: a small quickstart run, started in this process on a free port.

The browser is Debian's ``chromium`` package driven by Playwright (pytest-playwright), never a browser
that ``playwright install`` downloads. Without chromium the browser tests skip, saying why; with
``MEGASTYLE_REQUIRE_BROWSER=1`` (``.ci/run`` sets it) a missing chromium fails them instead.
``MEGASTYLE_CHROMIUM`` names another chromium binary; ``MEGASTYLE_SCREENSHOTS`` a folder that also
receives the screenshots (they always go to the pytest temp folder, ``<basetemp>/app-screenshots``).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REQUIRE_ENV = "MEGASTYLE_REQUIRE_BROWSER"
CHROMIUM_ENV = "MEGASTYLE_CHROMIUM"
SCREENSHOTS_ENV = "MEGASTYLE_SCREENSHOTS"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MAX_UPLOAD_MB = 1.0  # small, so a test can cross it
TIMEOUT_MS = 60_000  # a generation or a search on 2 busy cores


def find_chromium() -> str | None:
    """Debian's chromium (``chromium`` on PATH), or the binary ``MEGASTYLE_CHROMIUM`` names; None if absent."""
    given = os.environ.get(CHROMIUM_ENV)
    if given is not None:
        return given if Path(given).is_file() and os.access(given, os.X_OK) else None
    return shutil.which("chromium")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture starts: no chromium → skip the browser tests (or fail them where it is required)."""
    if "page" not in getattr(item, "fixturenames", ()) or find_chromium() is not None:
        return
    where = os.environ.get(CHROMIUM_ENV) or "chromium on PATH"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(
            f"{REQUIRE_ENV}=1 but there is no browser ({where}): apt-get install chromium", pytrace=False
        )
    pytest.skip(f"no browser ({where}): apt-get install chromium to run the browser tests")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch options, on the system chromium with CI-safe flags."""
    return {**browser_type_launch_args, "executable_path": find_chromium(), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


# ----- nothing leaves the machine, server side --------------------------------------------------
def is_local_host(host: object) -> bool:
    """True for loopback names and addresses (and for Unix sockets, whose address is a path)."""
    if not isinstance(host, str):
        return True  # AF_UNIX paths as bytes, or None
    if host in ("", "localhost") or host.startswith("/"):
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


@dataclass
class NetworkLog:
    """Every connection or name lookup of this process to a host other than loopback, while active.

    An audit hook (``sys.addaudithook``) sees the sockets of every thread: the app's server, its workers
    and the test's own clients. Hooks cannot be removed, so one is installed per process, on first use,
    and switched on while the app serves.
    """

    active: bool = False
    installed: bool = False
    outside: list[tuple[str, str]] = field(default_factory=list)

    def start(self) -> None:
        if not self.installed:
            sys.addaudithook(self.hook)
            self.installed = True
        self.active = True

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "socket.connect":
            address = args[1]
            host = address[0] if isinstance(address, tuple) else address
        elif event == "socket.getaddrinfo":
            host = args[0]
        else:
            return
        if not is_local_host(host):
            self.outside.append((event, str(host)))

    @contextmanager
    def paused(self) -> Iterator[None]:
        """For a test's own deliberate look outside (finding this machine's address)."""
        was, self.active = self.active, False
        try:
            yield
        finally:
            self.active = was


_NETWORK_LOG = NetworkLog()


# ----- the app ------------------------------------------------------------------------------------
@dataclass
class ServedApp:
    """The running app and what it serves."""

    url: str
    port: int
    run: Path
    work_dir: Path
    cache: Path  # Gradio's upload cache: the one folder whose files it serves
    config: Any  # AppConfig
    blocks: Any  # gradio.Blocks
    network: NetworkLog

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def app_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quickstart-scale run (about 15 s): ``curate/dataset``, ``encoder/encoder``, ``tiny_flux_untrained``."""
    from megastyle.quickstart.config import QuickstartConfig
    from megastyle.quickstart.run import run_quickstart

    out = tmp_path_factory.mktemp("app-run") / "qs"
    cfg = QuickstartConfig(
        output_dir=out, style_pool_images=24, content_pool_images=24, num_styles=12, num_content_prompts=16,
        contents_per_style=4, image_size=64, encoder_epochs=2, encoder_caption_epochs=1,
        encoder_caption_comparator=False, leakage_grid=False, holdout_fraction=0.34, progress=False,
    )  # fmt: skip
    run_quickstart(cfg)
    return out


@pytest.fixture(scope="module")
def served_app(app_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """``megastyle app`` on the run, on 127.0.0.1 (the default) and a free port, for one test module."""
    from megastyle.app.config import AppConfig
    from megastyle.app.server import launch

    work = tmp_path_factory.mktemp("app-work")
    with pytest.MonkeyPatch.context() as patch:
        cache = work / "gradio-cache"
        patch.setenv("GRADIO_TEMP_DIR", str(cache))  # uploads and results, not /tmp/gradio
        # The work folder outside both the working directory and the temp folder, like a user's
        # `--work-dir /data/app`: Gradio serves returned files from those two only, unless the app hands
        # them over itself.
        (work / "tmp").mkdir()
        patch.setattr(tempfile, "tempdir", str(work / "tmp"))
        port = free_port()
        cfg = AppConfig(run=app_run, port=port, work_dir=work / "app", max_upload_mb=MAX_UPLOAD_MB)
        _NETWORK_LOG.start()
        blocks = launch(cfg, block=False)
        try:
            url = f"http://127.0.0.1:{port}/"
            yield ServedApp(url, port, app_run, cfg.work_dir, cache, cfg, blocks, _NETWORK_LOG)
        finally:
            _NETWORK_LOG.active = False
            blocks.close()


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Upload files: two images, bytes that are no image, and an image over the upload limit."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    files = {name: folder / f"{name}.png" for name in ("a", "b", "broken", "huge")}
    Image.fromarray((rng.random((48, 48, 3)) * 255).astype("uint8")).save(files["a"])
    Image.fromarray((rng.random((40, 56, 3)) * 255).astype("uint8")).save(files["b"])
    files["broken"].write_bytes(b"these bytes are not an image " * 20)
    side = 720  # random pixels do not compress: about 1.5 MB of PNG
    Image.fromarray((rng.random((side, side, 3)) * 255).astype("uint8")).save(files["huge"])
    assert files["huge"].stat().st_size > MAX_UPLOAD_MB * 1024 * 1024
    return files


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Folders each screenshot goes to: the pytest temp folder, and ``$MEGASTYLE_SCREENSHOTS`` if set."""
    folders = [tmp_path_factory.getbasetemp() / "app-screenshots"]
    if os.environ.get(SCREENSHOTS_ENV):
        folders.append(Path(os.environ[SCREENSHOTS_ENV]))
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def served_by(url: str, app: ServedApp) -> bool:
    """True for the app's own URLs and for those that never touch a network (data:, blob:, about:)."""
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.netloc == app.host


@pytest.fixture
def app_page(page: Any, served_app: ServedApp) -> Iterator[Any]:
    """The app open in a fresh page; afterwards, no request went to another host and no script failed."""
    from playwright.sync_api import expect

    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(served_app.url)
    expect(page.locator("#tabs")).to_be_visible()
    yield page
    outside = sorted({url for url in requests if not served_by(url, served_app)})
    assert requests and not outside, f"the page asked other hosts than the app: {outside}"
    assert not errors, f"script errors in the page: {errors}"
