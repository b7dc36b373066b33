"""The tiny SSCL encoder against the training-free baselines on colour-matched held-out styles.

    python benchmarks/experiments/bench_encoder_colour_matched.py runs/quickstart/curate/dataset [--seed 0] [--out DIR]

A script: prints, never asserts. The quickstart's benchmark holds out a random share of the styles (a
quarter of 160 when this was written), and there a joint colour histogram was already at the ceiling
(mAP@10 0.887 with 6 gallery images per style). This one holds out every style that shares its
dominant colours and lighting with another style (read from the dataset's ``style_attributes``), so
within each held-out group colour words are equal and only medium, surface, pattern, edges,
brushwork and identity differ. The encoder is trained on the remaining styles exactly as the
quickstart trains it, and all four encoders are scored.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path


def main() -> None:
    """Build the colour-matched benchmark, train, evaluate, print the table."""
    from megastyle.bench.baselines import ColorHistogramEmbedder, GramEmbedder
    from megastyle.bench.report import summarise
    from megastyle.bench.retrieval import build_benchmark, evaluate
    from megastyle.data import ShardReader
    from megastyle.encode.model import StyleEncoder
    from megastyle.encode.train import build_encoder, train_encoder
    from megastyle.encode.train_config import TrainEncoderConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="colour_matched_"))

    first: dict[int, dict] = {}
    for record in ShardReader(
        args.dataset, columns=["id", "style", "content", "style_id", "style_attributes"]
    ):
        first.setdefault(record.style_id, json.loads(record.style_attributes))
    groups: dict[tuple, list[str]] = collections.defaultdict(list)
    for style_id, attributes in first.items():
        groups[(tuple(attributes["dominant_colors"]), attributes["lighting"])].append(str(style_id))
    held = [style for members in groups.values() if len(members) >= 2 for style in members]
    shared = sum(len(members) >= 2 for members in groups.values())
    print(
        f"{len(first)} styles; held out: {len(held)} styles in {shared} groups sharing colours and lighting"
    )

    benchmark = build_benchmark(args.dataset, heldout=held, queries_per_style=2, seed=args.seed)
    benchmark.save(out / "benchmark")
    train_styles = len(first) - len(held)
    cfg = TrainEncoderConfig(
        data_dirs=[args.dataset],
        output_dir=out / "encoder",
        holdout_styles_file=out / "benchmark" / "heldout_styles.json",
        init="tiny",
        styles_per_batch=max(2, min(12, train_styles)),
        epochs=args.epochs,
        seed=args.seed,
        progress=False,
    )
    trained = train_encoder(cfg)
    encoders = {
        "megastyle-tiny (SSCL)": StyleEncoder.from_pretrained(trained.encoder_dir),
        "same tower, untrained": build_encoder(cfg),
        "colour histogram": ColorHistogramEmbedder(),
        "Gram (random conv)": GramEmbedder(seed=args.seed),
    }
    result = evaluate(benchmark, encoders, ks=(1, 10, 100))
    print(
        f"{len(benchmark.queries)} queries, {len(benchmark.gallery)} gallery images, {trained.steps} steps\n"
    )
    print("| encoder | recall@1 | mAP@10 | mAP |\n|---|---:|---:|---:|")
    for row in summarise([result]):
        m = row.mean
        print(f"| {row.encoder} | {m['recall@1']:.3f} | {m['map@10']:.3f} | {m['mAP']:.3f} |")


if __name__ == "__main__":
    main()
