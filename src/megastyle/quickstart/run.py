"""``megastyle quickstart``: the main job end to end on the embedded offline backends.

Offline pools → ``curate`` → the tiny encoder trained on all but the held-out styles and benchmarked
→ style transfer on a tiny untrained FLUX → ``report.html``. Every step logs to ``quickstart.log``
in the run folder, and to stderr when stderr is not a terminal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from megastyle.curate.pipeline import run_curate
from megastyle.data import ShardReader, atomic_write_text
from megastyle.data.folders import claim_output_dir
from megastyle.progress import configure_logging, log, remove_handlers, step
from megastyle.quickstart.config import QuickstartConfig
from megastyle.quickstart.pools import make_procedural_pools
from megastyle.quickstart.report import write_quickstart_report

console = Console(stderr=True)
LOG_NAME = "quickstart.log"


def plan_text(cfg: QuickstartConfig) -> str:
    """What the run is about to do, and roughly how long it takes (said before it starts)."""
    held_out = max(1, round(cfg.num_styles * cfg.holdout_fraction))
    steps = [
        f"1. pools: render {cfg.style_pool_images} style and {cfg.content_pool_images} content images offline",
        f"2. curate: caption, dedup, balance to {cfg.num_styles} styles × {cfg.contents_per_style} contents, "
        f"render {cfg.num_styles * cfg.contents_per_style} images with '{cfg.backend}'",
    ]
    if cfg.train_encoder:
        steps.append(
            f"3. encoder: hold out {held_out} styles, train the tiny encoder {cfg.encoder_epochs} epochs on the "
            "rest, benchmark retrieval and content leakage against training-free baselines"
        )
    if cfg.style_transfer:
        steps.append("4. transfer: the official three prompts in two dataset styles on a tiny untrained FLUX")
    steps.append(f"5. report: {cfg.output_dir / 'report.html'}")
    return (
        f"megastyle quickstart (preset '{cfg.preset}', seed {cfg.seed}): about {cfg.expected_minutes()} minutes "
        "on 2 idle cores at the preset's sizes; everything offline, nothing downloaded.\n  "
        + "\n  ".join(steps)
    )


def run_quickstart(cfg: QuickstartConfig) -> dict[str, Any]:
    """Make offline pools, curate a style dataset from them, train and benchmark the encoder,
    transfer style, and write the report; returns what ``results.json`` holds."""
    out = claim_output_dir(cfg.output_dir, "quickstart", legacy=lambda f: (f / "curate" / "stages").is_dir())
    handlers = configure_logging(out / LOG_NAME, stderr=False)
    try:
        console.print(plan_text(cfg))
        log.info(plan_text(cfg))
        return _run(cfg, out)
    finally:
        remove_handlers(handlers)


def _run(cfg: QuickstartConfig, out: Path) -> dict[str, Any]:
    atomic_write_text(out / "config.toml", cfg.to_toml())
    started = time.perf_counter()
    timings: dict[str, float] = {}

    start = time.perf_counter()
    with step("pools", enabled=cfg.progress):
        pools = make_procedural_pools(
            out / "pools",
            cfg.style_pool_images,
            cfg.content_pool_images,
            seed=cfg.seed,
            size=min(cfg.image_size, 192),
            palette_family_size=cfg.palette_family_size,
            progress=cfg.progress,
        )
    timings["pools"] = time.perf_counter() - start

    start = time.perf_counter()
    curate_cfg = cfg.curate_config(pools)
    curated = run_curate(curate_cfg)
    timings["curate"] = time.perf_counter() - start

    dataset_dir = curate_cfg.run_dir / "dataset"
    reader = ShardReader(dataset_dir)
    stages = curated["stages"]
    results: dict[str, Any] = {
        "preset": cfg.preset,
        "seed": cfg.seed,
        "caption_backend": "heuristic",
        "generate_backend": cfg.backend,
        "style_prompts": stages["balance"]["style"]["n_selected"],
        "content_prompts": stages["balance"]["content"]["n_selected"],
        "rows": len(reader),
        "shards": len(reader.shards),
        "rejects": curated["rejects"],
    }
    encoder_section = transfer_section = None
    if cfg.train_encoder:
        from megastyle.curate.generators import load_backend
        from megastyle.quickstart.encoder import train_and_benchmark

        start = time.perf_counter()
        results["encoder"], encoder_section = train_and_benchmark(
            dataset_dir,
            out,
            seed=cfg.seed,
            holdout_fraction=cfg.holdout_fraction,
            epochs=cfg.encoder_epochs,
            image_size=cfg.encoder_image_size,
            crop_grid=cfg.encoder_crop_grid,
            caption_comparator=cfg.encoder_caption_comparator,
            caption_epochs=cfg.encoder_caption_epochs,
            progress=cfg.progress,
            grid_backend=(
                load_backend(curate_cfg.generate.backend, **curate_cfg.generate.options)
                if cfg.leakage_grid
                else None
            ),
            grid_image_size=cfg.image_size,
        )
        timings["encoder+benchmark"] = time.perf_counter() - start
    if cfg.style_transfer:
        from megastyle.quickstart.transfer import style_transfer_demo

        start = time.perf_counter()
        with step("transfer: tiny untrained FLUX", enabled=cfg.progress):
            results["transfer"], transfer_section = style_transfer_demo(dataset_dir, out, seed=cfg.seed)
        timings["transfer"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - started
    results["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, default=str))
    report = write_quickstart_report(
        cfg, results, curated, pools, curate_cfg.run_dir, encoder_section, transfer_section
    )
    log.info(f"quickstart: done in {timings['total']:.0f} s; report {report}")
    _print_summary(results, report)
    return results


def _print_summary(results: dict[str, Any], report: Path) -> None:
    """The last lines a user sees: the report's headline, how long each step took, where the report is."""
    from megastyle.quickstart.report import headline

    lines = [f"{name}: {text}" for name, text in headline(results)]
    lines.append("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in results["timings_s"].items()))
    lines.append(f"report: {report}")
    console.print("\n".join(lines))
