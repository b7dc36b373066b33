"""Train variants of the quickstart's SSCL encoder on a quickstart run's data; score them on its benchmark.

    megastyle quickstart --preset study --seed 0 --style-transfer false --output-dir runs/study/seed0
    python benchmarks/experiments/bench_encoder_variants.py runs/study/seed0
        [--variants benchmarks/experiments/encoder_variants.toml] [--only NAME ...] [--train-seeds 0 1]
        [--out DIR] [--markdown FILE]

A script: prints, never asserts. Each variant is the quickstart's training config (the same function
builds it) with the variant's fields overridden, trained on the run's dataset without the run's
held-out styles and evaluated on the run's saved benchmark beside the training-free baselines, so
the "default" variant reproduces the quickstart's own row. Results are appended to
``OUT/results.jsonl`` as each run finishes; a rerun skips what is there, and a variant that fails
is recorded with its error while the others go on.

The variants file is TOML, one ``[[variant]]`` table each: ``name`` plus any ``train-encoder``
fields (``epochs = 48``, ``tiny = { patch_size = 8 }``). With several ``--train-seeds`` the table
shows every seed and the mean, so a difference can be read against the seed-to-seed spread.

The runs measured in ``benchmarks/results/`` (see ``docs/results.md``) come from the study preset,
one folder per seed: ``megastyle quickstart --preset study --seed N --style-transfer false
--output-dir runs/study/seedN``. A folder of the plain ``megastyle quickstart`` (a smaller run) works
too, but its numbers do not compare with the study's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
import tomllib
from pathlib import Path
from typing import Any

METRICS = ("mAP", "map@1", "map@10", "map@100")


def _key(name: str, fields: dict[str, Any], seed: int) -> str:
    blob = json.dumps({"name": name, "fields": fields, "seed": seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _load_variants(path: Path, only: list[str] | None) -> list[tuple[str, dict[str, Any]]]:
    tables = tomllib.loads(path.read_text()).get("variant", [])
    variants = []
    for i, table in enumerate(tables):
        fields = dict(table)
        name = fields.pop("name", None)
        if not isinstance(name, str) or not name:
            raise SystemExit(f"{path}: variant #{i + 1} has no name")
        variants.append((name, fields))
    names = [name for name, _ in variants]
    if len(set(names)) != len(names):
        raise SystemExit(f"{path}: variant names repeat")
    if only:
        missing = sorted(set(only) - set(names))
        if missing:
            raise SystemExit(f"{path}: no variant named {', '.join(missing)}")
        variants = [v for v in variants if v[0] in only]
    return variants


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    text = " / ".join(f"{v:.3f}" for v in values)
    return f"{text} (mean {sum(values) / len(values):.3f})" if len(values) > 1 else text


def main() -> None:
    """Train and score each variant × seed, resuming from ``results.jsonl``; print the table."""
    from tqdm import tqdm

    from megastyle.bench.baselines import ColorHistogramEmbedder, GramEmbedder
    from megastyle.bench.report import summarise
    from megastyle.bench.retrieval import RetrievalBenchmark, evaluate
    from megastyle.config import ConfigError, load_config, merge_config_data
    from megastyle.encode.model import StyleEncoder
    from megastyle.encode.train import build_encoder, train_encoder
    from megastyle.encode.train_config import TrainEncoderConfig
    from megastyle.quickstart.config import QuickstartConfig
    from megastyle.quickstart.encoder import saved_run_train_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="A quickstart output folder (curate/dataset, benchmark/).")
    parser.add_argument("--variants", type=Path, default=Path(__file__).with_name("encoder_variants.toml"))
    parser.add_argument("--only", nargs="+", default=None, help="Run only these variant names.")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=None, help="Default: the run's seed.")
    parser.add_argument("--out", type=Path, default=None, help="Default: RUN/variants.")
    parser.add_argument("--markdown", type=Path, default=None, help="Also write the table here.")
    args = parser.parse_args()

    run_cfg = load_config(QuickstartConfig, args.run / "config.toml")
    benchmark = RetrievalBenchmark.load(args.run / "benchmark")
    out = args.out or args.run / "variants"
    out.mkdir(parents=True, exist_ok=True)
    seeds = args.train_seeds or [run_cfg.seed]
    variants = _load_variants(args.variants, args.only)
    base = saved_run_train_config(args.run, out)

    log = out / "results.jsonl"
    done: dict[str, dict[str, Any]] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            done[record["key"]] = record

    def scores(result: Any) -> dict[str, dict[str, float]]:
        return {row.encoder: {m: row.mean[m] for m in METRICS} for row in summarise([result])}

    if "baselines" not in done:
        # The untrained tower uses the run's seed, as in the quickstart.
        baselines = {
            "same tower, untrained": build_encoder(base),
            "colour histogram": ColorHistogramEmbedder(),
            "Gram (random conv)": GramEmbedder(seed=run_cfg.seed),
        }
        record = {"key": "baselines", "scores": scores(evaluate(benchmark, baselines, ks=(1, 10, 100)))}
        with log.open("a") as f:
            f.write(json.dumps(record) + "\n")
        done["baselines"] = record

    jobs = [(name, fields, seed) for name, fields in variants for seed in seeds]
    for name, fields, seed in tqdm(jobs, desc="variants", unit="run"):
        key = _key(name, fields, seed)
        if key in done:
            continue
        record: dict[str, Any] = {"key": key, "variant": name, "fields": fields, "seed": seed}
        work = out / "runs" / f"{key}"
        start = time.perf_counter()
        try:
            overrides = {**fields, "seed": seed, "output_dir": str(work)}
            data = merge_config_data(base.model_dump(mode="json"), overrides)  # tiny = {...} keeps the rest
            cfg = load_config(TrainEncoderConfig, None, data)
            trained = train_encoder(cfg)
            encoder = StyleEncoder.from_pretrained(trained.encoder_dir)
            record["scores"] = next(
                iter(scores(evaluate(benchmark, {name: encoder}, ks=(1, 10, 100))).values())
            )
            record["steps"] = trained.steps
        except (ConfigError, ValueError, RuntimeError, OSError) as err:
            record["error"] = f"{type(err).__name__}: {err}"
            tqdm.write(f"{name} (seed {seed}) failed: {record['error']}")
        record["seconds"] = round(time.perf_counter() - start, 1)
        with log.open("a") as f:
            f.write(json.dumps(record) + "\n")
        done[key] = record
        shutil.rmtree(work / "checkpoints", ignore_errors=True)  # the final encoder is kept

    lines = [
        f"{len(benchmark.heldout_styles)} held-out styles, {len(benchmark.queries)} queries, "
        f"{len(benchmark.gallery)} gallery images; training seeds {', '.join(map(str, seeds))}. "
        "mAP@k as CSD (mAP@1 = Recall@1); mAP standard.",
        "",
        "| encoder | changed | " + " | ".join(METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for name, fields in variants:
        runs = [done.get(_key(name, fields, seed), {}) for seed in seeds]
        errors = [r["error"] for r in runs if "error" in r]
        changed = json.dumps(fields, sort_keys=True) if fields else "(quickstart)"
        if errors:
            lines.append(f"| {name} | {changed} | failed: {errors[0]} |" + " |" * (len(METRICS) - 1))
            continue
        cells = [_cell([r["scores"][m] for r in runs if "scores" in r]) for m in METRICS]
        lines.append(f"| {name} | {changed} | " + " | ".join(cells) + " |")
    for encoder, values in done["baselines"]["scores"].items():
        lines.append(f"| {encoder} | baseline | " + " | ".join(f"{values[m]:.3f}" for m in METRICS) + " |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
