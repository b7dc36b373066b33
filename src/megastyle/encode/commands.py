"""The encoder's commands as library functions: ``embed``, ``score``, ``search`` and ``train-encoder``.

Each command is a typed config (read from TOML, every field overridable on the command line) and a
``run_*`` function; ``megastyle.cli`` only registers them. Expected failures are ``ConfigError``s
naming the item and the cause.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field
from rich.console import Console
from rich.table import Table

from megastyle.config import ConfigError
from megastyle.data.collections import (
    CollectionOptions,
    SourceForm,
    clean_cause,
    content_column_field,
    form_field,
    image_column_field,
    style_column_field,
)
from megastyle.encode.source import EncoderSource, load_encoder_from_config
from megastyle.encode.train_config import TrainEncoderConfig

# Heavy modules (torch, transformers) are imported inside the run functions: registering the
# commands, `megastyle --help` and config errors stay fast.
console = Console(stderr=True)


# ----- megastyle embed ---------------------------------------------------------------------------
class EmbedConfig(EncoderSource):
    """Embed an image folder or MegaStyle shards into an embeddings file."""

    toml_section: ClassVar[str] = "embed"

    source: Path | None = Field(
        None,
        description="Image folder (recursive; a subfolder per style labels its images), a CSV/JSONL manifest, "
        "labelled Parquet, or MegaStyle shards.",
    )
    source_form: SourceForm = form_field()
    image_column: str | None = image_column_field()
    style_column: str | None = style_column_field()
    content_column: str | None = content_column_field()
    output: Path = Field(
        Path("runs/embeddings/embeddings.safetensors"),
        description="Embeddings file (.safetensors; .parquet and .rejects.jsonl sidecars are written beside it).",
    )
    batch_size: int = Field(32, ge=1, description="Images per forward pass.")
    chunk_size: int = Field(4096, ge=1, description="Images per resumable chunk.")
    workers: int = Field(0, ge=0, description="Decode/preprocess threads (0 = in the main thread).")
    keep_chunks: bool = Field(False, description="Keep the per-chunk files after merging.")
    overwrite: bool = Field(
        False,
        description="Replace an existing output written from another source or encoder (the same one is "
        "reused as it is).",
    )
    progress: bool = Field(True, description="Show a progress bar.")
    calibration_output: Path | None = Field(
        None,
        description="Also fit a score calibration (JSON for `score --calibration`) on these embeddings, "
        "with style ids as labels when every item has one.",
    )
    calibration_pairs: int = Field(
        100_000, ge=1, description="Random pairs sampled per calibration distribution."
    )


def run_embed(cfg: EmbedConfig) -> None:
    """Embed the configured source and print a summary."""
    from megastyle.encode.embed import embed_collection, read_rejects

    if cfg.source is None:
        raise ConfigError("--source: no collection given (an image folder, a manifest, Parquet or shards)")
    if cfg.output.suffix != ".safetensors":
        raise ConfigError(f"{cfg.output}: --output must end with .safetensors")
    encoder = load_encoder_from_config(cfg)
    notices: list[str] = []
    try:
        summary = embed_collection(
            encoder,
            cfg.source,
            batch_size=cfg.batch_size,
            device=None,
            out_path=cfg.output,
            chunk_size=cfg.chunk_size,
            workers=cfg.workers,
            progress=cfg.progress,
            keep_chunks=cfg.keep_chunks,
            options=CollectionOptions.of(cfg),
            reuse=not cfg.overwrite,
            overwrite=cfg.overwrite,
            notice=notices,
        )
    except ConfigError:
        raise
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    for line in notices:
        console.print(line, highlight=False)
    if summary.reused:
        console.print(f"{summary.out_path}: already holds these {summary.embedded} embeddings; nothing to do")
    else:
        console.print(
            f"{summary.embedded} embeddings ({summary.dim}-d) in {summary.out_path}; "
            f"{summary.rejected} images rejected; chunks {summary.chunks_written} written, "
            f"{summary.chunks_reused} reused"
        )
    if cfg.calibration_output is not None:
        _fit_calibration(cfg, summary.out_path, cfg.calibration_output)
    if summary.rejected:
        for reject in read_rejects(summary.out_path)[:20]:
            console.print(f"[red]{reject['id']}[/red]: {reject['cause']}")


def _fit_calibration(cfg: EmbedConfig, embeddings_path: Path, output: Path) -> None:
    """Fit a score calibration on the embeddings just written and save it to ``output``."""
    from megastyle.encode.calibrate import ScoreCalibration
    from megastyle.encode.embed import load_embeddings

    result = load_embeddings(embeddings_path)
    style_ids = result.style_ids
    labels = style_ids if style_ids and all(s is not None for s in style_ids) else None
    if labels is not None and len(set(labels)) < 2:
        labels = None  # one style only: fall back to all random pairs
    encoder_name = str(cfg.encoder or cfg.official_pth)
    calibration = ScoreCalibration.fit(
        result.embeddings,
        labels,
        num_pairs=cfg.calibration_pairs,
        encoder=encoder_name,
        reference=str(cfg.source),
    )
    calibration.save(output)
    kind = "same/different-style pairs" if labels is not None else "random pairs (no style labels)"
    console.print(f"score calibration over {kind} written to {output}")


# ----- megastyle score ---------------------------------------------------------------------------
class ScoreConfig(EncoderSource):
    """Style score of two images: cosine of the normalised pooled outputs (the official style_score.py)."""

    toml_section: ClassVar[str] = "score"

    image_a: Path | None = Field(
        None, description="First image (the official script's real/reference image)."
    )
    image_b: Path | None = Field(
        None, description="Second image (the official script's fake/generated image)."
    )
    calibration: Path | None = Field(
        None, description="Calibration JSON (ScoreCalibration.save) for a percentile / z-score readout."
    )
    json_output: bool = Field(False, description="Print a JSON object instead of the official text line.")


def run_score(cfg: ScoreConfig) -> float:
    """Print the style score of ``image_a`` vs ``image_b`` (as the official script does) and return it."""
    from megastyle.encode.calibrate import ScoreCalibration
    from megastyle.encode.model import cosine_score

    if cfg.image_a is None or cfg.image_b is None:
        raise ConfigError("score needs two images: megastyle score A B")
    images = [_open_image(cfg.image_a), _open_image(cfg.image_b)]
    # The official decoding is kept for parity; megastyle's own (EXIF rotation, 16-bit scaled, alpha on
    # white) is what embed and the benchmarks see. Where the two differ, both scores are given.
    ours = [_decode_ours(cfg.image_a, images[0]), _decode_ours(cfg.image_b, images[1])]
    differs = [(path, why) for path, (_, why) in zip((cfg.image_a, cfg.image_b), ours, strict=True) if why]
    try:
        calibration = ScoreCalibration.load(cfg.calibration) if cfg.calibration is not None else None
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"calibration {cfg.calibration}: {err}") from err
    encoder = load_encoder_from_config(cfg)
    score = cosine_score(encoder, images[0], images[1])
    ours_score = None
    if differs and all(image is not None for image, _ in ours):
        ours_score = cosine_score(encoder, ours[0][0], ours[1][0])
    readout = calibration.readout(score) if calibration is not None else {"score": score}
    if differs:
        readout = {
            **readout,
            "decoding_differs": {str(path): why for path, why in differs},
            "score_megastyle_decoding": ours_score,
        }
    if cfg.json_output:
        print(json.dumps(readout))
        return score
    print(f"=> style score: {score:.2f}")  # the official style_score.py's line
    if differs:
        which = "; ".join(f"{path}: {why}" for path, why in differs)
        with_ours = (
            f"; with megastyle's decoding the score is {ours_score:.2f}" if ours_score is not None else ""
        )
        print(
            f"note: decoded as the official script does, which differs from megastyle's decoding ({which}){with_ours}"
        )
    if calibration is not None:
        print(f"=> percentile vs different-style pairs: {readout['percentile']:.1f}")
        print(f"=> z-score vs different-style pairs: {readout['zscore']:.2f}")
        if readout.get("same_style_percentile") is not None:
            print(f"=> percentile among same-style pairs: {readout['same_style_percentile']:.1f}")
    return score


# ----- megastyle search --------------------------------------------------------------------------
class SearchConfig(EncoderSource):
    """Query a style index of a collection with images; write an HTML page of the top results."""

    toml_section: ClassVar[str] = "search"

    index: Path | None = Field(None, description="A saved search index folder.")
    embeddings: Path | None = Field(None, description="An embeddings file (megastyle embed) to index.")
    source: Path | None = Field(
        None,
        description="A collection to search (any form `embed` reads): embedded with the encoder beside "
        "`output` (OUTPUT.collection.safetensors, reused while the source and encoder are unchanged).",
    )
    source_form: SourceForm = form_field()
    image_column: str | None = image_column_field()
    style_column: str | None = style_column_field()
    content_column: str | None = content_column_field()
    kind: Literal["flat", "hnsw", "ivf"] = Field("flat", description="flat = exact; hnsw/ivf need faiss.")
    save_index: Path | None = Field(None, description="Save the built index to this folder.")
    queries: list[Path] = Field(default_factory=list, description="Query images or folders of images.")
    k: int = Field(10, ge=1, description="Results per query.")
    output: Path = Field(Path("runs/search/search.html"), description="HTML page to write.")
    batch_size: int = Field(32, ge=1, description="Images per forward pass.")
    max_results_per_page: int = Field(
        1000, ge=1, description="Results on one page; more queries × k are split into numbered pages."
    )
    progress: bool = Field(True, description="Show progress (embedding a source, writing large pages).")


def _query_images(paths: list[Path]) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """(name, decoded image) of every readable query file and image in the query folders, and the
    (name, cause) of those that could not be read."""
    from megastyle.data import ImageDecodeError, decode_image, list_image_files

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(list_image_files(path))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"query {path} does not exist")
    if not files:
        raise ConfigError("no query images: set --queries IMAGE_OR_FOLDER")
    good, skipped = [], []
    for file in files:
        try:
            good.append((str(file), decode_image(file.read_bytes(), item=str(file))))
        except (OSError, ImageDecodeError) as err:  # one bad query must not lose the others
            skipped.append((str(file), clean_cause(getattr(err, "cause", str(err)))))
    if not good:
        first = f"{skipped[0][0]}: {skipped[0][1]}"
        raise ConfigError(f"no readable query image: all {len(skipped)} failed (first: {first})")
    return good, skipped


def _search_index(cfg: SearchConfig, encoder: Any) -> Any:
    """The index to search: a saved one, an embeddings file, or the source embedded now (or reused)."""
    from megastyle.encode.embed import embed_collection
    from megastyle.encode.search import SearchIndex, build_index

    try:
        if cfg.index is not None:
            return SearchIndex.load(cfg.index)
        if cfg.embeddings is not None:
            return build_index(cfg.embeddings, kind=cfg.kind)
        assert cfg.source is not None
        out = cfg.output.with_name(f"{cfg.output.stem}.collection.safetensors")
        notices: list[str] = []
        summary = embed_collection(
            encoder,
            cfg.source,
            batch_size=cfg.batch_size,
            out_path=out,
            progress=cfg.progress,
            options=CollectionOptions.of(cfg),
            reuse=True,
            notice=notices,
        )
        for line in notices:
            console.print(line, highlight=False)
        how = "reused" if summary.reused else "embedded"
        console.print(
            f"{how} {summary.embedded} images of {cfg.source} ({summary.rejected} rejected) in {out}"
        )
        return build_index(out, kind=cfg.kind)
    except ConfigError:
        raise
    except (FileNotFoundError, ImportError, ValueError) as err:
        raise ConfigError(str(err)) from err


def run_search(cfg: SearchConfig) -> Any:
    """Load or build the index, embed the queries with the encoder, write the HTML page(s)."""
    from megastyle.encode.search import write_search_pages

    given = [name for name in ("index", "embeddings", "source") if getattr(cfg, name) is not None]
    if len(given) != 1:
        raise ConfigError(
            "set --index FOLDER or --embeddings FILE (or --source COLLECTION to embed one now)"
            + (f", one of them: got {', '.join('--' + g for g in given)}" if given else "")
        )
    index = _search_index(cfg, None) if cfg.source is None else None
    queries, skipped = _query_images(cfg.queries)
    encoder = load_encoder_from_config(cfg)
    if index is None:
        index = _search_index(cfg, encoder)
    if cfg.save_index is not None:
        index.save(cfg.save_index)
    for name, cause in skipped:
        console.print(f"[yellow]skipped query[/yellow] {name}: {cause}")
    k = cfg.k
    if k > len(index):
        console.print(f"--k {k} is more than the {len(index)} items in the collection: showing {len(index)}")
        k = len(index)
    if k > cfg.max_results_per_page:
        raise ConfigError(
            f"--k {k}: one query's results exceed the {cfg.max_results_per_page}-result page limit; "
            "lower --k or raise --max-results-per-page"
        )
    embeddings = encoder.embed_images([image for _, image in queries], batch_size=cfg.batch_size)
    if embeddings.shape[1] != index.dim:
        raise ConfigError(f"encoder embeds {embeddings.shape[1]}-d, the index holds {index.dim}-d vectors")
    hits = index.search(embeddings, k)
    pages = write_search_pages(
        cfg.output,
        queries,
        hits,
        max_results=cfg.max_results_per_page,
        skipped=skipped,
        progress=cfg.progress,
    )
    table = Table(title=f"top {k} ({index.kind}, {index.backend})")
    for column in ("query", "rank", "id", "score"):
        table.add_column(column)
    for (name, _), row in zip(queries, hits, strict=True):
        for hit in row[:3]:
            table.add_row(Path(name).name, str(hit.rank), hit.id, f"{hit.score:.3f}")
    console.print(table)
    if len(pages) > 1:
        console.print(
            f"{sum(len(row) for row in hits)} results split into {len(pages)} pages of at most "
            f"{cfg.max_results_per_page}: {pages[0]} … {pages[-1]}"
        )
    else:
        console.print(f"wrote {pages[0]}")
    if skipped:
        console.print(f"{len(skipped)} query images skipped: {', '.join(name for name, _ in skipped)}")
    return hits


def _decode_ours(path: Path, official: Any) -> tuple[Any, str | None]:
    """(the image as megastyle decodes it, why it differs from the official decoding or None)."""
    import numpy as np
    from PIL import Image

    from megastyle.data import decode_image

    data = path.read_bytes()
    try:
        ours = decode_image(data, item=str(path))
    except ValueError as err:
        return None, f"megastyle's decoder refuses it ({err})"
    if ours.size == official.size and np.array_equal(np.asarray(ours), np.asarray(official)):
        return ours, None
    reasons = []
    with Image.open(path) as raw:
        if raw.getexif().get(0x0112, 1) not in (0, 1):  # the EXIF Orientation tag
            reasons.append("EXIF rotation applied")
        if raw.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            reasons.append("16-bit values scaled, not clipped")
        if raw.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in raw.info:
            reasons.append("transparency on white")
    return ours, ", ".join(reasons) or "other pixels"


def _open_image(path: Path) -> Any:
    """An image opened as the official script does; a missing or broken file is a ConfigError."""
    from megastyle.data import ImageDecodeError
    from megastyle.encode.official import open_like_official

    try:
        return open_like_official(path)
    except (FileNotFoundError, ImageDecodeError) as err:
        raise ConfigError(str(err)) from err


# ----- megastyle train-encoder -------------------------------------------------------------------
def run_train_encoder(cfg: TrainEncoderConfig) -> None:
    """Train (or resume), then print where the encoder went and the held-out evaluation."""
    from megastyle.data.collections import detect_form
    from megastyle.encode.train import train_encoder

    for source in cfg.source:  # a source that is missing or of no form fails before anything starts
        detect_form(source, CollectionOptions.of(cfg))
    console.print(
        f"train-encoder: P={cfg.styles_per_batch} styles × K={cfg.images_per_style} images = batch "
        f"{cfg.batch_size}, chunk {cfg.chunk_size or 'off'}, init {cfg.init}"
    )
    result = train_encoder(cfg)
    console.print(
        f"{result.steps} steps, final loss {result.final_loss}; encoder saved to {result.encoder_dir}"
    )
    if result.evals:
        table = Table(title=f"held-out styles ({len(result.heldout_styles)})")
        for column in ("step", "recall@1", "same-style cos", "other-style cos"):
            table.add_column(column, justify="right")
        for row in result.evals:
            table.add_row(
                str(row["step"]),
                f"{row['recall_at_1']:.3f}",
                f"{row['same_style_cosine']:.3f}",
                f"{row['other_style_cosine']:.3f}",
            )
        console.print(table)
