"""Hierarchical k-means + balanced sampling vs a plain one-level k-means (a script: prints, never asserts).

    python benchmarks/speed/bench_balance.py [--sizes 100000 1000000] [--threads 2] [--device cpu]
                                       [--ks 2000 100 10] [--iters 5] [--resampling-steps 1]

Data: synthetic clustered float32 embeddings (384-d like all-MiniLM/mpnet-base-sized text models),
L2-normalised, drawn around concepts whose sizes follow a Zipf law (a long tail, like a prompt pool).
Every case runs in its own subprocess, so ``ru_maxrss`` is that case's own peak resident memory
(tracemalloc does not see torch's allocator); a data-only case gives the footprint of the embeddings
alone. The reference, measured in the same run on the same data, is ONE plain spherical k-means with
k = the FINEST level's k and the same init and iteration budget: it is what the first level of the
hierarchy costs before resampling, so the ratio is the price of resampling + upper levels + sampling.

Level ks keep the paper's shape (each level ~20× then ~10× fewer clusters than the one below), but
the finest k is far below the paper's 100000 per 1M prompts: one Lloyd pass costs n·k·d multiply-adds,
which for 1M × 100000 × 384 is ~77 TFLOP, about 20 minutes per pass on 2 cores (~100 GFLOP/s
measured); on a GPU pass ``--device cuda --ks 100000 5000 500``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

# Default ks per input size when --ks is not given (finest first; see the module docstring).
DEFAULT_KS = {100_000: [2000, 100, 10], 1_000_000: [2000, 100, 10]}
TARGET_FRACTION = 0.17  # the paper keeps 170K style prompts out of ~1M


def make_clustered(n: int, dim: int, seed: int, concepts: int | None = None) -> Any:
    """``n`` unit vectors around ``concepts`` random directions with Zipf-distributed concept sizes."""
    import numpy as np
    import torch

    concepts = concepts or max(10, n // 100)
    gen = torch.Generator().manual_seed(seed)
    centers = torch.nn.functional.normalize(torch.randn(concepts, dim, generator=gen), dim=1)
    weights = 1.0 / torch.arange(1, concepts + 1, dtype=torch.float64) ** 1.1
    out = np.empty((n, dim), dtype=np.float32)
    # Chunked so peak memory stays ~one copy of the data.
    for start in range(0, n, 65536):
        m = min(65536, n - start)
        labels = torch.multinomial(weights, m, replacement=True, generator=gen)
        noise = torch.randn(m, dim, generator=gen) * (0.5 / dim**0.5)
        out[start : start + m] = torch.nn.functional.normalize(centers[labels] + noise, dim=1).numpy()
    return out


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def run_case(case: str, n: int, ks: list[int], args: argparse.Namespace) -> dict[str, Any]:
    """Run one case in this process and return its timings and peak memory."""
    import torch

    from megastyle.curate.balance import balanced_sample, hierarchical_kmeans, kmeans

    torch.set_num_threads(args.threads)
    x = make_clustered(n, args.dim, seed=0)
    result: dict[str, Any] = {"case": case, "n": n, "ks": ks, "data_rss_mb": _peak_rss_mb()}
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if case == "flat":
        fit = kmeans(x, ks[0], args.iters, 0, True, args.chunk_size, args.device, args.init)
        result["iterations"] = fit.iterations
    elif case == "hier":
        hierarchy = hierarchical_kmeans(
            x,
            ks,
            resampling_steps=args.resampling_steps,
            iters=args.iters,
            init=args.init,
            chunk_size=args.chunk_size,
            device=args.device,
        )
        result["cluster_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        selected = balanced_sample(hierarchy, None, int(TARGET_FRACTION * n), "random", seed=0)
        result["sample_s"] = time.perf_counter() - t1
        result["selected"] = int(selected.size)
        result["ks_found"] = hierarchy.ks
    if cuda:
        torch.cuda.synchronize()
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    result["seconds"] = time.perf_counter() - t0
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def _spawn(case: str, n: int, ks: list[int], args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", case, "--sizes", str(n), "--ks", *map(str, ks)]
    cmd += ["--threads", str(args.threads), "--device", args.device, "--iters", str(args.iters)]
    cmd += ["--resampling-steps", str(args.resampling_steps), "--init", args.init, "--dim", str(args.dim)]
    if args.chunk_size:
        cmd += ["--chunk-size", str(args.chunk_size)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    """Run data-only, flat and hierarchical cases per size in subprocesses and print ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ks", type=int, nargs="+", default=None, help="finest first; default per size")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--iters", type=int, default=5, help="Lloyd iterations of every k-means")
    parser.add_argument("--resampling-steps", type=int, default=1)
    parser.add_argument("--init", default="random", choices=["auto", "kmeans++", "random"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="rows per distance chunk (default: auto)"
    )
    parser.add_argument("--child", choices=["data", "flat", "hier"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.sizes[0], args.ks, args)))
        return

    print(
        f"balance benchmark: {platform.machine()}, {os.cpu_count()} cpus, torch threads {args.threads}, "
        f"device {args.device}, {args.dim}-d float32, iters {args.iters}, resampling steps "
        f"{args.resampling_steps}, init {args.init}, load avg {os.getloadavg()[0]:.1f}"
    )
    for n in args.sizes:
        ks = args.ks or DEFAULT_KS.get(n) or [max(2, n // 50), max(2, n // 1000), max(2, n // 10000)]
        data = _spawn("data", n, ks, args)
        flat = _spawn("flat", n, ks, args)
        hier = _spawn("hier", n, ks, args)
        base = data["peak_rss_mb"]
        print(f"\nn={n:,} ks={ks} (embeddings alone: peak RSS {base:,.0f} MB)")
        print(
            f"  flat k-means k={ks[0]}: {flat['seconds']:8.1f} s ({flat['iterations']} iters)  "
            f"peak RSS {flat['peak_rss_mb']:7,.0f} MB (+{flat['peak_rss_mb'] - base:,.0f} over data)"
        )
        print(
            f"  hierarchical + sample : {hier['seconds']:8.1f} s (cluster {hier['cluster_s']:.1f} s, sample "
            f"{hier['sample_s']:.2f} s -> {hier['selected']:,} kept, ks found {hier['ks_found']})  "
            f"peak RSS {hier['peak_rss_mb']:7,.0f} MB (+{hier['peak_rss_mb'] - base:,.0f} over data)"
        )
        if "gpu_peak_mb" in hier:
            print(
                f"  GPU peak allocated: flat {flat['gpu_peak_mb']:,.0f} MB, hierarchical {hier['gpu_peak_mb']:,.0f} MB"
            )
        extra_flat = max(flat["peak_rss_mb"] - base, 1.0)
        print(
            f"  ratios hierarchical/flat: time {hier['seconds'] / flat['seconds']:.2f}x, "
            f"peak RSS {hier['peak_rss_mb'] / flat['peak_rss_mb']:.2f}x, "
            f"RSS over data {(hier['peak_rss_mb'] - base) / extra_flat:.2f}x"
        )


if __name__ == "__main__":
    main()
