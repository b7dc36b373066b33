"""Quickstart stages 2–3: train the tiny MegaStyle-Encoder on the curated data, benchmark retrieval.

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
from megastyle.bench.dataset_quality import dataset_quality
from megastyle.bench.report import (
    PAIRED_COLUMNS,
    format_interval,
    paired_cells,
    quality_table,
    summarise,
    write_retrieval_report,
)
from megastyle.bench.retrieval import Embedder, RetrievalBenchmark, build_benchmark, evaluate
from megastyle.data import build_style_index
from megastyle.encode.model import StyleEncoder
from megastyle.encode.train import build_encoder, train_encoder
from megastyle.encode.train_config import TinyTowerConfig, TrainEncoderConfig
from megastyle.report.html import Section


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
) -> tuple[dict[str, Any], Section]:
    """Build the held-out benchmark, train the encoder on the rest, evaluate every encoder, report."""
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
    encoders: dict[str, Embedder] = {
        "megastyle-tiny (SSCL)": StyleEncoder.from_pretrained(trained.encoder_dir),
        "same tower, untrained": build_encoder(train_cfg),
        "colour histogram": ColorHistogramEmbedder(),
        "Gram (random conv)": GramEmbedder(seed=seed),
    }
    if caption_comparator:
        # The same tower and schedule trained CLIP-style on each image's full prompt (content and style):
        # what a style encoder built from a caption-trained model starts from, and what leaks content.
        caption_cfg = train_cfg.model_copy(
            update={"output_dir": out / "encoder_caption", "text_target": "caption", "supcon_weight": 0.0,
                    "siglip_weight": 1.0}
        )  # fmt: skip
        caption_trained = train_encoder(caption_cfg)
        encoders["same tower, caption-trained"] = StyleEncoder.from_pretrained(caption_trained.encoder_dir)
    result = evaluate(benchmark, encoders, ks=(1, 10, 100))
    files = write_retrieval_report([result], [benchmark], out / "retrieval")
    paired = compare_encoders(result)  # the trained encoder minus each other one, as the report prints it

    # Content leakage on the held-out images: same-content/different-style pairs vs other pairs.
    items = [*benchmark.queries, *benchmark.gallery]
    images = benchmark.load_images(items)
    styles = np.array([item.label for item in items])
    contents = np.array([-1 if item.content_id is None else item.content_id for item in items])
    leakage, qualities = {}, {}
    for name, embedder in encoders.items():
        quality = dataset_quality(embedder.embed_images(images, batch_size=32), styles, contents, seed=seed)
        qualities[name] = quality
        leakage[name] = {
            "intra_style_consistency": quality.intra_style_consistency,
            "inter_style_diversity": quality.inter_style_diversity,
            "content_leakage_auc": quality.leakage_auc,
            "content_leakage_auc_ci95": quality.leakage_auc_ci95,
        }
    (out / "retrieval" / "leakage.json").write_text(json.dumps(leakage, indent=2))
    quality_table(qualities)  # the terminal's copy, beside the retrieval table

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
    }
    section = Section("2. MegaStyle-Encoder and 3. StyleRetrieval benchmark").text(
        f"A tiny SigLIP-architecture vision tower trained from scratch with SSCL (SupCon over style labels + "
        f"SigLIP image–text loss against the style prompts embedded by the packaged MiniLM) for {trained.steps} "
        f"steps on the curated dataset, without the {len(benchmark.heldout_styles)} held-out styles. Retrieval "
        f"on those held-out styles: {len(benchmark.queries)} queries against a gallery of {len(benchmark.gallery)}."
        + (
            " 'same tower, caption-trained' is the same tower and schedule trained CLIP-style on each image's "
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
        ],
        [
            (
                name,
                v["intra_style_consistency"],
                v["inter_style_diversity"],
                v["content_leakage_auc"],
                format_interval(v["content_leakage_auc_ci95"]),
            )
            for name, v in leakage.items()
        ],
    )
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
    return summary, section
