"""Content leakage of the quickstart's encoders over several saved runs: per run, and pooled across runs.

    python benchmarks/bench_leakage_runs.py runs/quickstart runs/seed1 runs/seed2 [--grid] [--markdown FILE]

A script: prints, never asserts. For each quickstart output folder it loads the trained encoders
the run saved (SSCL, and the caption-trained comparator when present), rebuilds the untrained
tower from the run's seed and the training-free baselines, and measures content leakage on the
run's held-out images, as the quickstart does: the global AUC and the matched AUC
(``megastyle.bench.leakage``), each with its 95% interval. Then the trained encoder's matched
leakage minus each other encoder's, pair by pair, per run and pooled over all runs. Every interval
resamples contents and styles together (``megastyle.bench.leakage.two_way_interval``); the pooled one
does so within each run. It holds each run's trained encoders fixed, so it covers the variation of
contents and styles, not that of training runs: read it beside the per-run rows.

With ``--grid`` the images are the controlled grid instead (``megastyle.bench.leakage_grid``): every
held-out style rendered with every content prompt of the run's dataset, by the run's own backend and
settings, as the quickstart does.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    """Measure every run, print per-run and pooled tables, optionally write them as Markdown."""
    import numpy as np

    from megastyle.bench.leakage import compare_leakage, two_way_interval
    from megastyle.bench.leakage_grid import grid_leakage, render_grid
    from megastyle.bench.report import format_interval, format_with_interval
    from megastyle.bench.retrieval import RetrievalBenchmark
    from megastyle.config import load_config
    from megastyle.curate.generators import load_backend
    from megastyle.quickstart import QuickstartConfig
    from megastyle.quickstart_encoder import (
        TRAINED,
        grid_prompts,
        heldout_leakage,
        quickstart_encoders,
        saved_run_train_config,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="Quickstart output folders.")
    parser.add_argument("--grid", action="store_true", help="Measure on the style × content grid.")
    parser.add_argument("--markdown", type=Path, default=None, help="Also write the tables here.")
    args = parser.parse_args()

    lines = [
        "| run | encoder | global AUC (95% interval) | matched AUC (95% interval) | pairs |",
        "|---" * 5 + "|",
    ]
    diff_lines = [
        "| run | trained minus | matched difference | 95% interval | less / more |",
        "|---" * 5 + "|",
    ]
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for run in args.runs:
        for name in ("encoder", "curate", "benchmark"):
            if not (run / name).is_dir():
                raise SystemExit(f"{run}: not a quickstart output folder (no {name}/)")
        train_cfg = saved_run_train_config(run, run / "encoder")
        caption = run / "encoder_caption" / "encoder"
        encoders = quickstart_encoders(
            train_cfg, run / "encoder" / "encoder", caption if caption.is_dir() else None
        )
        benchmark = RetrievalBenchmark.load(run / "benchmark")
        if args.grid:
            run_cfg = load_config(QuickstartConfig, run / "config.toml")
            backend = load_backend(run_cfg.backend, **run_cfg.generate_options())
            styles, contents = grid_prompts(benchmark, run / "curate" / "dataset")
            grid = render_grid(backend, styles, contents, size=run_cfg.image_size, seed=run_cfg.seed)
            qualities, matched = grid_leakage(grid, encoders, seed=run_cfg.seed)
        else:
            qualities, matched = heldout_leakage(benchmark, encoders, train_cfg.seed)
        for name, q in qualities.items():
            lines.append(
                f"| {run} | {name} | {format_with_interval(q.leakage_auc, q.leakage_auc_ci95)} | "
                f"{format_with_interval(q.leakage_matched_auc, q.leakage_matched_auc_ci95)} | {q.matched_pairs} |"
            )
        if not len(matched[TRAINED].values):
            print(f"{run}: no same-content pairs of different styles among the held-out images")
            continue
        for d in compare_leakage(matched, TRAINED):
            diff_lines.append(
                f"| {run} | {d.other} | {d.difference:+.3f} | {format_interval(d.ci95, signed=True)} | "
                f"{d.less} / {d.more} |"
            )
            delta = matched[TRAINED].values - matched[d.other].values
            pooled.setdefault(d.other, []).append((delta, matched[TRAINED].contents, matched[TRAINED].styles))
    for other, parts in pooled.items():
        if len(parts) < 2:
            continue
        delta = np.concatenate([p[0] for p in parts])
        strata = np.concatenate([np.full(len(p[0]), k) for k, p in enumerate(parts)])
        contents = np.concatenate([p[1] for p in parts])
        styles = np.concatenate([p[2] for p in parts])
        low, high = two_way_interval(delta, contents, styles, strata=strata)
        diff_lines.append(
            f"| pooled ({len(parts)} runs) | {other} | {delta.mean():+.3f} | [{low:+.3f}, {high:+.3f}] | "
            f"{int((delta < 0).sum())} / {int((delta > 0).sum())} |"
        )
    where = (
        "the style × content grid of each run's held-out styles"
        if args.grid
        else "each run's held-out images"
    )
    text = (
        f"Content leakage on {where} (AUC 0.5 = none; matched: against pairs of the same two "
        "styles only):\n\n" + "\n".join(lines) + "\n\n"
        f"Matched leakage, {TRAINED} minus each encoder, pair by pair (negative: it leaks less):\n\n"
        + "\n".join(diff_lines)
        + "\n"
    )
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
