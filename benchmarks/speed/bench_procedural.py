"""Throughput of the ``procedural`` backend on ONE core (a script, not a test: it prints, never asserts).

    python benchmarks/speed/bench_procedural.py [--n 200] [--sizes 256 512]

Thread pools are pinned to 1 before numpy/scipy load, and the process is pinned to one CPU where
the OS allows it. Two references are timed in the same run on the same images/sizes, so the ratios
are comparable across machines: PNG-encoding the rendered image (what the generate stage does with
every image anyway) and filling an array of the same size from ``np.random``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from megastyle.curate.generators.procedural import ProceduralRenderer  # noqa: E402
from megastyle.prompts import sample_content_prompts, sample_style_prompts  # noqa: E402


def _pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to cpu {cpu}"
    return "not pinned (no sched_setaffinity)"


def bench(n: int, size: int, seed: int = 0) -> dict[str, float]:
    """Render ``n`` distinct (style, content, seed) triples at ``size``; time renders and references."""
    renderer = ProceduralRenderer()
    styles = sample_style_prompts(n, seed=seed)
    contents = sample_content_prompts(n, seed=seed + 1)
    for i in range(min(8, n)):  # warm caches (grids, parsers) outside the timed loop
        renderer.render(styles[i], contents[-1 - i], 10_000 + i, size)
    t0 = time.perf_counter()
    images = [renderer.render(styles[i], contents[i], i, size) for i in range(n)]
    render_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for img in images:
        img.save(io.BytesIO(), format="PNG")
    png_s = time.perf_counter() - t0

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(n):
        (rng.random((size, size, 3), dtype=np.float32) * 255).astype(np.uint8)
    fill_s = time.perf_counter() - t0
    return {"render": n / render_s, "png": n / png_s, "fill": n / fill_s}


def main() -> None:
    """Parse arguments, run the benchmark per size and print images/s with reference ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images per size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    args = parser.parse_args()
    print(f"procedural backend, {platform.processor() or platform.machine()}, {_pin_one_core()}")
    for size in args.sizes:
        r = bench(args.n, size)
        print(
            f"{size}x{size}: {r['render']:7.1f} images/s ({1000 / r['render']:5.1f} ms/image) | "
            f"PNG encode {r['png']:7.1f}/s -> render costs {r['png'] / r['render']:4.1f}x a PNG encode | "
            f"np.random fill {r['fill']:7.1f}/s -> {r['fill'] / r['render']:5.1f}x a random fill"
        )


if __name__ == "__main__":
    main()
