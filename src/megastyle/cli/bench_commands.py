"""Benchmark commands: ``bench retrieval``, ``bench dataset`` (sub-app ``bench``) and top-level ``search``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from megastyle.cli.common import config_command, resolve_device
from megastyle.cli.encoder_commands import EncoderSourceMixin, load_encoder_from_config
from megastyle.config import CommandConfig, ConfigError

if TYPE_CHECKING:
    from megastyle.bench.retrieval import Embedder

console = Console()

EncoderKind = Literal[
    "megastyle", "siglip", "clip", "csd", "color_histogram", "gram", "random", "random_init"
]


class EncoderSpec(BaseModel):
    """One encoder to benchmark."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Row name in the tables.")
    kind: EncoderKind = Field(
        description="megastyle/siglip/clip: a local encoder or HF folder; csd: a CSD .pth; "
        "color_histogram, gram, random: training-free; random_init: the architecture of `path`, random weights."
    )
    path: Path | None = Field(None, description="Weights folder or file (kinds that need weights).")
    options: dict[str, Any] = Field(default_factory=dict, description="Extra constructor options.")


def _default_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(name="color_histogram", kind="color_histogram"),
        EncoderSpec(name="gram", kind="gram"),
        EncoderSpec(name="random", kind="random"),
    ]


def build_embedder(spec: EncoderSpec, device: str = "cpu") -> Embedder:
    """Instantiate the embedder ``spec`` describes (ConfigError names what is missing)."""
    from megastyle.bench import baselines

    if spec.kind == "color_histogram":
        return baselines.ColorHistogramEmbedder(**spec.options)
    if spec.kind == "gram":
        return baselines.GramEmbedder(**{"device": device, **spec.options})
    if spec.kind == "random":
        return baselines.RandomEmbedder(**spec.options)
    if spec.path is None or not spec.path.exists():
        raise ConfigError(f"encoder {spec.name!r} ({spec.kind}) needs an existing path, got {spec.path}")
    if spec.kind == "csd":
        return baselines.CSDEmbedder.from_checkpoint(spec.path, device=device, **spec.options)
    if spec.kind == "random_init":
        import torch

        from megastyle.encode.model import StyleEncoder

        like = StyleEncoder.from_pretrained(spec.path)
        # Same tower and preprocessing as `path`, fresh seeded weights: the encoder's untrained self.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(spec.options.get("seed", 0)))
            encoder = StyleEncoder(like.config)
        return encoder.eval().to(device)
    return baselines.HFTowerEmbedder(spec.path, device=device)


class RetrievalConfig(CommandConfig):
    """Build (or load) a StyleRetrieval benchmark and score encoders on it."""

    toml_section: ClassVar[str] = "bench_retrieval"

    source: Path | None = Field(
        None, description="Folder of style-labelled shards to build the benchmark from."
    )
    benchmark: Path | None = Field(
        None, description="A saved benchmark folder (then `source` only relocates it)."
    )
    holdout_styles: int | float = Field(0.2, description="Held-out styles: a count, or a fraction (float).")
    heldout_styles_file: Path | None = Field(
        None, description="Hold out exactly these styles (a heldout_styles.json, e.g. train-encoder's)."
    )
    queries_per_style: int = Field(1, ge=1, description="Query images per held-out style.")
    min_images_per_style: int = Field(2, ge=2, description="Styles with fewer images are never held out.")
    distractor_styles: int | float = Field(0, description="Extra gallery-only styles: a count or fraction.")
    max_gallery_per_style: int | None = Field(None, ge=1, description="Cap on gallery images per style.")
    seeds: list[int] = Field([0], description="One benchmark per seed; the table shows mean ± std.")
    ks: list[int] = Field([1, 10, 100], description="k values of Recall@k and mAP@k.")
    encoders: list[EncoderSpec] = Field(default_factory=_default_encoders, description="Encoders to score.")
    paired_encoder: str | None = Field(
        None,
        description="Encoder compared query by query with each other one, with 95% intervals (default: the first).",
    )
    output_dir: Path = Field(Path("runs/bench/retrieval"), description="Folder for tables, plot and grids.")
    batch_size: int = Field(32, ge=1, description="Images per forward pass.")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', ...")
    standard_map: bool = Field(True, description="Also compute standard mAP over full rankings.")
    grid_queries: int = Field(8, ge=1, description="Queries shown per grid.")
    grid_top: int = Field(5, ge=1, description="Results shown per query in the grid.")


class DatasetQualityConfig(CommandConfig):
    """Intra-style consistency, inter-style diversity and content leakage of a dataset."""

    toml_section: ClassVar[str] = "bench_dataset"

    source: Path | None = Field(None, description="Folder of style-labelled shards.")
    encoders: list[EncoderSpec] = Field(default_factory=_default_encoders, description="Embedders to use.")
    max_styles: int | None = Field(200, ge=2, description="Styles sampled (None = all).")
    max_images_per_style: int = Field(8, ge=2, description="Images sampled per style.")
    max_pairs: int = Field(200_000, ge=10, description="Pairs sampled per measure.")
    seed: int = Field(0, description="Sampling seed.")
    output_dir: Path = Field(
        Path("runs/bench/dataset"), description="Folder for quality.json, leakage_paired.json, quality.md."
    )
    batch_size: int = Field(32, ge=1, description="Images per forward pass.")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', ...")
    paired_encoder: str | None = Field(
        None,
        description="Encoder whose matched leakage is compared with each other one's (default: the first).",
    )


class SearchConfig(EncoderSourceMixin):
    """Query a style index of a collection with images; write an HTML page of the top results."""

    toml_section: ClassVar[str] = "search"

    index: Path | None = Field(None, description="A saved search index folder.")
    embeddings: Path | None = Field(None, description="An embeddings file (megastyle embed) to index.")
    kind: Literal["flat", "hnsw", "ivf"] = Field("flat", description="flat = exact; hnsw/ivf need faiss.")
    save_index: Path | None = Field(None, description="Save the built index to this folder.")
    queries: list[Path] = Field(default_factory=list, description="Query images or folders of images.")
    k: int = Field(10, ge=1, description="Results per query.")
    output: Path = Field(Path("runs/search/search.html"), description="HTML page to write.")
    batch_size: int = Field(32, ge=1, description="Images per forward pass.")


def run_retrieval(cfg: RetrievalConfig) -> list[Any]:
    """Build or load benchmarks, evaluate every encoder, print and write the report."""
    from megastyle.bench.report import write_retrieval_report
    from megastyle.bench.retrieval import (
        BenchmarkSourceError,
        RetrievalBenchmark,
        build_benchmark,
        load_heldout_styles,
    )
    from megastyle.bench.retrieval_eval import evaluate

    device = resolve_device(cfg.device)
    benchmarks = []
    try:
        if cfg.benchmark is not None:
            benchmarks.append(RetrievalBenchmark.load(cfg.benchmark, source=cfg.source))
        elif cfg.source is not None:
            named = load_heldout_styles(cfg.heldout_styles_file).entries if cfg.heldout_styles_file else None
            for seed in cfg.seeds:
                benchmark = build_benchmark(
                    cfg.source,
                    holdout_styles=cfg.holdout_styles,
                    queries_per_style=cfg.queries_per_style,
                    seed=seed,
                    min_images_per_style=cfg.min_images_per_style,
                    distractor_styles=cfg.distractor_styles,
                    max_gallery_per_style=cfg.max_gallery_per_style,
                    heldout=named,
                )
                benchmark.save(cfg.output_dir / f"benchmark_seed{seed}")
                benchmarks.append(benchmark)
        else:
            raise ConfigError("set --source SHARDS (to build a benchmark) or --benchmark FOLDER")
    except (FileNotFoundError, BenchmarkSourceError, ValueError) as err:
        raise ConfigError(str(err)) from err
    encoders = {spec.name: build_embedder(spec, device) for spec in cfg.encoders}
    if len(encoders) != len(cfg.encoders):
        raise ConfigError("encoder names must be unique")
    if cfg.paired_encoder is not None and cfg.paired_encoder not in encoders:
        raise ConfigError(
            f"paired_encoder {cfg.paired_encoder!r} is not one of the encoders: {', '.join(encoders)}"
        )
    results = [
        evaluate(benchmark, encoders, ks=cfg.ks, batch_size=cfg.batch_size, standard_map=cfg.standard_map)
        for benchmark in benchmarks
    ]
    files = write_retrieval_report(
        results,
        benchmarks,
        cfg.output_dir,
        grid_queries=cfg.grid_queries,
        grid_top=cfg.grid_top,
        console=console,
        paired_encoder=cfg.paired_encoder,
    )
    rejected = sum(len(r.rejects) for r in results)
    console.print(
        f"wrote {', '.join(str(p) for p in files.values())}"
        + (f"; {rejected} rows skipped" if rejected else "")
    )
    return results


def run_dataset_quality(cfg: DatasetQualityConfig) -> dict[str, Any]:
    """Measure the dataset under each embedder; print and write the tables (and the paired leakage)."""
    from megastyle.bench.dataset_quality import measure_encoders, sample_dataset
    from megastyle.bench.leakage import compare_leakage
    from megastyle.bench.report import (
        leakage_paired_markdown,
        leakage_paired_table,
        quality_markdown,
        quality_table,
    )

    if cfg.source is None:
        raise ConfigError("set --source SHARDS")
    names = [spec.name for spec in cfg.encoders]
    if len(set(names)) != len(names):
        raise ConfigError("encoder names must be unique")
    if cfg.paired_encoder is not None and cfg.paired_encoder not in names:
        raise ConfigError(
            f"paired_encoder {cfg.paired_encoder!r} is not one of the encoders: {', '.join(names)}"
        )
    try:
        # One sample for every embedder: the same images and pairs, so leakage can be compared pair by pair.
        sample = sample_dataset(
            cfg.source,
            max_styles=cfg.max_styles,
            max_images_per_style=cfg.max_images_per_style,
            seed=cfg.seed,
        )
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"{cfg.source}: {err}") from err
    for reject in sample.rejects[:5]:
        console.print(f"[yellow]skipped[/yellow] {reject.item}: {reject.cause}")
    device = resolve_device(cfg.device)
    qualities, matched = {}, {}
    for spec in cfg.encoders:
        try:  # one encoder in memory at a time
            quality, leakage = measure_encoders(
                sample.images,
                sample.styles,
                sample.contents,
                {spec.name: build_embedder(spec, device)},
                max_pairs=cfg.max_pairs,
                seed=cfg.seed,
                batch_size=cfg.batch_size,
            )
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(f"{spec.name}: {err}") from err
        qualities.update(quality)
        matched.update(leakage)
    quality_table(qualities, console)
    paired = compare_leakage(matched, cfg.paired_encoder)
    if paired:
        leakage_paired_table(paired, console)
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    payload = {name: q.as_dict() for name, q in qualities.items()}
    (cfg.output_dir / "quality.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    paired_json = json.dumps([d.as_dict() for d in paired], indent=2)
    (cfg.output_dir / "leakage_paired.json").write_text(paired_json, encoding="utf-8")
    markdown = quality_markdown(qualities) + (f"\n{leakage_paired_markdown(paired)}" if paired else "")
    (cfg.output_dir / "quality.md").write_text(markdown, encoding="utf-8")
    if sample.rejects:
        console.print(f"{len(sample.rejects)} images skipped")
    return qualities


def _query_images(paths: list[Path]) -> list[tuple[str, Any]]:
    from megastyle.data import decode_image
    from megastyle.data.images import IMAGE_EXTENSIONS

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"query {path} does not exist")
    if not files:
        raise ConfigError("no query images: set --queries IMAGE_OR_FOLDER")
    return [(str(f), decode_image(f.read_bytes(), item=str(f))) for f in files]


def run_search(cfg: SearchConfig) -> Any:
    """Load or build the index, embed the queries with the encoder, write the HTML page."""
    from megastyle.encode.search import SearchIndex, build_index, write_search_html

    try:
        if cfg.index is not None:
            index = SearchIndex.load(cfg.index)
        elif cfg.embeddings is not None:
            index = build_index(cfg.embeddings, kind=cfg.kind)
        else:
            raise ConfigError("set --index FOLDER or --embeddings FILE")
    except (FileNotFoundError, ImportError, ValueError) as err:
        raise ConfigError(str(err)) from err
    if cfg.save_index is not None:
        index.save(cfg.save_index)
    queries = _query_images(cfg.queries)
    encoder = load_encoder_from_config(cfg)
    embeddings = encoder.embed_images([image for _, image in queries], batch_size=cfg.batch_size)
    if embeddings.shape[1] != index.dim:
        raise ConfigError(f"encoder embeds {embeddings.shape[1]}-d, the index holds {index.dim}-d vectors")
    hits = index.search(embeddings, cfg.k)
    page = write_search_html(cfg.output, queries, hits)
    table = Table(title=f"top {cfg.k} ({index.kind}, {index.backend})")
    for column in ("query", "rank", "id", "score"):
        table.add_column(column)
    for (name, _), row in zip(queries, hits, strict=True):
        for hit in row[:3]:
            table.add_row(Path(name).name, str(hit.rank), hit.id, f"{hit.score:.3f}")
    console.print(table)
    console.print(f"wrote {page}")
    return hits


bench_app = typer.Typer(help="Benchmarks: style retrieval and dataset quality.", no_args_is_help=True)
config_command(
    bench_app, "retrieval", RetrievalConfig, "StyleRetrieval: Recall@k, mAP@k, mAP on held-out styles."
)(run_retrieval)
config_command(
    bench_app, "dataset", DatasetQualityConfig, "Dataset quality: consistency, diversity, leakage."
)(run_dataset_quality)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` sub-app and the ``search`` command to ``app``."""
    app.add_typer(bench_app, name="bench")
    config_command(
        app, "search", SearchConfig, "Search a collection by style: top-k with thumbnails in HTML."
    )(run_search)
