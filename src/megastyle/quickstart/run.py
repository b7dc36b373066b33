"""``megastyle quickstart``: the main job end to end on the embedded offline backends."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from megastyle.curate.pipeline import run_curate
from megastyle.data import ShardReader
from megastyle.quickstart.config import QuickstartConfig
from megastyle.quickstart.pools import make_procedural_pools
from megastyle.report.html import Section, write_report

console = Console(stderr=True)


def run_quickstart(cfg: QuickstartConfig) -> dict[str, object]:
    """Make offline pools, curate a style dataset from them, and write the report."""
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.toml").write_text(cfg.to_toml())
    timings: dict[str, float] = {}

    start = time.perf_counter()
    pools = make_procedural_pools(
        out / "pools",
        cfg.style_pool_images,
        cfg.content_pool_images,
        seed=cfg.seed,
        size=min(cfg.image_size, 192),
        palette_family_size=cfg.palette_family_size,
    )
    timings["pools"] = time.perf_counter() - start

    start = time.perf_counter()
    curate_cfg = cfg.curate_config(pools)
    curated = run_curate(curate_cfg)
    timings["curate"] = time.perf_counter() - start

    dataset_dir = curate_cfg.run_dir / "dataset"
    reader = ShardReader(dataset_dir)
    stages = curated["stages"]
    results = {
        "caption_backend": "heuristic",
        "generate_backend": cfg.backend,
        "style_prompts": stages["balance"]["style"]["n_selected"],
        "content_prompts": stages["balance"]["content"]["n_selected"],
        "rows": len(reader),
        "shards": len(reader.shards),
        "rejects": curated["rejects"],
    }
    sections = []
    if cfg.train_encoder:
        from megastyle.curate.generators import load_backend
        from megastyle.quickstart.encoder import train_and_benchmark

        start = time.perf_counter()
        encoder_results, encoder_section = train_and_benchmark(
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
        results["encoder"] = encoder_results
        sections.append(encoder_section)
    if cfg.style_transfer:
        from megastyle.quickstart.transfer import style_transfer_demo

        start = time.perf_counter()
        results["transfer"], transfer_section = style_transfer_demo(dataset_dir, out, seed=cfg.seed)
        timings["transfer"] = time.perf_counter() - start
        sections.append(transfer_section)
    results["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    curation = Section("1. Curation").text(
        f"Offline pools ({pools.style_images} style images, {pools.content_images} content images with alt-text "
        f"captions, {pools.planted_bad_items} planted bad items) rendered by the procedural backend, in families of "
        f"{cfg.palette_family_size} style prompts sharing one palette and light. Style prompts were measured from "
        f"pixels by the heuristic captioner (offline; not a VLM; '{cfg.caption_colors}' colour names), content "
        "prompts came from the "
        "alt texts with style words removed; then exact/fuzzy/semantic dedup, hierarchical k-means balancing, "
        f"pairing, and rendering with '{cfg.backend}' at {cfg.image_size}² (shade variation "
        f"{cfg.shade_variation}: each image paints its style's palette in its own shades; content colour "
        f"{cfg.content_color}: objects keep the colour their content prompt gives them)."
    )
    curation.table(
        ["stage", "numbers", "seconds"],
        [
            (name, json.dumps(stages.get(name, {}), default=str)[:300], secs)
            for name, secs in curated["seconds"].items()
        ],
    )
    curation.text(
        f"{curated['rejects']} rejected items, each with its cause, in {curate_cfg.run_dir / 'rejects.jsonl'}."
    )
    curation.image(dataset_dir / "contact_sheet.png", out, "One row per style prompt of the curated dataset.")
    report = write_report(
        out / "report.html",
        "megastyle quickstart",
        [curation, *sections],
        subtitle=f"seed {cfg.seed}; embedded default backends (no model weights); config in config.toml",
    )
    _print_summary(results, report)
    return results


def _print_summary(results: dict[str, object], report: Path) -> None:
    table = Table(title="quickstart")
    table.add_column("item")
    table.add_column("value", justify="right")
    for key, value in results.items():
        if key != "encoder":  # printed as its own table by the benchmark
            table.add_row(key, str(value))
    console.print(table)
    console.print(f"report: {report}")
