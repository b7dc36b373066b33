"""Quickstart steps 2–3: train the tiny MegaStyle-Encoder on the curated data, benchmark retrieval.

The benchmark's held-out styles are chosen first and excluded from training, so every number is
on styles the encoder never saw. The trained encoder is compared with its untrained self (same
seed, same architecture) and with the training-free baselines, through the same code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from megastyle.bench.baselines import ColorHistogramEmbedder, GramEmbedder
from megastyle.bench.compare import compare_encoders
from megastyle.bench.dataset_quality import DatasetQuality, measure_encoders
from megastyle.bench.encoders import Embedder
from megastyle.bench.leakage import MatchedLeakage, compare_leakage
from megastyle.bench.leakage_grid import grid_leakage, render_grid
from megastyle.bench.report import (
    LEAKAGE_COLUMNS,
    PAIRED_COLUMNS,
    format_interval,
    leakage_cells,
    leakage_paired_table,
    paired_cells,
    quality_table,
    summarise,
    write_retrieval_report,
)
from megastyle.bench.retrieval import RetrievalBenchmark, build_benchmark, evaluate
from megastyle.curate.generators.base import TextToImageBackend
from megastyle.data import ShardReader, build_style_index
from megastyle.encode.model import StyleEncoder
from megastyle.encode.train import build_encoder, train_encoder
from megastyle.encode.train_config import TinyTowerConfig, TrainEncoderConfig
from megastyle.report.html import Section

TRAINED = "megastyle-tiny (SSCL)"


def quickstart_train_config(
    dataset_dir: Path,
    benchmark: RetrievalBenchmark,
    benchmark_dir: Path,
    output_dir: Path,
    *,
    seed: int,
    epochs: int,
    progress: bool,
    image_size: int = 64,
    crop_grid: int = 0,
) -> TrainEncoderConfig:
    """The quickstart's encoder training: the tiny tower on every style the benchmark does not hold out."""
    train_styles = len(build_style_index(dataset_dir)) - len(benchmark.heldout_styles)
    return TrainEncoderConfig(
        data_dirs=[dataset_dir],
        output_dir=output_dir,
        holdout_styles_file=benchmark_dir / "heldout_styles.json",
        init="tiny",
        tiny=TinyTowerConfig(image_size=image_size, crop_grid=crop_grid),
        styles_per_batch=max(2, min(12, train_styles)),  # small runs have fewer styles than the default P
        epochs=epochs,
        seed=seed,
        progress=progress,
    )


def quickstart_encoders(
    train_cfg: TrainEncoderConfig, encoder_dir: Path, caption_dir: Path | None = None
) -> dict[str, Embedder]:
    """The quickstart's encoders in table order: trained, untrained (same seed), training-free, caption-trained."""
    encoders: dict[str, Embedder] = {
        TRAINED: StyleEncoder.from_pretrained(encoder_dir),
        "same tower, untrained": build_encoder(train_cfg),
        "colour histogram": ColorHistogramEmbedder(),
        "Gram (random conv)": GramEmbedder(seed=train_cfg.seed),
    }
    if caption_dir is not None:
        encoders["same tower, caption-trained"] = StyleEncoder.from_pretrained(caption_dir)
    return encoders


def heldout_leakage(
    benchmark: RetrievalBenchmark, encoders: dict[str, Embedder], seed: int
) -> tuple[dict[str, DatasetQuality], dict[str, MatchedLeakage]]:
    """Dataset quality and matched leakage of each encoder on the benchmark's held-out images."""
    items = [*benchmark.queries, *benchmark.gallery]
    images = benchmark.load_images(items)
    styles = np.array([item.label for item in items])
    # An image without a content id shares its content with no other image (a code of its own).
    contents = np.array(
        [-1 - i if item.content_id is None else item.content_id for i, item in enumerate(items)]
    )
    return measure_encoders(images, styles, contents, encoders, seed=seed)


def saved_run_train_config(run: Path, output_dir: Path) -> TrainEncoderConfig:
    """The encoder training config of a saved quickstart run (its dataset, benchmark and settings)."""
    from megastyle.config import load_config
    from megastyle.quickstart.config import QuickstartConfig

    run_cfg = load_config(QuickstartConfig, run / "config.toml")
    bench_dir = run / "benchmark"
    return quickstart_train_config(
        run / "curate" / "dataset",
        RetrievalBenchmark.load(bench_dir),
        bench_dir,
        output_dir,
        seed=run_cfg.seed,
        epochs=run_cfg.encoder_epochs,
        image_size=run_cfg.encoder_image_size,
        crop_grid=run_cfg.encoder_crop_grid,
        progress=False,
    )


def saved_run_encoders(run: Path) -> dict[str, Embedder]:
    """A saved quickstart run's encoders, as ``quickstart_encoders`` (the caption comparator when it was trained)."""
    caption = run / "encoder_caption" / "encoder"
    return quickstart_encoders(
        saved_run_train_config(run, run / "encoder"),
        run / "encoder" / "encoder",
        caption if caption.is_dir() else None,
    )


def train_and_benchmark(
    dataset_dir: Path,
    out: Path,
    *,
    seed: int,
    holdout_fraction: float,
    epochs: int,
    progress: bool,
    image_size: int = 64,
    crop_grid: int = 0,
    caption_comparator: bool = True,
    caption_epochs: int | None = None,
    grid_backend: TextToImageBackend | None = None,
    grid_image_size: int = 256,
) -> tuple[dict[str, Any], Section]:
    """Build the held-out benchmark, train the encoder on the rest, evaluate every encoder, report.

    With ``grid_backend``, also render every held-out style with every content prompt of the dataset
    and measure content leakage on that grid (``grid_leakage_report``). ``caption_epochs`` (default:
    ``epochs``) is the caption-trained comparator's schedule.
    """
    bench_dir = out / "benchmark"
    if (bench_dir / "benchmark.json").exists():
        benchmark = RetrievalBenchmark.load(bench_dir)
    else:
        benchmark = build_benchmark(
            dataset_dir, holdout_styles=holdout_fraction, queries_per_style=2, seed=seed
        )
        benchmark.save(bench_dir)

    train_cfg = quickstart_train_config(
        dataset_dir,
        benchmark,
        bench_dir,
        out / "encoder",
        seed=seed,
        epochs=epochs,
        image_size=image_size,
        crop_grid=crop_grid,
        progress=progress,
    )
    trained = train_encoder(train_cfg)
    caption_dir, caption_steps = None, 0
    if caption_comparator:
        # The same tower trained CLIP-style on each image's full prompt (content and style):
        # what a style encoder built from a caption-trained model starts from, and what leaks content.
        caption_cfg = train_cfg.model_copy(
            update={"output_dir": out / "encoder_caption", "text_target": "caption", "supcon_weight": 0.0,
                    "siglip_weight": 1.0, "epochs": caption_epochs or epochs}
        )  # fmt: skip
        caption_run = train_encoder(caption_cfg)
        caption_dir, caption_steps = caption_run.encoder_dir, caption_run.steps
    encoders = quickstart_encoders(train_cfg, trained.encoder_dir, caption_dir)
    result = evaluate(benchmark, encoders, ks=(1, 10, 100))
    files = write_retrieval_report([result], [benchmark], out / "retrieval")
    paired = compare_encoders(result)  # the trained encoder minus each other one, as the report prints it

    # Content leakage on the held-out images: same-content/different-style pairs vs other pairs.
    qualities, matched = heldout_leakage(benchmark, encoders, seed)
    leakage = {}
    for name, quality in qualities.items():
        leakage[name] = {
            "intra_style_consistency": quality.intra_style_consistency,
            "inter_style_diversity": quality.inter_style_diversity,
            "content_leakage_auc": quality.leakage_auc,
            "content_leakage_auc_ci95": quality.leakage_auc_ci95,
            "content_leakage_matched_auc": quality.leakage_matched_auc,
            "content_leakage_matched_auc_ci95": quality.leakage_matched_auc_ci95,
        }
    # The trained encoder's matched leakage minus each other encoder's, pair by pair.
    leakage_paired = compare_leakage(matched)
    (out / "retrieval" / "leakage.json").write_text(
        json.dumps({"encoders": leakage, "paired": [d.as_dict() for d in leakage_paired]}, indent=2)
    )
    quality_table(qualities)  # the terminal's copy, beside the retrieval table
    if leakage_paired:
        leakage_paired_table(leakage_paired)

    rows = summarise([result])
    table = {row.encoder: row.mean for row in rows}
    summary = {
        "heldout_styles": len(benchmark.heldout_styles),
        "queries": len(benchmark.queries),
        "gallery": len(benchmark.gallery),
        "train_steps": trained.steps,
        "final_loss": trained.final_loss,
        "retrieval": table,
        "paired": [d.as_dict() for d in paired],
        "leakage": leakage,
        "leakage_paired": [d.as_dict() for d in leakage_paired],
    }
    section = Section("2. MegaStyle-Encoder and 3. StyleRetrieval benchmark").text(
        f"A tiny SigLIP-architecture vision tower trained from scratch with SSCL (SupCon over style labels + "
        f"SigLIP image–text loss against the style prompts embedded by the packaged MiniLM) for {trained.steps} "
        f"steps on the curated dataset, without the {len(benchmark.heldout_styles)} held-out styles. Retrieval "
        f"on those held-out styles: {len(benchmark.queries)} queries against a gallery of {len(benchmark.gallery)}."
        + (
            f" 'same tower, caption-trained' is the same tower trained CLIP-style ({caption_steps} steps) on each image's "
            "full prompt (content and style): what a style encoder built on a caption-trained model starts "
            "from. Content leakage: the AUC of same-content pairs of different styles against other "
            "different-style pairs (0.5 = none), with a 95% interval from resampling contents."
            if caption_comparator
            else ""
        )
    )
    metrics = list(next(iter(table.values())).keys())
    section.table(
        ["encoder", *metrics], [(name, *(vals[m] for m in metrics)) for name, vals in table.items()]
    )
    section.table(
        [
            "encoder",
            "intra-style consistency",
            "inter-style diversity",
            "content leakage AUC (0.5 = none)",
            "AUC 95% interval",
            "matched AUC",
            "matched 95% interval",
        ],
        [
            (
                name,
                v["intra_style_consistency"],
                v["inter_style_diversity"],
                v["content_leakage_auc"],
                format_interval(v["content_leakage_auc_ci95"]),
                v["content_leakage_matched_auc"],
                format_interval(v["content_leakage_matched_auc_ci95"]),
            )
            for name, v in leakage.items()
        ],
    )
    if leakage_paired:
        section.text(
            "Matched leakage compares each same-content pair only with pairs of the same two styles that do "
            "not share the content, so how alike two styles look cancels out. The trained encoder's matched "
            f"leakage minus each other encoder's, over the same {leakage_paired[0].pairs} pairs (negative: "
            f"it leaks less); the 95% interval resamples the {leakage_paired[0].contents} contents and the "
            f"{leakage_paired[0].styles} styles together."
        )
        section.table(LEAKAGE_COLUMNS, [leakage_cells(d) for d in leakage_paired])
    section.text(
        f"The trained encoder minus each other encoder over the same {len(benchmark.queries)} queries; the 95% "
        f"interval resamples the {len(benchmark.heldout_styles)} held-out styles (one query moves Recall@1 by "
        f"{1 / max(1, len(benchmark.queries)):.4f})."
    )
    section.table(PAIRED_COLUMNS, [paired_cells(d) for d in paired])
    section.image(files["plot"], out, "Recall@k and mAP@k per encoder on held-out styles.")
    grid = files.get("grid:megastyle-tiny (SSCL)")
    if grid is not None:
        section.image(grid, out, "Queries (blue) and the trained encoder's top results (green: same style).")
    if grid_backend is not None:
        summary["leakage_grid"] = grid_leakage_report(
            benchmark, encoders, grid_backend, dataset_dir, out, section, size=grid_image_size, seed=seed,
            progress=progress,
        )  # fmt: skip
    return summary, section


def grid_prompts(benchmark: RetrievalBenchmark, dataset_dir: Path) -> tuple[list[str], list[str]]:
    """The leakage grid's prompts: the benchmark's held-out styles and every content of the dataset."""
    styles = [entry["style"] for entry in benchmark.heldout_styles]
    texts = ShardReader(dataset_dir).read_table(["content"]).column("content").to_pylist()
    contents = sorted({text for text in texts if text and text.strip()})
    return styles, contents


def grid_leakage_report(
    benchmark: RetrievalBenchmark,
    encoders: dict[str, Embedder],
    backend: TextToImageBackend,
    dataset_dir: Path,
    out: Path,
    section: Section,
    *,
    size: int,
    seed: int,
    progress: bool,
) -> dict[str, Any]:
    """Render held-out styles × the dataset's contents, measure each encoder's leakage, print and report it."""
    styles, contents = grid_prompts(benchmark, dataset_dir)
    grid = render_grid(backend, styles, contents, size=size, seed=seed, progress=progress)
    qualities, matched = grid_leakage(grid, encoders, seed=seed)
    # One content (or one encoder) leaves nothing to compare: the tables say so by their absence.
    paired = compare_leakage(matched)
    quality_table(qualities)
    if paired:
        leakage_paired_table(paired)
    summary = {
        "styles": len(styles),
        "contents": len(contents),
        "images": len(grid.images),
        "matched_auc": {name: q.leakage_matched_auc for name, q in qualities.items()},
        "matched_auc_ci95": {name: q.leakage_matched_auc_ci95 for name, q in qualities.items()},
        "global_auc": {name: q.leakage_auc for name, q in qualities.items()},
        "paired": [d.as_dict() for d in paired],
    }
    (out / "retrieval" / "leakage_grid.json").write_text(json.dumps(summary, indent=2))
    section.text(
        f"Controlled leakage test: each of the {len(styles)} held-out styles rendered with each of the "
        f"{len(contents)} content prompts ({len(grid.images)} images, backend '{getattr(backend, 'name', '?')}'), "
        f"so every pair of styles shares every content ({len(matched[TRAINED].values)} same-content pairs). "
        "Matched AUC "
        "(0.5 = no leakage) and the trained encoder minus each other encoder; intervals resample contents "
        "and styles together."
    )
    section.table(
        ["encoder", "matched AUC", "95% interval", "global AUC", "95% interval"],
        [
            (
                name,
                q.leakage_matched_auc,
                format_interval(q.leakage_matched_auc_ci95),
                q.leakage_auc,
                format_interval(q.leakage_auc_ci95),
            )
            for name, q in qualities.items()
        ],
    )
    if paired:
        section.table(LEAKAGE_COLUMNS, [leakage_cells(d) for d in paired])
    return summary
