"""Local engine vs Ray engine on this machine (a script: prints, never asserts).

    python benchmarks/speed/bench_ray_engine.py [--styles 160] [--contents 160] [--size 128]
                                          [--render-images 384] [--render-size 256] [--workers 1 2 3 4]

Part 1 runs the same ``megastyle curate`` config twice, on the local engine and on a Ray cluster
started on 127.0.0.1 (both with 2 workers), and prints each stage's items/s and Ray's time as a
multiple of the local engine's: the overhead of the Ray engine on one small machine, where its
scheduling, process start-up and object transfer buy nothing. The datasets are compared row for row.

Part 2 maps the generate stage function over one fixed plan with 1..N Ray actors and 1..2 local
processes, and prints images/s and the speed-up over one worker of the same engine, both with the
engine's start-up (actor or process start, model load) included, as a real stage run has it, and
in steady state (from the first finished batch to the last).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def curate_config(root: Path, pools: Any, engine: str, args: argparse.Namespace) -> Any:
    """The benchmark's curate config (procedural pools, heuristic captions, procedural renders)."""
    from megastyle.curate.config import CurateConfig

    return CurateConfig.model_validate(
        {
            "run_dir": root / engine, "seed": 0, "workers": 2, "progress": False, "engine": engine,
            "pools": {"style": [{"path": pools.style_dir, "role": "style"}],
                      "content": [{"path": pools.content_dir, "role": "content", "require_caption": True}]},
            "caption": {"batch_size": 8, "part_size": 64},
            "balance": {"style": {"target": args.styles // 2}, "content": {"target": args.contents // 2}},
            "combine": {"contents_per_style": 8},
            "generate": {"image_size": args.size, "batch_size": 8, "staging_shard_rows": 128},
            "ray": {"num_cpus": 2, "node_ip_address": "127.0.0.1"},
        }
    )  # fmt: skip


def digest(run_dir: Path) -> list[tuple[str, str]]:
    """(id, sha256 of the image) of every row of a run's dataset."""
    from megastyle.data import ShardReader

    return [(r.id, hashlib.sha256(r.image).hexdigest()) for r in ShardReader(run_dir / "dataset")]


def stage_items(summary: dict[str, Any]) -> dict[str, int]:
    """Items each stage processed, from a run summary."""
    s = summary["stages"]
    both = ("style", "content")
    return {
        "caption": sum(s["caption"][k]["captioned"] + s["caption"][k]["failed"] for k in both),
        "dedup": sum(s["dedup"][k]["input"] for k in both),
        "balance": sum(s["balance"][k]["n_input"] for k in both),
        "generate": s["generate"]["planned"],
        "write": s["write"]["rows"],
    }


def part_one(root: Path, args: argparse.Namespace) -> None:
    """The whole curate run on both engines, stage by stage."""
    from megastyle.curate.pipeline import run_curate
    from megastyle.quickstart.pools import make_procedural_pools

    pools = make_procedural_pools(root / "pools", args.styles, args.contents, seed=0, size=args.size)
    results = {}
    for engine in ("local", "ray"):
        start = time.perf_counter()
        summary = run_curate(curate_config(root, pools, engine, args))
        results[engine] = (summary, time.perf_counter() - start)
    items = stage_items(results["local"][0])
    print(f"\n## Part 1: one curate run, 2 workers each ({args.styles}+{args.contents} pool images, "
          f"{items['generate']} renders at {args.size}²)\n")  # fmt: skip
    print("| stage | items | local s | local items/s | ray s | ray items/s | ray time / local time |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for stage in ("caption", "dedup", "balance", "generate", "write"):
        local_s = results["local"][0]["seconds"][stage]
        ray_s = results["ray"][0]["seconds"][stage]
        n = items[stage]
        print(f"| {stage} | {n} | {local_s:.2f} | {n / local_s:.1f} | {ray_s:.2f} | {n / ray_s:.1f} | "
              f"{ray_s / local_s:.2f}× |")  # fmt: skip
    local_total, ray_total = results["local"][1], results["ray"][1]
    print(f"| whole run (incl. cluster start) | | {local_total:.1f} | | {ray_total:.1f} | | "
          f"{ray_total / local_total:.2f}× |")  # fmt: skip
    same = digest(root / "local") == digest(root / "ray")
    print(f"\nDatasets identical row for row: {same} ({len(digest(root / 'local'))} rows)")


def part_two(root: Path, args: argparse.Namespace) -> None:
    """Generate-stage throughput against the number of workers, per engine."""
    from functools import partial

    from megastyle.curate.executor import LocalEngine, WorkerSpec
    from megastyle.curate.executor.ray import RayEngine, RaySettings
    from megastyle.curate.generate import plan_images, render_stage
    from megastyle.curate.generators import load_backend
    from megastyle.prompts import sample_content_prompts, sample_style_prompts

    styles = sample_style_prompts(args.render_images // 8, seed=1)
    contents = sample_content_prompts(64, seed=2)
    plan = plan_images(styles, contents, 8, seed=0)
    batches = [plan[i : i + 8] for i in range(0, len(plan), 8)]
    stage = partial(render_stage, size=args.render_size)
    factory = partial(load_backend, "procedural")
    ray_engine = RayEngine(RaySettings(num_cpus=max(args.workers), node_ip_address="127.0.0.1"))
    ray_engine.connect()
    rows = []
    for name, engine, counts in (("local", LocalEngine(1), [w for w in args.workers if w <= 2]),
                                 ("ray", ray_engine, args.workers)):  # fmt: skip
        for workers in counts:
            start = time.perf_counter()
            arrivals = [
                time.perf_counter() for _ in engine.map_batches(stage, batches, factory, WorkerSpec(workers))
            ]
            total = arrivals[-1] - start
            # Steady state: from the first batch back (every worker started by then, or starting) to the last.
            steady = (len(plan) - 8) / (arrivals[-1] - arrivals[0])
            rows.append((name, workers, len(plan) / total, steady, arrivals[0] - start))
    ray_engine.close()
    print(
        f"\n## Part 2: generate stage function, {len(plan)} procedural images at {args.render_size}², batch 8\n"
    )
    print("images/s counts everything from the call; steady images/s counts from the first finished batch")
    print("to the last (start-up left out; the last column is the time to the first batch).\n")
    print("| engine | workers | images/s | speed-up | steady images/s | steady speed-up | first batch s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = {name: (rate, steady) for name, workers, rate, steady, _ in rows if workers == 1}
    for name, workers, rate, steady, first in rows:
        print(f"| {name} | {workers} | {rate:.1f} | {rate / base[name][0]:.2f}× | {steady:.1f} | "
              f"{steady / base[name][1]:.2f}× | {first:.2f} |")  # fmt: skip


def main() -> None:
    """Run both parts and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", type=int, default=160)
    parser.add_argument("--contents", type=int, default=160)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--render-images", type=int, default=384)
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--skip-part-one", action="store_true")
    args = parser.parse_args()
    import ray

    print(f"# Local vs Ray engine — {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}, ray {ray.__version__}")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    try:
        if not args.skip_part_one:
            part_one(root, args)
        part_two(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
