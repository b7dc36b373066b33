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
    format_interval,
    leakage_cells,
    leakage_paired_table,
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
from megastyle.progress import step
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
    with step("encoder: train the tiny tower (SSCL)", enabled=progress):
        trained = train_encoder(train_cfg)
    caption_dir, caption_steps = None, 0
    if caption_comparator:
        # The same tower trained CLIP-style on each image's full prompt (content and style):
        # what a style encoder built from a caption-trained model starts from, and what leaks content.
        caption_cfg = train_cfg.model_copy(
            update={"output_dir": out / "encoder_caption", "text_target": "caption", "supcon_weight": 0.0,
                    "siglip_weight": 1.0, "epochs": caption_epochs or epochs}
        )  # fmt: skip
        with step("encoder: train the caption-trained comparator", enabled=progress):
            caption_run = train_encoder(caption_cfg)
        caption_dir, caption_steps = caption_run.encoder_dir, caption_run.steps
    encoders = quickstart_encoders(train_cfg, trained.encoder_dir, caption_dir)
    with step(f"benchmark: retrieval on {len(benchmark.queries)} held-out queries", enabled=progress):
        result = evaluate(benchmark, encoders, ks=(1, 10, 100))
    files = write_retrieval_report([result], [benchmark], out / "retrieval")
    paired = compare_encoders(result)  # the trained encoder minus each other one, as the report prints it

    # Content leakage on the held-out images: same-content/different-style pairs vs other pairs.
    with step("benchmark: content leakage on the held-out images", enabled=progress):
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
    section = encoder_section(
        summary,
        benchmark,
        trained_steps=trained.steps,
        caption_steps=caption_steps if caption_comparator else 0,
    )
    section.image(files["plot"], out, "Recall@k and mAP@k of each encoder on the held-out styles.", width=720)
    grid = files.get(f"grid:{TRAINED}")
    if grid is not None:
        section.image(
            grid, out, "Held-out queries (blue frame) and the trained encoder's top results (green: same style).",
            width=900,
        )  # fmt: skip
    section.heading("Content leakage")
    section.text(
        "Content leakage asks whether two images of different styles score as similar because they show the same "
        "content. Matched AUC compares each same-content pair only with pairs of the same two styles that do not "
        "share a content, so how alike two styles look cancels out: 0.5 means no leakage, higher means leakage."
    )
    section.table(
        ["encoder", "matched AUC (held-out images)", "95% interval", "intra-style consistency", "inter-style diversity"],
        [
            (name, v["content_leakage_matched_auc"], format_interval(v["content_leakage_matched_auc_ci95"]),
             v["intra_style_consistency"], v["inter_style_diversity"])
            for name, v in leakage.items()
        ],
        caption="On the benchmark's own held-out images (each style has few contents, so these intervals are "
        "wide). Consistency: mean cosine within a style; diversity: 1 minus the mean cosine across styles.",
    )  # fmt: skip
    if leakage_paired:
        section.table(
            LEAKAGE_COLUMNS,
            [leakage_cells(d) for d in leakage_paired],
            caption=f"The trained encoder's matched leakage minus each other encoder's over the same "
            f"{leakage_paired[0].pairs} same-content pairs: negative means it leaks less; the interval resamples "
            "contents and styles together; less/more counts the pairs where it scores lower/higher.",
        )
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
    with step(f"benchmark: content leakage on the {len(grid.images)}-image grid", enabled=progress):
        qualities, matched = grid_leakage(grid, encoders, seed=seed, progress=progress)
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
    section.heading("Controlled leakage grid")
    section.text(
        f"Each of the {len(styles)} held-out styles rendered with each of the {len(contents)} content prompts "
        f"({len(grid.images)} images, backend '{getattr(backend, 'name', '?')}'), so every pair of styles shares "
        f"every content: {len(matched[TRAINED].values)} same-content pairs, far more than the held-out images give."
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
        section.table(
            LEAKAGE_COLUMNS,
            [leakage_cells(d) for d in paired],
            caption="The trained encoder's matched leakage on the grid minus each other encoder's, pair by pair "
            "(negative: it leaks less; the interval resamples contents and styles together).",
        )
    return summary


def encoder_section(
    summary: dict[str, Any], benchmark: RetrievalBenchmark, *, trained_steps: int, caption_steps: int
) -> Section:
    """What was trained, the retrieval table and the paired comparison, each with a plain sentence."""
    section = Section("2. Encoder and style retrieval").text(
        f"A tiny SigLIP-architecture vision tower trained from scratch for {trained_steps} steps with SSCL: "
        "SupCon over style labels plus the SigLIP image–text loss against the style prompts, embedded by the "
        f"packaged MiniLM. It never saw the {len(benchmark.heldout_styles)} held-out styles; the benchmark asks "
        f"it to find, for each of {len(benchmark.queries)} held-out queries, images of the same style among "
        f"{len(benchmark.gallery)} gallery images. It is compared with the same tower untrained, two "
        "training-free baselines (colour histogram, Gram matrices of a random conv net)"
        + (
            f" and the same tower trained CLIP-style on full prompts ({caption_steps} steps), which shows what "
            "content leakage looks like."
            if caption_steps
            else "."
        )
    )
    table = summary["retrieval"]
    metrics = ["recall@1", "recall@10", "map@10", "mAP"]
    section.table(
        ["encoder", "Recall@1", "Recall@10", "mAP@10", "mAP"],
        [(name, *(vals.get(m) for m in metrics)) for name, vals in table.items()],
        caption="Recall@k: share of queries with a same-style image in their top k. mAP@k (CSD's definition): "
        "the mean precision over the first k results. mAP: standard mean average precision over the whole "
        "ranking. Higher is better.",
    )
    # mAP@1 is Recall@1 (one result, relevant or not): the comparison is named for what a reader knows.
    names = {"map@1": "Recall@1", "map@10": "mAP@10", "mAP": "mAP"}
    paired = [d for d in summary["paired"] if d["metric"] in names]
    queries = len(benchmark.queries)
    section.table(
        ["against", "metric", "difference", "95% interval", "better / worse queries"],
        [
            (d["other"], names[d["metric"]], f"{d['difference']:+.3f}",
             format_interval(d["ci95"], signed=True), f"{d['better']} / {d['worse']}")
            for d in paired
        ],
        caption=f"The trained encoder minus each other encoder, query by query: an interval that excludes 0 is a "
        f"difference this benchmark can measure; one query moves Recall@1 by {1 / max(1, queries):.3f}, so small "
        "runs give wide intervals (the study preset's 800 styles are in docs/results.md).",
    )  # fmt: skip
    return section
