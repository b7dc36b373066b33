"""The functions behind the app's three tabs, without the UI, on a small quickstart run."""

from __future__ import annotations

import itertools
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from megastyle.app.config import AppConfig
from megastyle.app.dataset import DatasetExplorer
from megastyle.app.search import StyleSearch, official_score_line
from megastyle.app.sources import AppSources
from megastyle.app.transfer import MAX_IMAGES, StyleTransfer, TransferRequest, parse_prompts
from megastyle.config import ConfigError
from megastyle.data import ShardReader

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small quickstart run: dataset, trained tiny encoder, tiny untrained FLUX."""
    from megastyle.quickstart.config import QuickstartConfig
    from megastyle.quickstart.run import run_quickstart

    out = tmp_path_factory.mktemp("app") / "qs"
    cfg = QuickstartConfig(
        output_dir=out, style_pool_images=24, content_pool_images=24, num_styles=8, num_content_prompts=12,
        contents_per_style=4, image_size=64, encoder_epochs=1, encoder_caption_comparator=False,
        leakage_grid=False, holdout_fraction=0.25, progress=False,
    )  # fmt: skip
    run_quickstart(cfg)
    return out


@pytest.fixture(scope="module")
def encoder(run: Path):
    from megastyle.encode.model import StyleEncoder

    return StyleEncoder.from_pretrained(run / "encoder" / "encoder")


# ----- what is served ---------------------------------------------------------------------------
def test_a_quickstart_run_supplies_every_default_with_an_honest_label(run: Path) -> None:
    sources = AppSources.from_config(AppConfig(run=run))
    assert (
        sources.flux.path == run / "tiny_flux_untrained"
        and "random weights (untrained)" in sources.flux.label
    )
    assert sources.tiny_flux and sources.encoder.path == run / "encoder" / "encoder"
    assert "not the released MegaStyle-Encoder" in sources.encoder.label
    assert sources.data.path == run / "curate" and "not a generative model" in sources.data.label
    assert not sources.lora.available and "not MegaStyle-FLUX" in sources.lora.label


def test_models_given_by_path_replace_the_defaults_and_missing_ones_are_named(
    run: Path, tmp_path: Path
) -> None:
    sources = AppSources.from_config(AppConfig(run=None, flux=run / "tiny_flux_untrained"))
    assert not sources.tiny_flux and sources.flux.label.startswith("FLUX pipeline from")
    assert not sources.encoder.available and "--encoder" in sources.encoder.label
    with pytest.raises(ConfigError, match=r"nope: --flux does not exist"):
        AppSources.from_config(AppConfig(flux=tmp_path / "nope"))
    pth = tmp_path / "encoder.pth"
    pth.write_bytes(b"x")
    with pytest.raises(ConfigError, match="needs --base-model"):
        AppSources.from_config(AppConfig(encoder=pth))


# ----- dataset explorer -------------------------------------------------------------------------
def test_the_explorer_opens_a_run_or_its_shards_and_lists_every_style(run: Path) -> None:
    explorer = DatasetExplorer(run / "curate")
    reader = ShardReader(run / "curate" / "dataset")
    assert explorer.run_dir == run / "curate" and len(explorer.cards) == 8
    assert sum(len(card.rows) for card in explorer.cards) == len(reader) == 32
    for card in explorer.cards:  # every row of a card has the card's style prompt
        assert {reader[r].style for r in card.rows} == {card.style}
    assert DatasetExplorer(run / "curate" / "dataset").run_dir == run / "curate"
    stages = explorer.stages()
    assert [s[0] for s in stages] == [
        "ingest",
        "caption",
        "dedup",
        "balance",
        "combine",
        "generate",
        "filter",
        "write",
    ]
    assert "rows of 8 styles" in stages[-1][1]
    assert {cause for _, cause in explorer.rejects()} and len(
        explorer.rejects()
    ) == 2  # the planted bad items


def test_filters_match_every_word_of_style_attributes_or_content(run: Path) -> None:
    explorer = DatasetExplorer(run / "curate")
    card = explorer.cards[3]
    medium = card.attributes["medium"]
    assert card in explorer.find(medium.upper())
    content_word = explorer.contents[card.rows[0]].split()[-1]
    assert card in explorer.find(content_word)
    assert explorer.find(f"{medium} zzzz-no-such-word") == []
    assert len(explorer.find("")) == 8
    shown, pages = explorer.page(explorer.cards, 99, 3)
    assert pages == 3 and shown == explorer.cards[6:]  # a page past the end shows the last one


def test_one_row_opens_with_its_fields_and_image(run: Path) -> None:
    explorer = DatasetExplorer(run / "curate")
    image, fields = explorer.row(5)
    record = ShardReader(run / "curate" / "dataset")[5]
    assert (
        fields["id"] == record.id and fields["style"] == record.style and fields["content"] == record.content
    )
    assert isinstance(fields["style_attributes"], dict) and image.size == record.pil_image().size
    assert explorer.strip(explorer.cards[0], columns=3, size=32).size == (3 * 34, 32)


def test_the_released_layout_opens_too(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = _mkdir(tmp_path / "release")
    rows = [
        {"id": f"s{style}_c{content}", "image": {"bytes": _png(Image.new("RGB", (8, 8), (40 * style, 0, 0))),
         "path": None}, "content": f"a thing {content}", "style": f"style {style}"}
        for style in range(3) for content in range(2)
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), folder / "train-00000.parquet")  # the release's four columns
    explorer = DatasetExplorer(folder)
    assert [card.style_id for card in explorer.cards] == [0, 1, 2] and explorer.run_dir is None
    assert explorer.stages() == [] and explorer.rejects() == []


def test_a_folder_without_shards_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"empty: no train-\*\.parquet shards"):
        DatasetExplorer(_mkdir(tmp_path / "empty"))


# ----- style search -----------------------------------------------------------------------------
def test_search_embeds_a_collection_and_finds_an_image_itself_first(
    run: Path, encoder, tmp_path: Path
) -> None:
    search = StyleSearch(encoder, tmp_path)
    summary = search.open(run / "curate" / "dataset")
    assert "32 images with style labels" in summary
    reader = ShardReader(run / "curate" / "dataset")
    hits = search.query_image(reader[7].pil_image(), k=5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5] and hits[0].id == reader[7].id
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert (
        hits[0].style == reader[7].style
        and hits[0].percentile is not None
        and "percentile" in hits[0].caption
    )
    more = search.query_item(hits[2].index, k=3)
    assert more[0].index == hits[2].index
    again = StyleSearch(encoder, tmp_path)  # reuses the embeddings written the first time
    assert again.open(run / "curate" / "dataset") == summary


def test_search_opens_an_embeddings_file_and_refuses_a_foreign_width(
    run: Path, encoder, tmp_path: Path
) -> None:
    from megastyle.encode.embed import EmbeddingSet, EmbedItem

    search = StyleSearch(encoder, tmp_path)
    search.open(run / "curate" / "dataset")
    files = sorted((tmp_path / "indexes").glob("*.safetensors"))
    assert files and "32 images" in StyleSearch(encoder, tmp_path / "other").open(files[0])
    narrow = tmp_path / "narrow.safetensors"
    EmbeddingSet(np.eye(3, dtype=np.float32), [EmbedItem(str(i), "x.png") for i in range(3)]).save(narrow)
    with pytest.raises(ConfigError, match="3-d vectors"):
        StyleSearch(encoder, tmp_path).open(narrow)
    with pytest.raises(ConfigError, match="no index is open"):
        StyleSearch(encoder, tmp_path).query_item(0)


def test_compare_prints_the_official_line_and_equals_megastyle_score(
    run: Path, encoder, tmp_path: Path
) -> None:
    from megastyle.config import load_config
    from megastyle.encode.commands import ScoreConfig, run_score

    reader = ShardReader(run / "curate" / "dataset")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    reader[0].pil_image().save(a)
    reader[9].pil_image().save(b)
    score, line = StyleSearch(encoder, tmp_path).compare(Image.open(a), Image.open(b))
    cfg = load_config(
        ScoreConfig,
        None,
        [str(p) for p in ("--image-a", a, "--image-b", b, "--encoder", run / "encoder" / "encoder")],
    )
    assert score == pytest.approx(run_score(cfg), abs=1e-6)
    assert line == official_score_line(score) == f"=> style score: {score:.2f}"


# ----- style transfer ---------------------------------------------------------------------------
def _transfer(run: Path, tmp_path: Path, lora: Path | None = None) -> StyleTransfer:
    return StyleTransfer(run / "tiny_flux_untrained", lora, "cpu", tmp_path)


def _request(**changes: object) -> TransferRequest:
    base = {"prompts": ["A bench", "A car"], "images_per_prompt": 2, "seed": 7, "steps": 2, "size": 32,
            "max_sequence_length": 16}  # fmt: skip
    return TransferRequest(**(base | changes))  # type: ignore[arg-type]


def test_transfer_makes_every_image_with_its_seed_and_score(run: Path, encoder, tmp_path: Path) -> None:
    reference = ShardReader(run / "curate" / "dataset")[0].pil_image()
    steps: list[int] = []
    result = _transfer(run, tmp_path).run(reference, _request(), on_step=steps.append, scorer=encoder)
    assert len(result.images) == 4 and sum(steps) == 4 * 2  # every image-step reported
    assert [r["seed"] for r in result.records] == [7, 8, 9, 10]
    assert [r["prompt"] for r in result.records] == ["A bench", "A bench", "A car", "A car"]
    assert result.captions[2].startswith("A car · seed 9, style score ")
    names = zipfile.ZipFile(result.archive).namelist()
    assert {f"{result.folder.name}/{n}" for n in ("manifest.json", "reference.png", "000_seed7.png")} <= set(
        names
    )


def test_transfer_equals_the_pipeline_for_the_same_seed(run: Path, tmp_path: Path) -> None:
    import torch

    from megastyle.transfer.pipeline import MegaStyleFluxPipeline

    reference = ShardReader(run / "curate" / "dataset")[3].pil_image()
    ours = _transfer(run, tmp_path).run(reference, _request(prompts=["A car"], images_per_prompt=1))
    pipe = MegaStyleFluxPipeline.from_pretrained(run / "tiny_flux_untrained", local_files_only=True)
    direct = pipe(
        prompt=["A car"], style_image=[reference], height=32, width=32, num_inference_steps=2, guidance_scale=3.5,
        schedule="official", generator=[torch.Generator().manual_seed(7)], max_sequence_length=16,
    ).images[0]  # fmt: skip
    assert np.array_equal(np.asarray(ours.images[0]), np.asarray(direct))


def test_a_changed_lora_strength_never_stacks(run: Path, tmp_path: Path) -> None:
    from megastyle.transfer.lora import save_lora
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline
    from megastyle.transfer.train import add_lora
    from megastyle.transfer.train_config import TrainTransferConfig

    pipe = MegaStyleFluxPipeline.from_pretrained(run / "tiny_flux_untrained", local_files_only=True)
    add_lora(pipe.transformer, TrainTransferConfig(rank=4, init_lora_weights="gaussian"))
    for name, param in pipe.transformer.named_parameters():
        if "lora_B" in name:  # a LoRA that changes the output: B is zero at initialisation
            param.data.normal_(0, 0.5)
    lora = save_lora(pipe.transformer, tmp_path / "lora.safetensors", format="kohya")
    service = _transfer(run, tmp_path, lora)
    reference = ShardReader(run / "curate" / "dataset")[1].pil_image()
    request = _request(prompts=["A bench"], images_per_prompt=1)
    first = service.run(reference, request).images[0]
    half = service.run(reference, TransferRequest(**(vars(request) | {"lora_scale": 0.5}))).images[0]
    again = service.run(reference, request).images[0]
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(half))


def test_bad_transfer_requests_are_named(run: Path, tmp_path: Path) -> None:
    reference = Image.new("RGB", (16, 16))
    service = _transfer(run, tmp_path)
    with pytest.raises(ConfigError, match="at least one content prompt"):
        service.run(reference, _request(prompts=parse_prompts("\n  \n")))
    with pytest.raises(ConfigError, match=f"at most {MAX_IMAGES}"):
        service.run(reference, _request(prompts=["a"] * 9, images_per_prompt=8))
    with pytest.raises(ConfigError, match="no FLUX pipeline"):
        StyleTransfer(None, None, "cpu", tmp_path).run(reference, _request())


def _png(image: Image.Image) -> bytes:
    from megastyle.data import encode_png

    return encode_png(image)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
