"""The benchmark commands as library functions: ``bench retrieval``, ``bench dataset`` and ``bench transfer``.

Each command is a typed config (read from TOML, every field overridable on the command line) and a
``run_*`` function that prints its tables and writes its report files; ``megastyle.cli`` only
registers them. Heavy modules are imported inside the run functions, so registering stays fast.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from rich.console import Console

from megastyle.bench.encoders import EncoderSpec, build_embedder, default_encoders
from megastyle.config import CommandConfig, ConfigError
from megastyle.data.collections import (
    SourceForm,
    content_column_field,
    form_field,
    image_column_field,
    style_column_field,
)
from megastyle.devices import resolve_device
from megastyle.transfer.commands import GenerationSettings

console = Console()


# ----- megastyle bench retrieval ------------------------------------------------------------------
class RetrievalConfig(CommandConfig):
    """Build (or load) a StyleRetrieval benchmark and score encoders on it."""

    toml_section: ClassVar[str] = "bench_retrieval"

    source: Path | None = Field(
        None,
        description="Style-labelled images to build the benchmark from: shards, a folder per style, a "
        "CSV/JSONL manifest or labelled Parquet (imported once under output_dir/imported).",
    )
    source_form: SourceForm = form_field()
    image_column: str | None = image_column_field()
    style_column: str | None = style_column_field()
    content_column: str | None = content_column_field()
    benchmark: Path | None = Field(
        None, description="A saved benchmark folder (then `source` only relocates it)."
    )
    all_styles: bool = Field(
        False,
        description="Score every style of the source (an external labelled set), none held out: "
        "`queries` decides the split; holdout_styles, heldout_styles_file, distractor_styles are ignored.",
    )
    queries: float | Literal["leave-one-out"] = Field(
        "leave-one-out",
        description="With all_styles: 'leave-one-out' (every image a query against all the others) or the "
        "share of each style's images used as queries, in (0, 1).",
    )
    exclude_duplicates: bool = Field(
        True, description="Leave gallery images with a query's exact bytes (sha256) out of scoring; reported."
    )
    export_embeddings: Path | None = Field(
        None,
        description="Write every encoder's embeddings here (safetensors + Parquet sidecar of ids and labels, "
        "and split.parquet with each image's role).",
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
    encoders: list[EncoderSpec] = Field(default_factory=default_encoders, description="Encoders to score.")
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

    @field_validator("queries")
    @classmethod
    def _check_queries(cls, value: float | str) -> float | str:
        if isinstance(value, float) and not 0.0 < value < 1.0:
            raise ValueError(f"a share of each style's images, in (0, 1), or 'leave-one-out'; got {value}")
        return value


def _source_shards(cfg: Any, source: Path, *, progress: bool = True) -> Path:
    """The shards of a command's ``source``: itself, or its import under ``output_dir/imported`` (reused)."""
    from megastyle.data.collections import CollectionOptions, ensure_shards

    resolved = ensure_shards(
        source, CollectionOptions.of(cfg), cache_root=cfg.output_dir / "imported", progress=progress
    )
    notice = resolved.notice()
    if notice:
        console.print(notice, highlight=False)
    return resolved.shards


def run_retrieval(cfg: RetrievalConfig) -> list[Any]:
    """Build or load benchmarks, evaluate every encoder, print and write the report."""
    from megastyle.bench.report import write_retrieval_report
    from megastyle.bench.retrieval import (
        BenchmarkSourceError,
        RetrievalBenchmark,
        build_all_styles_benchmark,
        build_benchmark,
        evaluate,
        export_embeddings,
        load_heldout_styles,
    )

    device = resolve_device(cfg.device)
    benchmarks = []
    try:
        if cfg.benchmark is not None:
            benchmarks.append(RetrievalBenchmark.load(cfg.benchmark, source=cfg.source))
        elif cfg.source is not None:
            shards = _source_shards(cfg, cfg.source)
            named = load_heldout_styles(cfg.heldout_styles_file).entries if cfg.heldout_styles_file else None
            for seed in cfg.seeds:
                if cfg.all_styles:
                    benchmark = build_all_styles_benchmark(
                        shards,
                        queries=cfg.queries,
                        seed=seed,
                        min_images_per_style=cfg.min_images_per_style,
                        max_gallery_per_style=cfg.max_gallery_per_style,
                    )
                else:
                    benchmark = build_benchmark(
                        shards,
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
    except ConfigError:
        raise
    except (FileNotFoundError, BenchmarkSourceError) as err:
        raise ConfigError(str(err)) from err
    except ValueError as err:
        raise ConfigError(f"{cfg.source or cfg.benchmark}: {err}") from err
    encoders = {spec.name: build_embedder(spec, device) for spec in cfg.encoders}
    if len(encoders) != len(cfg.encoders):
        raise ConfigError("encoder names must be unique")
    if cfg.paired_encoder is not None and cfg.paired_encoder not in encoders:
        raise ConfigError(
            f"paired_encoder {cfg.paired_encoder!r} is not one of the encoders: {', '.join(encoders)}"
        )
    results = [
        evaluate(
            benchmark,
            encoders,
            ks=cfg.ks,
            batch_size=cfg.batch_size,
            standard_map=cfg.standard_map,
            progress=True,
            exclude_duplicates=cfg.exclude_duplicates,
            keep_embeddings=cfg.export_embeddings is not None,
        )
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
    if cfg.export_embeddings is not None:
        for result, benchmark in zip(results, benchmarks, strict=True):
            seed = result.benchmark.get("params", {}).get("seed")
            folder = cfg.export_embeddings / f"seed{seed}" if len(results) > 1 else cfg.export_embeddings
            exported = export_embeddings(result, benchmark, folder)
            console.print(f"embeddings of {len(exported) - 1} encoders written to {folder}", highlight=False)
    rejected = sum(len(r.rejects) for r in results)
    console.print(
        f"wrote {', '.join(str(p) for p in files.values())}"
        + (f"; {rejected} rows skipped" if rejected else "")
    )
    return results


# ----- megastyle bench dataset --------------------------------------------------------------------
class DatasetQualityConfig(CommandConfig):
    """Intra-style consistency, inter-style diversity and content leakage of a dataset."""

    toml_section: ClassVar[str] = "bench_dataset"

    source: Path | None = Field(
        None,
        description="Style-labelled images: shards, a folder per style, a CSV/JSONL manifest or labelled "
        "Parquet (imported once under output_dir/imported).",
    )
    source_form: SourceForm = form_field()
    image_column: str | None = image_column_field()
    style_column: str | None = style_column_field()
    content_column: str | None = content_column_field()
    encoders: list[EncoderSpec] = Field(default_factory=default_encoders, description="Embedders to use.")
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
    shards = _source_shards(cfg, cfg.source)
    try:
        # One sample for every embedder: the same images and pairs, so leakage can be compared pair by pair.
        sample = sample_dataset(
            shards,
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
                progress=True,
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


# ----- megastyle bench transfer -------------------------------------------------------------------
class GeneratorSpec(BaseModel):
    """One generator of the benchmark."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Row name in the table.")
    kind: Literal["megastyle", "no_reference", "copy"] = Field(
        "megastyle",
        description="megastyle: the pipeline with the reference (+ LoRA); no_reference: plain FLUX text-to-image "
        "(style floor); copy: returns the reference (leakage ceiling).",
    )
    model: Path | None = Field(None, description="FLUX folder (default: the command's `model`).")
    lora: Path | None = Field(None, description="LoRA file (none = untrained).")
    lora_scale: float = Field(1.0, description="LoRA strength.")


class TransferBenchConfig(GenerationSettings):
    """StyleBench-like evaluation: references × content prompts → style score, text score, content leakage."""

    toml_section: ClassVar[str] = "bench_transfer"
    aliases: ClassVar[dict[str, str]] = {"references": "source"}

    source: Path | None = Field(
        None,
        description="The references: a folder of images (one style each), or megastyle shards (one per style).",
    )
    max_styles: int = Field(8, ge=0, description="References sampled (one per style; 0 = all).")
    prompts: list[str] = Field(
        ["A bench", "A car", "A house with a tree beside"], description="Content prompts (official three)."
    )
    extra_prompts: list[str] = Field(default_factory=list, description="More content prompts.")
    prompts_file: Path | None = Field(None, description="Text file with more prompts, one per line.")
    lora: Path | None = Field(None, description="LoRA of the default 'megastyle' generator.")
    generators: list[GeneratorSpec] = Field(
        default_factory=list, description="Generators (default: megastyle from model/lora, plus copy)."
    )
    style_encoder: Path | None = Field(None, description="Style encoder folder (ours, or HF SigLIP/CLIP).")
    clip_model: Path | None = Field(None, description="Local CLIP folder for text score and leakage.")
    output_dir: Path = Field(Path("runs/bench/transfer"), description="Folder for the table and grids.")
    save_images: bool = Field(False, description="Also write every generated image.")
    thumb: int = Field(128, ge=16, description="Grid tile side in pixels.")


def _bench_prompts(cfg: TransferBenchConfig) -> list[str]:
    prompts = [*cfg.prompts, *cfg.extra_prompts]
    if cfg.prompts_file is not None:
        if not cfg.prompts_file.is_file():
            raise ConfigError(f"prompts file {cfg.prompts_file} does not exist")
        prompts += cfg.prompts_file.read_text(encoding="utf-8").splitlines()
    prompts = list(dict.fromkeys(p.strip() for p in prompts if p.strip()))  # de-duplicated, in order
    if not prompts:
        raise ConfigError("no content prompts")
    return prompts


def _bench_specs(cfg: TransferBenchConfig) -> list[GeneratorSpec]:
    specs = cfg.generators or [
        GeneratorSpec(name="megastyle" if cfg.lora else "untrained", lora=cfg.lora),
        GeneratorSpec(name="copy_reference", kind="copy"),
    ]
    if len({s.name for s in specs}) != len(specs):
        raise ConfigError("generator names must be unique")
    return specs


def run_bench_transfer(cfg: TransferBenchConfig) -> Any:
    """Evaluate each generator on the same references/prompts/seeds; print and write the report."""
    from megastyle.bench.clip import ClipScorer
    from megastyle.bench.transfer import (
        CopyReferenceGenerator,
        evaluate_transfer,
        transfer_table,
        write_transfer_report,
    )
    from megastyle.encode.model import StyleEncoder
    from megastyle.transfer.commands import pipeline_generator
    from megastyle.transfer.generate import load_references
    from megastyle.transfer.loading import check_size, load_pipeline, resolve_dtype

    if cfg.source is None:
        raise ConfigError("--source: no references given (a folder of images, or megastyle shards)")
    if cfg.style_encoder is None or cfg.clip_model is None:
        raise ConfigError("set --style-encoder FOLDER and --clip-model FOLDER (local models)")
    prompts = _bench_prompts(cfg)
    specs = _bench_specs(cfg)
    try:
        references, ref_rejects = load_references(
            cfg.source, max_styles=cfg.max_styles or None, seed=cfg.seed
        )
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    for reject in ref_rejects[:10]:
        console.print(f"[yellow]skipped reference[/yellow] {reject.item}: {reject.cause}")
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    try:
        encoder = StyleEncoder.from_pretrained(cfg.style_encoder, device=device)
        clip = ClipScorer(cfg.clip_model, device=device)
    except (FileNotFoundError, OSError, ValueError) as err:
        raise ConfigError(str(err)) from err
    result, lora_reports = None, {}
    for spec in specs:  # one pipeline in memory at a time
        lora_report = None
        if spec.kind == "copy":
            generator: Any = CopyReferenceGenerator()
        else:
            pipe, lora_report = load_pipeline(
                spec.model or cfg.model, spec.lora, spec.lora_scale, dtype, device
            )
            check_size(pipe, cfg.size)
            generator = pipeline_generator(pipe, cfg, use_reference=spec.kind == "megastyle")
        console.print(f"generating with {spec.name} ({spec.kind})")
        part = evaluate_transfer(
            {spec.name: generator},
            references,
            prompts,
            encoder,
            clip,
            seed=cfg.seed,
            batch_size=cfg.batch_size,
        )
        lora_reports[spec.name] = lora_report
        if result is None:
            result = part
        else:
            result.runs.update(part.runs)
        del generator
        gc.collect()
    assert result is not None  # specs is never empty
    result.settings = {"config": cfg.model_dump(mode="json"), "device": device, "dtype": str(dtype),
                       "lora_reports": lora_reports, "rejected_references": [r.item for r in ref_rejects]}  # fmt: skip
    transfer_table(result, console)
    files = write_transfer_report(result, cfg.output_dir, save_images=cfg.save_images, thumb=cfg.thumb)
    console.print("wrote " + ", ".join(str(p) for p in files.values()))
    return result
