"""``megastyle app`` in a real browser (Debian's chromium through Playwright) and through its HTTP API.

Each tab is driven end to end on a quickstart-scale run (``conftest.served_app``): uploads, clicks and
the results they show, as a user would. Every page checks on its way out that it asked no host but the
app and that no script failed; screenshots of each tab land in ``<basetemp>/app-screenshots``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import socket
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

README = Path(__file__).resolve().parents[2] / "README.md"
API_NAMES = {"/transfer", "/open_index", "/search", "/compare", "/open_dataset", "/styles"}


# ----- helpers ----------------------------------------------------------------------------------
def upload(page: Page, component: str, path: Path) -> None:
    """Upload ``path`` into a file component (clearing the file it holds first, as a user would)."""
    clear = page.locator(f'{component} button[aria-label="Clear"]')
    if clear.count():
        clear.click()
    page.locator(f"{component} input[type=file]").set_input_files(str(path))


def grid(page: Page, gallery: str) -> Any:
    """The gallery's images in grid view."""
    return page.locator(f"{gallery} .grid-container .thumbnail-item")


def captions(page: Page, gallery: str) -> list[str]:
    return [
        text.strip() for text in page.locator(f"{gallery} .grid-container .caption-label").all_inner_texts()
    ]


def toast(page: Page, text: str) -> Any:
    return page.locator(".toast-body", has_text=text)


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def shoot(page: Page, folders: list[Path], name: str) -> None:
    for folder in folders:
        page.screenshot(path=folder / f"{name}.png", full_page=True)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


# ----- style transfer ---------------------------------------------------------------------------
def test_transfer_makes_prompts_times_count_images_with_seeds_and_scores_and_a_download(
    app_page: Page, served_app: Any, images: dict[str, Path], screenshots: list[Path]
) -> None:
    page = app_page
    reference = page.locator("#transfer-reference img")
    # A style picked from the dataset becomes the reference; an upload replaces it.
    page.locator("#transfer-pick .thumbnail-item").nth(1).click()
    expect(reference).to_be_visible()
    picked = reference.get_attribute("src")
    upload(page, "#transfer-reference-upload", images["a"])
    expect(reference).not_to_have_attribute("src", picked or "")

    page.locator("#transfer-prompts textarea").fill("A bench\nA car")
    count = page.locator("#transfer-count input[type=number]")
    count.fill("2")
    count.press("Enter")
    page.locator("#transfer-run").click()
    expect(grid(page, "#transfer-gallery")).to_have_count(4)  # 2 prompts × 2 images
    expected = [("A bench", 42), ("A bench", 43), ("A car", 44), ("A car", 45)]  # seed 42 + i
    got = captions(page, "#transfer-gallery")
    assert len(got) == 4
    for caption, (prompt, seed) in zip(got, expected, strict=True):
        assert re.fullmatch(rf"{prompt} · seed {seed}, style score -?\d\.\d{{3}}", caption), caption
    expect(page.locator("#transfer-status")).to_contain_text("4 images")

    # The download: one zip with the reference, every image and a manifest naming each seed.
    link = page.locator("#transfer-download a[data-testid=download-link]")
    expect(link).to_have_attribute("download", re.compile(r"^[\w-]+\.zip$"))
    body = page.request.get(link.get_attribute("href") or "").body()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = sorted(Path(name).name for name in archive.namelist())
        manifest = json.loads(
            next(archive.read(n) for n in archive.namelist() if n.endswith("manifest.json"))
        )
    assert names == sorted(["reference.png", "manifest.json", *(r["file"] for r in manifest["images"])])
    assert [(r["prompt"], r["seed"]) for r in manifest["images"]] == expected
    shoot(page, screenshots, "transfer")


# ----- style search -----------------------------------------------------------------------------
HIT = re.compile(r"#(\d+) (s\d+_c\d+): score (-?\d\.\d{3}), (\d+)th percentile \| In the style of .+")


def test_search_ranks_by_score_with_percentiles_more_like_this_and_compare(
    app_page: Page, images: dict[str, Path], screenshots: list[Path]
) -> None:
    page = app_page
    open_tab(page, "Style search")
    expect(page.locator("#search-status")).to_contain_text("images")
    upload(page, "#search-query-upload", images["a"])
    expect(page.locator("#search-query img")).to_be_visible()
    page.locator("#search-run").click()
    results = grid(page, "#search-gallery")
    expect(results).to_have_count(12)  # the slider's default k
    hits = [HIT.fullmatch(caption) for caption in captions(page, "#search-gallery")]
    assert all(hits), captions(page, "#search-gallery")
    assert [int(h[1]) for h in hits] == list(range(1, 13))  # type: ignore[index]
    scores = [float(h[3]) for h in hits]  # type: ignore[index]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= int(h[4]) <= 100 for h in hits)  # type: ignore[index]

    # A click on a result: more like it, itself first (a score of 1), and it becomes the query.
    query_src = page.locator("#search-query img").get_attribute("src")
    chosen = hits[3][2]  # type: ignore[index]
    results.nth(3).click()
    expect(page.locator("#search-gallery .grid-container .caption-label").first).to_contain_text(
        f"#1 {chosen}: score 1.000"
    )
    expect(results).to_have_count(12)
    expect(page.locator("#search-query img")).not_to_have_attribute("src", query_src or "")

    # Compare two uploads: the official script's line.
    page.get_by_text("Compare two images").click()
    upload(page, "#compare-a", images["a"])
    upload(page, "#compare-b", images["b"])
    expect(page.locator('#compare-a a[download="a.png"]')).to_have_count(1)
    expect(page.locator('#compare-b a[download="b.png"]')).to_have_count(1)
    page.locator("#compare-run").click()
    expect(page.locator("#compare-output textarea")).to_have_value(
        re.compile(r"^=> style score: -?\d\.\d\d\n=> percentile vs different-style pairs")
    )
    shoot(page, screenshots, "search")

    # Opening an index again (its embeddings are reused) clears the results of the one that was open.
    page.locator("#search-open").click()
    expect(page.locator("#search-status")).to_contain_text("48 images with style labels")
    expect(results).to_have_count(0)


def test_one_user_opening_another_index_leaves_another_users_page_on_its_own(
    app_page: Page, browser: Any, served_app: Any, images: dict[str, Path], tmp_path: Path
) -> None:
    own = tmp_path / "two-images"
    own.mkdir()
    for name in ("a", "b"):
        shutil.copy(images[name], own / f"{name}.png")
    first = app_page
    open_tab(first, "Style search")
    first.locator("#search-source textarea, #search-source input").first.fill(str(own))
    first.locator("#search-open").click()
    expect(first.locator("#search-status")).to_contain_text("2 images")

    # A second user, who opened the page before or after: still the run's index of 48 images.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        second = context.new_page()
        second.set_default_timeout(60_000)
        second.goto(served_app.url)
        open_tab(second, "Style search")
        expect(second.locator("#search-status")).to_contain_text("48 images")
        upload(second, "#search-query-upload", images["a"])
        expect(second.locator("#search-query img")).to_be_visible()
        second.locator("#search-run").click()
        expect(grid(second, "#search-gallery")).to_have_count(12)
    finally:
        context.close()

    # The first user's searches still run over their own two images.
    upload(first, "#search-query-upload", images["b"])
    expect(first.locator("#search-query img")).to_be_visible()
    first.locator("#search-run").click()
    expect(grid(first, "#search-gallery")).to_have_count(2)
    ids = [re.match(r"#\d+ (\S+): score", caption) for caption in captions(first, "#search-gallery")]
    assert all(ids) and {Path(i[1]).stem for i in ids} == {"a", "b"}, captions(first, "#search-gallery")  # type: ignore[index]


# ----- dataset explorer -------------------------------------------------------------------------
def _narrowing_word(explorer: Any, per_page: int) -> str:
    """A word that keeps some styles but not all (on one page), the first of them not the first style."""
    for card in explorer.cards:
        for word in re.findall(r"[a-z]+", card.style.lower()):
            found = explorer.find(word)
            if (
                1 < len(found) <= per_page
                and len(found) < len(explorer.cards)
                and found[0] != explorer.cards[0]
            ):
                return word
    raise AssertionError("no word of the style prompts narrows the styles")


def test_dataset_lists_filters_and_opens_a_style_its_images_a_row_and_the_run(
    app_page: Page, served_app: Any, screenshots: list[Path]
) -> None:
    from megastyle.app.dataset import DatasetExplorer

    truth = DatasetExplorer(served_app.run / "curate")  # what the page must show, from the service itself
    per_page, total = served_app.config.styles_per_page, len(truth.cards)
    page = app_page
    open_tab(page, "Dataset")
    expect(page.locator("#dataset-status")).to_contain_text(f"{total} styles")
    page.locator("#dataset-show").click()
    styles = grid(page, "#dataset-styles")
    expect(styles).to_have_count(min(per_page, total))
    pages = -(-total // per_page)
    expect(page.locator("#dataset-pages")).to_contain_text(
        f"{total} of {total} styles match; page 1 of {pages}"
    )

    word = _narrowing_word(truth, per_page)
    found = truth.find(word)
    page.locator("#dataset-filter textarea").fill(word)
    page.locator("#dataset-show").click()
    expect(page.locator("#dataset-pages")).to_contain_text(f"{len(found)} of {total} styles match")
    expect(styles).to_have_count(len(found))
    assert captions(page, "#dataset-styles") == [truth.style_caption(card) for card in found]

    # Another visitor lists every style meanwhile: this page's list is its own (per-session state).
    other = page.context.new_page()
    other.goto(page.url)
    open_tab(other, "Dataset")
    other.locator("#dataset-show").click()
    expect(grid(other, "#dataset-styles")).to_have_count(min(per_page, total))
    other.close()

    styles.first.click()
    card = found[0]
    style_images = grid(page, "#dataset-style-images")
    expect(style_images).to_have_count(len(card.rows))
    assert captions(page, "#dataset-style-images") == [truth.contents[row] for row in card.rows]
    style_images.nth(1).click()
    record = truth.reader[card.rows[1]]
    expect(page.locator("#dataset-row")).to_contain_text(record.id)
    expect(page.locator("#dataset-row")).to_contain_text(record.content)
    expect(page.locator("#dataset-row-image img")).to_be_visible()

    # The curate run: every stage with what happened, and the rejected items.
    page.get_by_text("The curate run: stages and rejected items").click()
    stages = page.locator("#dataset-stages")
    expect(stages).to_contain_text("what happened")
    for name, sentence, _ in truth.stages():
        expect(stages).to_contain_text(name)
        expect(stages).to_contain_text(sentence[:40])
    for item, _ in truth.rejects()[:3]:
        expect(page.locator("#dataset-rejects")).to_contain_text(item)
    shoot(page, screenshots, "dataset")

    # Opening a dataset (here the run's shards) replaces what this page showed of the one before.
    page.locator("#dataset-source textarea").fill(str(served_app.run / "curate" / "dataset"))
    page.locator("#dataset-open").click()
    expect(page.locator("#dataset-status")).to_contain_text(f"{len(truth.reader)} images, {total} styles")
    expect(styles).to_have_count(0)
    expect(style_images).to_have_count(0)
    expect(page.locator("#dataset-row-image img")).to_have_count(0)


# ----- bad input ----------------------------------------------------------------------------------
def test_a_broken_or_oversized_upload_is_an_error_in_the_page_and_the_next_request_works(
    app_page: Page, images: dict[str, Path]
) -> None:
    page = app_page
    upload(page, "#transfer-reference-upload", images["broken"])
    expect(toast(page, "cannot decode image 'broken.png'")).to_be_visible()
    expect(page.locator("#transfer-reference img")).to_have_count(0)

    open_tab(page, "Style search")
    upload(page, "#search-query-upload", images["huge"])
    expect(toast(page, "exceed the maximum allowed size of 1.0 Mb")).to_be_visible()  # --max-upload-mb
    upload(page, "#search-query-upload", images["broken"])
    expect(toast(page, "query: cannot decode image")).to_be_visible()
    upload(page, "#search-query-upload", images["b"])
    expect(page.locator("#search-query img")).to_be_visible()
    page.locator("#search-run").click()
    expect(grid(page, "#search-gallery")).to_have_count(12)


# ----- safety -------------------------------------------------------------------------------------
def _own_address(served_app: Any) -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    with served_app.network.paused(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_app_listens_on_loopback_only_and_serves_no_file_outside_it(served_app: Any) -> None:
    assert served_app.config.host == "127.0.0.1" and served_app.blocks.server_name == "127.0.0.1"
    assert not served_app.blocks.share and served_app.blocks.share_url is None
    address = _own_address(served_app)
    if address is not None:  # the port is closed on every other interface
        with pytest.raises(OSError):
            socket.create_connection((address, served_app.port), timeout=3).close()

    outside = [
        Path("/etc/hostname"),
        served_app.run / "config.toml",
        served_app.run / "encoder" / "encoder" / "config.json",
        next((served_app.run / "curate" / "dataset").glob("*.parquet")),
    ]
    base = served_app.url.rstrip("/")
    for path in outside:
        escape = f"{served_app.cache}/{'../' * 16}{str(path).lstrip('/')}"  # out of the folder it serves
        for route in ("/gradio_api/file=", "/file="):
            for spelling in (str(path), escape, escape.replace("../", "%2e%2e/")):
                status = http_status(base + route + spelling)
                assert status in (403, 404), f"{route}{spelling} answered {status}"


def test_the_network_log_sees_a_connection_to_another_host(served_app: Any) -> None:
    """The check below can fail: a UDP "connection" (it sends nothing) to a documentation address is seen."""
    log = served_app.network
    before = len(log.outside)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, contextlib.suppress(OSError):
        probe.connect(("192.0.2.1", 9))
    seen = log.outside[before:]
    del log.outside[before:]
    assert seen == [("socket.connect", "192.0.2.1")]


def test_nothing_leaves_the_machine(app_page: Page, served_app: Any) -> None:
    """The page's own check (``app_page``) covers the browser; the audit hook covers the app's process."""
    for tab, shown in (
        ("Style search", "#search-run"),
        ("Dataset", "#dataset-show"),
        ("Style transfer", "#transfer-run"),
    ):
        open_tab(app_page, tab)
        expect(app_page.locator(shown)).to_be_visible()
    assert served_app.network.outside == []


# ----- the HTTP API -----------------------------------------------------------------------------
def test_the_page_functions_are_api_endpoints_and_compare_equals_the_score(
    served_app: Any, images: dict[str, Path]
) -> None:
    from gradio_client import Client, handle_file

    from megastyle.app.search import official_score_line
    from megastyle.encode.model import StyleEncoder, cosine_score

    client = Client(served_app.url, verbose=False)
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == API_NAMES
    line = client.predict(handle_file(images["a"]), handle_file(images["b"]), api_name="/compare")
    encoder = StyleEncoder.from_pretrained(served_app.run / "encoder" / "encoder")
    expected = cosine_score(
        encoder, Image.open(images["a"]).convert("RGB"), Image.open(images["b"]).convert("RGB")
    )
    assert line.splitlines()[0] == official_score_line(expected)


def _readme_app_python() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## The web app\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.M | re.S)
    assert len(blocks) == 1, "the README's web app section has one Python example"
    return blocks[0]


def test_the_readme_api_example_runs_against_the_app(
    served_app: Any, images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    code = _readme_app_python()
    assert "http://127.0.0.1:7860/" in code  # the default address, here replaced by the test's port
    shutil.copy(images["a"], tmp_path / "a.png")
    shutil.copy(images["b"], tmp_path / "b.png")
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("http://127.0.0.1:7860/", served_app.url), str(README), "exec"), {})
    assert re.search(r"^=> style score: -?\d\.\d\d\n=> percentile ", capsys.readouterr().out, flags=re.M)
