"""The quickstart's retrieval table, re-scored from saved runs' encoders: per run, with paired intervals.

    python benchmarks/experiments/bench_split_runs.py runs/study/seed0 runs/study/seed1 ... [--markdown FILE]

A script: prints, never asserts. For each quickstart output folder it loads the encoders the run
saved (as ``bench_retrieval_loo.py`` does), evaluates them on the run's own query/gallery split and
prints mAP and Recall@1 (= mAP@1) of each, then the trained encoder minus each other one with the
95% interval that resamples held-out styles (``megastyle.bench.compare``), as the quickstart prints
them. Useful when a run's ``encoder/`` was replaced by a retrained one (e.g. a longer schedule from
``bench_encoder_variants.py``): the numbers then describe the encoder now in the folder.

The runs measured in ``benchmarks/results/`` (see ``docs/results.md``) come from the study preset,
one folder per seed: ``megastyle quickstart --preset study --seed N --style-transfer false
--output-dir runs/study/seedN``. A folder of the plain ``megastyle quickstart`` (a smaller run) works
too, but its numbers do not compare with the study's.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    """Score every run's saved encoders on its split; print one row per run."""
    from megastyle.bench.compare import compare_encoders
    from megastyle.bench.report import paired_cells, summarise
    from megastyle.bench.retrieval import RetrievalBenchmark, evaluate
    from megastyle.quickstart.encoder import TRAINED, saved_run_encoders

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="Quickstart output folders.")
    parser.add_argument("--markdown", type=Path, default=None, help="Also write the table here.")
    args = parser.parse_args()

    others = ["colour histogram", "Gram (random conv)", "same tower, untrained"]
    head = ["run", "trained mAP / R@1", *(f"{o} mAP / R@1" for o in others)]
    head += [f"trained − {o}: {m}" for o in others for m in ("mAP", "R@1")]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for run in args.runs:
        if not (run / "benchmark").is_dir() or not (run / "encoder").is_dir():
            raise SystemExit(f"{run}: not a quickstart output folder (needs benchmark/ and encoder/)")
        encoders = saved_run_encoders(run)
        result = evaluate(RetrievalBenchmark.load(run / "benchmark"), encoders, ks=(1, 10, 100))
        table = {row.encoder: row.mean for row in summarise([result])}
        paired = {(d.other, d.metric): d for d in compare_encoders(result, TRAINED)}

        cells = [str(run), *(f"{table[n]['mAP']:.3f} / {table[n]['map@1']:.3f}" for n in [TRAINED, *others])]
        for other in others:
            for metric in ("mAP", "map@1"):
                cells.append(" ".join(paired_cells(paired[(other, metric)])[2:4]))  # difference [interval]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
