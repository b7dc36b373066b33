"""The page: three tabs (style transfer, style search, dataset explorer) over ``AppServices``.

Every handler only reads the page's values and calls the services; uploads are decoded by megastyle's
own safe decoder, and a bad input becomes a message in the page while the app keeps serving.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from megastyle.app.search import Hit, StyleSearch
from megastyle.app.services import AppServices
from megastyle.app.transfer import TransferRequest, parse_prompts
from megastyle.config import ConfigError
from megastyle.data import ImageDecodeError, decode_image

OFFICIAL_PROMPTS = "A bench\nA car\nA house with a tree beside"
PICK_STYLES = 24
INTERNAL = "private"  # events of the page only (uploads, clicks): not API endpoints
CAPTIONS_BELOW = "captions-below"
# Gallery cells are squares with a one-line caption over the image, cut at 80 % of its width. In the
# result galleries the caption (seed and score; rank, score, percentile and style) is what the user
# reads, so it goes in full under the image, and the page scrolls rather than the gallery. A style's
# strip (its images side by side) keeps its shape. Passed to ``launch(css=...)`` (Gradio 6).
CSS = f"""
.{CAPTIONS_BELOW} .thumbnail-item {{ aspect-ratio: auto; height: auto; }}
.{CAPTIONS_BELOW} .thumbnail-item > img {{ height: auto; }}
.{CAPTIONS_BELOW} .caption-label {{ position: static; max-width: none; white-space: normal; }}
.{CAPTIONS_BELOW} .fixed-height {{ max-height: none; }}
#dataset-styles .thumbnail-item > img {{ object-fit: contain; }}
"""


def load_upload(path: str | None, what: str) -> Image.Image:
    """An uploaded file decoded by megastyle's decoder (pixel limit, odd modes); a bad file is a page error."""
    if not path:
        raise gr.Error(f"{what}: upload an image first")
    name = Path(path).name
    try:
        return decode_image(Path(path).read_bytes(), item=name)
    except (ImageDecodeError, OSError) as err:
        raise gr.Error(f"{what}: {err}") from err


def _fail(err: Exception) -> gr.Error:
    """A service error as a message in the page (the app keeps serving)."""
    return gr.Error(str(err))


def _offer(path: Path | None) -> str | None:
    """``path`` copied into Gradio's upload cache, the one place it serves files from whatever the work folder.

    Gradio refuses to serve a returned file outside the working directory and the temp folder, and the
    app never widens ``allowed_paths`` (that would serve the whole folder to anyone who can reach it).
    """
    if path is None:
        return None
    from gradio.processing_utils import save_file_to_cache
    from gradio.utils import get_upload_folder

    return save_file_to_cache(path, get_upload_folder())


def _sources_markdown(services: AppServices) -> str:
    s = services.sources
    rows = [
        ("FLUX", s.flux),
        ("LoRA", s.lora),
        ("style encoder", s.encoder),
        ("dataset", s.data),
        ("search", s.index),
    ]
    lines = [f"- **{name}**: {html.escape(served.label)}" for name, served in rows]
    return "Serving, all from this machine (nothing is downloaded, nothing leaves it):\n" + "\n".join(lines)


# ----- style transfer ---------------------------------------------------------------------------
def _pick_gallery(services: AppServices) -> list[tuple[Image.Image, str]]:
    if services.dataset is None:
        return []
    return [
        (services.dataset.thumbnail(card.rows[0]), card.title[:120])
        for card in services.dataset.cards[:PICK_STYLES]
    ]


def _transfer_tab(services: AppServices) -> None:
    tiny = services.sources.tiny_flux
    gr.Markdown(
        "Upload a reference image (or pick a style from the dataset), write one content prompt per line, "
        "and generate. Each image's seed is in its caption."
        + (
            "\n\n**The FLUX here is the quickstart's tiny untrained model: its images are noise.**"
            if tiny
            else ""
        ),
        elem_id="transfer-intro",
    )
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(
                label="Reference style image", file_types=["image"], elem_id="transfer-reference-upload"
            )
            reference = gr.Image(
                label="Reference", type="pil", interactive=False, elem_id="transfer-reference", height=220
            )
            pick = gr.Gallery(
                value=_pick_gallery(services), label="…or pick a style of the dataset", columns=4, height=200,
                allow_preview=False, elem_id="transfer-pick",
            )  # fmt: skip
        with gr.Column(scale=1):
            prompts = gr.Textbox(
                value=OFFICIAL_PROMPTS,
                lines=4,
                label="Content prompts, one per line",
                elem_id="transfer-prompts",
            )
            count = gr.Slider(1, 8, value=1, step=1, label="Images per prompt", elem_id="transfer-count")
            with gr.Row():
                seed = gr.Number(value=42, precision=0, label="Seed", elem_id="transfer-seed")
                random_seed = gr.Checkbox(value=False, label="Random seed", elem_id="transfer-random-seed")
            steps = gr.Slider(1, 50, value=4 if tiny else 30, step=1, label="Steps", elem_id="transfer-steps")
            guidance = gr.Slider(
                1.0, 10.0, value=3.5, step=0.1, label="Embedded guidance", elem_id="transfer-guidance"
            )
            size = gr.Slider(
                32 if tiny else 256,
                1536,
                value=64 if tiny else 512,
                step=16,
                label="Size (square)",
                elem_id="transfer-size",
            )
            schedule = gr.Radio(
                ["official", "diffusers"], value="official", label="Schedule", elem_id="transfer-schedule"
            )
            lora_scale = gr.Slider(
                0.0, 2.0, value=1.0, step=0.05, label="LoRA strength", elem_id="transfer-lora-scale",
                interactive=services.sources.lora.available,
            )  # fmt: skip
            score = gr.Checkbox(
                value=services.encoder is not None, label="Style score of each result (loaded encoder)",
                interactive=services.encoder is not None, elem_id="transfer-score",
            )  # fmt: skip
            run = gr.Button("Generate", variant="primary", elem_id="transfer-run")
    status = gr.Markdown(elem_id="transfer-status")
    gallery = gr.Gallery(  # PNG: the same pixels as the download's files (not a lossy WebP)
        label="Results", columns=4, height="auto", format="png", elem_id="transfer-gallery",
        elem_classes=CAPTIONS_BELOW,
    )  # fmt: skip
    download = gr.File(label="Download: images and manifest.json", elem_id="transfer-download")

    def on_upload(path: str | None) -> Image.Image:
        return load_upload(path, "reference")

    def on_pick(evt: gr.SelectData) -> Image.Image:
        if services.dataset is None:
            raise gr.Error("no dataset is open")
        return services.dataset.reader[services.dataset.cards[evt.index].rows[0]].pil_image()

    def on_run(
        ref,
        text,
        n,
        seed_value,
        rand,
        n_steps,
        g,
        side,
        sched,
        scale,
        with_score,
        progress=gr.Progress(),  # noqa: B008 (gradio finds the tracker by its default)
    ):
        if ref is None:
            raise gr.Error("reference: upload an image or pick a style first")
        request = TransferRequest(
            parse_prompts(text), int(n), int(seed_value or 0), bool(rand), int(n_steps), float(g), int(side), sched,
            float(scale), max_sequence_length=64 if tiny else 512,
        )  # fmt: skip
        total = max(1, len(request.prompts) * request.images_per_prompt * request.steps)
        done = [0]

        def on_step(batch: int) -> None:
            done[0] += batch
            progress(done[0] / total, desc=f"denoising: {done[0]}/{total} image-steps")

        try:
            result = services.transfer.run(
                ref, request, on_step=on_step, scorer=services.encoder if with_score else None
            )
        except (ConfigError, OSError, ValueError) as err:
            raise _fail(err) from err
        message = f"{len(result.images)} images, written to `{result.folder}`"
        if result.failures:
            message += "; failed: " + "; ".join(result.failures[:3])
        return list(zip(result.images, result.captions, strict=True)), message, _offer(result.archive)

    upload.upload(on_upload, upload, reference, api_visibility=INTERNAL)
    pick.select(on_pick, None, reference, api_visibility=INTERNAL)
    run.click(
        on_run, [reference, prompts, count, seed, random_seed, steps, guidance, size, schedule, lora_scale, score],
        [gallery, status, download], api_name="transfer",
    )  # fmt: skip


# ----- style search -----------------------------------------------------------------------------
def _hits_gallery(hits: list[Hit]) -> list[tuple[Image.Image, str]]:
    return [(hit.image, hit.caption) for hit in hits]


def _search_tab(services: AppServices) -> None:
    search = services.search
    gr.Markdown(
        "Open an index, an embeddings file, or a collection to embed (an image folder, a manifest, shards); "
        "then query by upload, or click a result for more like it. Scores are the official style score "
        "(cosine); the percentile ranks it among pairs of different styles of the collection.",
        elem_id="search-intro",
    )
    with gr.Row():
        source = gr.Textbox(
            value=search.source if search else "",
            label="Index, embeddings or collection",
            scale=4,
            elem_id="search-source",
        )
        open_button = gr.Button("Open", elem_id="search-open", scale=1)
    status = gr.Markdown(_search_status(services), elem_id="search-status")
    hits_state = gr.State([])
    # The source this page searches: per session, so one user's Open never changes another's results.
    source_state = gr.State(search.source if search and search.index is not None else "")
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Query image", file_types=["image"], elem_id="search-query-upload")
            query = gr.Image(label="Query", type="pil", interactive=False, height=220, elem_id="search-query")
            k = gr.Slider(1, 48, value=12, step=1, label="Results", elem_id="search-k")
            run = gr.Button("Search", variant="primary", elem_id="search-run")
        with gr.Column(scale=3):
            results = gr.Gallery(
                label="Closest in style (click one for more like it)",
                columns=4,
                height="auto",
                allow_preview=False,  # a click asks for more like it (a preview would show the new list)
                elem_id="search-gallery",
                elem_classes=CAPTIONS_BELOW,
            )
    with gr.Accordion("Compare two images (the official style_score.py line)", open=False, elem_id="compare"):
        with gr.Row():
            a_upload = gr.File(label="Image A", file_types=["image"], elem_id="compare-a")
            b_upload = gr.File(label="Image B", file_types=["image"], elem_id="compare-b")
        compare = gr.Button("Compare", elem_id="compare-run")
        compare_out = gr.Textbox(label="Style score", lines=2, elem_id="compare-output")

    def require(source: str) -> Any:
        if services.encoder is None:
            raise gr.Error("no style encoder: start the app with --encoder DIR (or a .pth and --base-model)")
        if not source:
            raise gr.Error("no index is open: open an index, an embeddings file or a collection first")
        try:
            return services.searcher(source)
        except (ConfigError, OSError, ValueError, ImportError) as err:
            raise _fail(err) from err

    def on_open(path: str, progress=gr.Progress()) -> tuple[str, str]:  # noqa: B008
        try:
            search = services.searcher(
                path.strip(), progress=lambda d, t: progress(d / max(t, 1), desc=f"embedding {d}/{t}")
            )
        except (ConfigError, OSError, ValueError, ImportError) as err:
            raise _fail(err) from err
        return search.summary, search.source

    def on_query(path: str | None) -> Image.Image:
        return load_upload(path, "query")

    def on_search(
        image: Image.Image | None, count: float, source: str
    ) -> tuple[list[tuple[Image.Image, str]], list[Hit]]:
        if image is None:
            raise gr.Error("query: upload an image first")
        try:
            hits = require(source).query_image(image, int(count))
        except (ConfigError, ValueError) as err:
            raise _fail(err) from err
        return _hits_gallery(hits), hits

    def on_more(hits: list[Hit], count: float, source: str, evt: gr.SelectData) -> tuple[Any, Any, list[Hit]]:
        chosen = hits[evt.index]
        try:
            more = require(source).query_item(chosen.index, int(count))
        except (ConfigError, ValueError) as err:
            raise _fail(err) from err
        # The new list: no item of it is selected (the click's index was one of the old list).
        return chosen.image, gr.Gallery(_hits_gallery(more), selected_index=None), more

    def on_compare(a: str | None, b: str | None, source: str) -> str:
        if services.encoder is None:
            raise gr.Error("no style encoder: start the app with --encoder DIR (or a .pth and --base-model)")
        # The score needs only the encoder; an open collection adds its percentile.
        search = (
            services.searcher(source) if source else StyleSearch(services.encoder, services.config.work_dir)
        )
        return search.compare(load_upload(a, "image A"), load_upload(b, "image B"))[1]

    open_button.click(on_open, source, [status, source_state], api_name="open_index").success(
        lambda: ([], []), None, [results, hits_state], api_visibility=INTERNAL
    )  # results of the index that was open are gone with it
    upload.upload(on_query, upload, query, api_visibility=INTERNAL)
    run.click(on_search, [query, k, source_state], [results, hits_state], api_name="search")
    results.select(
        on_more, [hits_state, k, source_state], [query, results, hits_state], api_visibility=INTERNAL
    )
    compare.click(on_compare, [a_upload, b_upload, source_state], compare_out, api_name="compare")


def _search_status(services: AppServices) -> str:
    if services.search is None:
        return "No style encoder is loaded: search needs one (--encoder)."
    if services.search.index is None:
        return "No index is open."
    return services.search.summary


# ----- dataset explorer -------------------------------------------------------------------------
def _dataset_tab(services: AppServices) -> None:
    gr.Markdown(
        "Browse a dataset style by style: each row is one style prompt rendered with different contents. "
        "Filter by words of the style prompts, their attributes or the content prompts; click a style to see "
        "its images, and an image to see its row.",
        elem_id="dataset-intro",
    )
    with gr.Row():
        source = gr.Textbox(
            value=str(services.sources.data.path or ""),
            label="Shards or a curate run folder",
            scale=4,
            elem_id="dataset-source",
        )
        open_button = gr.Button("Open", elem_id="dataset-open", scale=1)
    status = gr.Markdown(
        services.dataset.summary if services.dataset else "No dataset is open.", elem_id="dataset-status"
    )
    with gr.Row():
        words = gr.Textbox(label="Filter (all words must match)", scale=3, elem_id="dataset-filter")
        page = gr.Number(value=1, precision=0, minimum=1, label="Page", scale=1, elem_id="dataset-page")
        show = gr.Button("Show", variant="primary", scale=1, elem_id="dataset-show")
    pages = gr.Markdown(elem_id="dataset-pages")
    styles = gr.Gallery(
        label="Styles", columns=2, height="auto", allow_preview=False, elem_id="dataset-styles",
        elem_classes=CAPTIONS_BELOW,
    )  # fmt: skip
    cards_state = gr.State([])  # the styles this browser shows: per session, never shared between users
    # The dataset this page explores: per session too (an Open on one page changes no other page).
    path_state = gr.State(str(services.sources.data.path) if services.dataset else "")
    images = gr.Gallery(
        label="The style's images",
        columns=8,
        height="auto",
        allow_preview=False,
        elem_id="dataset-style-images",
        elem_classes=CAPTIONS_BELOW,
    )
    rows_state = gr.State([])
    with gr.Row():
        row_image = gr.Image(
            label="Image", type="pil", interactive=False, height=256, elem_id="dataset-row-image"
        )
        row = gr.JSON(label="Its row", elem_id="dataset-row")
    with gr.Accordion("The curate run: stages and rejected items", open=False, elem_id="dataset-run"):
        # The opened run's tables are the initial values (a value set after construction is never shown).
        stages = gr.Dataframe(
            value=services.dataset.stages() if services.dataset else None,
            headers=["stage", "what happened", "seconds"],
            wrap=True,
            column_widths=["14%", "74%", "12%"],
            elem_id="dataset-stages",
        )
        rejects = gr.Dataframe(
            value=services.dataset.rejects() if services.dataset else None,
            headers=["item", "cause"],
            wrap=True,
            column_widths=["35%", "65%"],
            elem_id="dataset-rejects",
        )

    def explorer(path: str) -> Any:
        if not path:
            raise gr.Error("no dataset is open: give shards or a curate run folder and press Open")
        try:
            return services.explorer(path)
        except (ConfigError, OSError, ValueError) as err:
            raise _fail(err) from err

    def on_open(path: str) -> tuple[str, list[tuple[str, str, str]], list[tuple[str, str]], str]:
        data = explorer(path.strip())
        return data.summary, data.stages(), data.rejects(), path.strip()

    def on_show(text: str, number: float, path: str) -> tuple[list[tuple[Image.Image, str]], str, list[Any]]:
        data = explorer(path)
        found = data.find(text or "")
        shown, total_pages = data.page(found, int(number or 1), services.config.styles_per_page)
        message = f"{len(found)} of {len(data.cards)} styles match; page {min(max(1, int(number or 1)), total_pages)} of {total_pages}"
        return [(data.strip(card), data.style_caption(card)) for card in shown], message, shown

    def on_style(
        cards: list[Any], path: str, evt: gr.SelectData
    ) -> tuple[list[tuple[Image.Image, str]], list[int]]:
        data, card = explorer(path), cards[evt.index]
        return [(data.thumbnail(r, 160), data.contents[r]) for r in card.rows], card.rows

    def on_image(rows: list[int], path: str, evt: gr.SelectData) -> tuple[Image.Image, dict[str, Any]]:
        return explorer(path).row(rows[evt.index])

    # The styles of the dataset that was open go with it.
    cleared = [styles, pages, cards_state, images, rows_state, row_image, row]
    open_button.click(
        on_open, source, [status, stages, rejects, path_state], api_name="open_dataset"
    ).success(lambda: ([], "", [], [], [], None, None), None, cleared, api_visibility=INTERNAL)
    show.click(on_show, [words, page, path_state], [styles, pages, cards_state], api_name="styles")
    words.submit(on_show, [words, page, path_state], [styles, pages, cards_state], api_visibility=INTERNAL)
    styles.select(on_style, [cards_state, path_state], [images, rows_state], api_visibility=INTERNAL)
    images.select(on_image, [rows_state, path_state], [row_image, row], api_visibility=INTERNAL)


def build_ui(services: AppServices) -> gr.Blocks:
    """The whole page."""
    with gr.Blocks(title="megastyle", analytics_enabled=False) as page:
        gr.Markdown("# megastyle\nStyle transfer, style search and dataset exploration, on this machine.")
        gr.Markdown(_sources_markdown(services), elem_id="app-sources")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Style transfer", id="transfer", elem_id="tab-transfer"):
                _transfer_tab(services)
            with gr.Tab("Style search", id="search", elem_id="tab-search"):
                _search_tab(services)
            with gr.Tab("Dataset", id="dataset", elem_id="tab-dataset"):
                _dataset_tab(services)
    return page
