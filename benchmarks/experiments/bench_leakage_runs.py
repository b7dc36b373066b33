"""Content leakage of the quickstart's encoders over several saved runs: per run, and pooled across runs.

    python benchmarks/experiments/bench_leakage_runs.py runs/study/seed0 runs/study/seed1 runs/study/seed2
        [--grid] [--markdown FILE] [--extra-styles N [--extra-styles-from RUN ...]]

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
settings, as the quickstart does. ``--extra-styles N`` widens the grid with N more styles that the
run's encoders never saw: style prompts of other runs' datasets (``--extra-styles-from``, default the
other runs given) that appear nowhere in this run's dataset, a seeded sample. They come from the same
pipeline (captioned pool, palette families, balancing), so they are like the held-out styles, and
the intervals, which resample styles, narrow with their number.

The runs measured in ``benchmarks/results/`` (see ``docs/results.md``) come from the study preset,
one folder per seed: ``megastyle quickstart --preset study --seed N --style-transfer false
--output-dir runs/study/seedN``. A folder of the plain ``megastyle quickstart`` (a smaller run) works
too, but its numbers do not compare with the study's.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def dataset_styles(run: Path) -> set[str]:
    """Every style prompt in a run's dataset."""
    from megastyle.data import ShardReader

    return set(ShardReader(run / "curate" / "dataset").read_table(["style"]).column("style").to_pylist())


def unseen_styles(run: Path, sources: list[Path], count: int, *, seed: int) -> list[str]:
    """A seeded sample of ``count`` style prompts of ``sources`` that ``run``'s dataset does not hold."""
    import numpy as np

    seen = dataset_styles(run)
    pool = sorted(set().union(*(dataset_styles(source) for source in sources)) - seen)
    if len(pool) < count:
        raise SystemExit(
            f"{run}: --extra-styles {count}, but the other runs hold only {len(pool)} unseen styles"
        )
    chosen = np.random.default_rng(seed).choice(len(pool), size=count, replace=False)
    return [pool[i] for i in sorted(chosen)]


def main() -> None:
    """Measure every run, print per-run and pooled tables, optionally write them as Markdown."""
    import numpy as np

    from megastyle.bench.leakage import compare_leakage, two_way_interval
    from megastyle.bench.leakage_grid import grid_leakage, render_grid
    from megastyle.bench.report import format_interval, format_with_interval
    from megastyle.bench.retrieval import RetrievalBenchmark
    from megastyle.config import load_config
    from megastyle.curate.generators import load_backend
    from megastyle.quickstart.config import QuickstartConfig
    from megastyle.quickstart.encoder import TRAINED, grid_prompts, heldout_leakage, saved_run_encoders

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="Quickstart output folders.")
    parser.add_argument("--grid", action="store_true", help="Measure on the style × content grid.")
    parser.add_argument("--markdown", type=Path, default=None, help="Also write the tables here.")
    parser.add_argument("--extra-styles", type=int, default=0, help="Grid: this many unseen styles more.")
    parser.add_argument(
        "--extra-styles-from",
        type=Path,
        nargs="+",
        default=None,
        help="Runs to take them from (default: RUNS).",
    )
    args = parser.parse_args()
    if args.extra_styles and not args.grid:
        parser.error("--extra-styles widens the grid: add --grid")

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
        run_cfg = load_config(QuickstartConfig, run / "config.toml")
        encoders = saved_run_encoders(run)
        benchmark = RetrievalBenchmark.load(run / "benchmark")
        if args.grid:
            backend = load_backend(run_cfg.backend, **run_cfg.generate_options())
            styles, contents = grid_prompts(benchmark, run / "curate" / "dataset")
            if args.extra_styles:
                sources = [r for r in (args.extra_styles_from or args.runs) if r.resolve() != run.resolve()]
                styles += unseen_styles(run, sources, args.extra_styles, seed=run_cfg.seed)
            grid = render_grid(backend, styles, contents, size=run_cfg.image_size, seed=run_cfg.seed)
            qualities, matched = grid_leakage(grid, encoders, seed=run_cfg.seed)
        else:
            qualities, matched = heldout_leakage(benchmark, encoders, run_cfg.seed)
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
        interval = two_way_interval(delta, contents, styles, strata=strata)
        diff_lines.append(
            f"| pooled ({len(parts)} runs) | {other} | {delta.mean():+.3f} | {format_interval(interval, signed=True)} | "
            f"{int((delta < 0).sum())} / {int((delta > 0).sum())} |"
        )
    where = (
        "the style × content grid of each run's held-out styles"
        + (f" and {args.extra_styles} unseen styles of other runs" if args.extra_styles else "")
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
