"""Leave-one-out Recall@1 of the quickstart's encoders on every held-out image of saved runs.

    python benchmarks/experiments/bench_retrieval_loo.py runs/study/seed0 runs/study/seed1 runs/study/seed2
        [--markdown FILE] [--add NAME RUN ENCODER_FOLDER ...] [--reference NAME]

A script: prints, never asserts. The benchmark's query/gallery split asks 2 queries per held-out
style (80 on a study-preset run), so one query moves Recall@1 by 0.0125. Here every held-out image
(queries and gallery, 320 on a study-preset run) queries all the others, which quadruples the queries
without changing what is measured: is the nearest other image of the same style? The trained
encoder is compared with each other encoder query by query; the interval resamples whole styles
(a style's queries share their gallery), per run and pooled over runs.

``--add`` scores one more encoder on one run (repeat it per run), e.g. a variant that
``bench_encoder_variants.py`` retrained on that run's benchmark; ``--reference NAME`` compares that one,
instead of the run's trained encoder, with every other encoder of each run.

The runs measured in ``benchmarks/results/`` (see ``docs/results.md``) come from the study preset,
one folder per seed: ``megastyle quickstart --preset study --seed N --style-transfer false
--output-dir runs/study/seedN``. A folder of the plain ``megastyle quickstart`` (a smaller run) works
too, but its numbers do not compare with the study's.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    """Score every run, print per-run and pooled tables, optionally write them as Markdown."""
    import numpy as np

    from megastyle.bench.compare import cluster_bootstrap_interval
    from megastyle.bench.leakage import normalise_rows
    from megastyle.bench.report import format_interval
    from megastyle.bench.retrieval import RetrievalBenchmark
    from megastyle.encode.model import StyleEncoder
    from megastyle.quickstart.encoder import TRAINED, saved_run_encoders

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="Quickstart output folders.")
    parser.add_argument("--markdown", type=Path, default=None, help="Also write the tables here.")
    parser.add_argument(
        "--add",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "RUN", "ENCODER_FOLDER"),
        help="Also score the encoder saved in ENCODER_FOLDER (save_pretrained) on RUN, as NAME.",
    )
    parser.add_argument("--reference", default=TRAINED, help="The encoder compared with every other one.")
    args = parser.parse_args()
    given_runs = {run.resolve() for run in args.runs}
    added: dict[Path, dict[str, Path]] = {}
    for name, run, folder in args.add:
        run_path = Path(run).resolve()
        if run_path not in given_runs:
            raise SystemExit(f"--add {name}: {run} is not one of the runs given")
        if not Path(folder).is_dir():
            raise SystemExit(f"--add {name}: no encoder folder at {folder}")
        added.setdefault(run_path, {})[name] = Path(folder)

    lines = ["| run | encoder | leave-one-out Recall@1 | queries |", "|---" * 4 + "|"]
    diff_lines = [
        "| run | trained minus | Recall@1 difference | 95% interval | wins / losses |",
        "|---" * 5 + "|",
    ]
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for run in args.runs:
        if not (run / "benchmark").is_dir() or not (run / "encoder").is_dir():
            raise SystemExit(f"{run}: not a quickstart output folder (needs benchmark/ and encoder/)")
        encoders = saved_run_encoders(run)
        for name, folder in added.get(run.resolve(), {}).items():
            encoders[name] = StyleEncoder.from_pretrained(folder)
        if args.reference not in encoders:
            raise SystemExit(
                f"{run}: no encoder named {args.reference!r} (--reference) among {sorted(encoders)}"
            )
        benchmark = RetrievalBenchmark.load(run / "benchmark")
        items = [*benchmark.queries, *benchmark.gallery]
        images = benchmark.load_images(items)
        labels = np.array([item.label for item in items])
        hits: dict[str, np.ndarray] = {}
        for name, encoder in encoders.items():
            x = normalise_rows(np.asarray(encoder.embed_images(images), dtype=np.float64))
            similarity = x @ x.T
            np.fill_diagonal(similarity, -np.inf)
            hits[name] = (labels[similarity.argmax(axis=1)] == labels).astype(np.float64)
            lines.append(f"| {run} | {name} | {hits[name].mean():.3f} | {len(labels)} |")
        for name, values in hits.items():
            if name == args.reference:
                continue
            delta = hits[args.reference] - values
            interval = cluster_bootstrap_interval(delta, labels)
            diff_lines.append(
                f"| {run} | {name} | {delta.mean():+.3f} | {format_interval(interval, signed=True)} | "
                f"{int((delta > 0).sum())} / {int((delta < 0).sum())} |"
            )
            pooled.setdefault(name, []).append((delta, labels))
    for name, parts in pooled.items():
        if len(parts) < 2:
            continue
        delta = np.concatenate([d for d, _ in parts])
        clusters = np.concatenate(
            [[f"{k}:{label}" for label in labels] for k, (_, labels) in enumerate(parts)]
        )
        interval = cluster_bootstrap_interval(delta, clusters)
        diff_lines.append(
            f"| pooled ({len(parts)} runs) | {name} | {delta.mean():+.3f} | {format_interval(interval, signed=True)} | "
            f"{int((delta > 0).sum())} / {int((delta < 0).sum())} |"
        )
    finder = "the trained encoder" if args.reference == TRAINED else args.reference
    text = (
        "Leave-one-out Recall@1 on every held-out image (each queries all the others):\n\n"
        + "\n".join(lines)
        + f"\n\n{args.reference} minus each encoder, query by query (positive: {finder} finds more):\n\n"
        + "\n".join(diff_lines)
        + "\n"
    )
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
