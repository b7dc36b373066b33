"""The web app's two waits: start to first page, and a style-search query over a 10,000-image index.

    python benchmarks/speed/bench_app.py --run runs/quickstart [--images 10000] [--queries 50] [--k 12]

1. Start: ``megastyle app`` in a subprocess on the quickstart run; the time from the command to the
   first HTTP 200 of its page, and to a served search index (the quickstart's dataset, embedded at
   start). Median over ``--starts`` runs.
2. Search: a collection of ``--images`` images (random textures written as MegaStyle shards), embedded
   with the run's tiny encoder; each query is what the page does — embed the uploaded image, search
   the index, load the k result images — timed per query, with FAISS (the app's index) and, as the
   reference measured in the same run, the exact numpy search the app falls back to without FAISS.
   Goal: ≤ 100 ms per query with FAISS on 2 cores.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_start(run: Path, work: Path) -> tuple[float, str]:
    """Seconds from launching ``megastyle app`` to its page answering, and the app's own log line."""
    port = free_port()
    command = [sys.executable, "-m", "megastyle.cli.app", "app", "--run", str(run), "--port", str(port),
               "--work-dir", str(work)]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the app exited: {process.stderr.read()[-2000:] if process.stderr else ''}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started, ""
            except OSError:
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def make_collection(folder: Path, count: int, size: int = 64, seed: int = 0) -> Path:
    """``count`` random-texture images in MegaStyle shards (100 styles), written once."""
    from megastyle.data import ShardWriter, StyleRecord, encode_png, list_shards

    if folder.is_dir() and list_shards(folder):
        return folder
    rng = np.random.default_rng(seed)
    with ShardWriter(folder, rows_per_shard=5000) as writer:
        for i in range(count):
            style = i % 100
            base = rng.integers(0, 255, 3)
            noise = rng.normal(0, 20 + style % 7 * 10, (size, size, 3))
            pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
            writer.write(StyleRecord(f"s{style}_c{i}", encode_png(pixels), f"style {style}", f"item {i}",
                                     style_id=style, content_id=i))  # fmt: skip
    return folder


def time_queries(search, queries, k: int) -> list[float]:
    times = []
    for image in queries:
        started = time.perf_counter()
        hits = search.query_image(image, k)
        times.append(time.perf_counter() - started)
        assert len(hits) == k
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=Path("runs/quickstart"), help="A quickstart run folder.")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--k", type=int, default=12)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument(
        "--work", type=Path, default=None, help="Folder for the collection (default: a temp dir)."
    )
    args = parser.parse_args()

    import torch

    from megastyle.app.search import StyleSearch
    from megastyle.encode.model import StyleEncoder
    from megastyle.encode.search import faiss_available

    torch.set_num_threads(2)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_app_"))
    starts = [time_start(args.run, work / f"start{i}")[0] for i in range(args.starts)]
    print(f"start to first page: median {statistics.median(starts):.2f} s over {len(starts)} starts "
          f"(min {min(starts):.2f}, max {max(starts):.2f}); the quickstart dataset is embedded during start")  # fmt: skip

    encoder = StyleEncoder.from_pretrained(args.run / "encoder" / "encoder")
    collection = make_collection(work / "collection", args.images)
    search = StyleSearch(encoder, work)
    started = time.perf_counter()
    print(search.open(collection), f"(embedded and indexed in {time.perf_counter() - started:.1f} s)")
    from megastyle.data import ShardReader

    reader = ShardReader(collection)
    rng = np.random.default_rng(1)
    queries = [reader[int(i)].pil_image() for i in rng.integers(0, len(reader), args.queries)]
    time_queries(search, queries[:3], args.k)  # warm-up
    assert search.index is not None
    print(f"index backend: {search.index.backend} (faiss available: {faiss_available()})")
    with_index = time_queries(search, queries, args.k)
    from megastyle.encode.search import SearchIndex

    search.index = SearchIndex(search.index.collection, backend="numpy")
    with_numpy = time_queries(search, queries, args.k)
    for name, times in (("faiss", with_index), ("numpy", with_numpy)):
        ms = sorted(t * 1000 for t in times)
        print(f"query ({name}), {args.images} images, k={args.k}: median {statistics.median(ms):.1f} ms, "
              f"p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms over {len(ms)} queries")  # fmt: skip
    ratio = statistics.median(with_numpy) / statistics.median(with_index)
    goal = "met" if statistics.median(with_index) <= 0.1 else "not met"
    print(f"numpy / faiss median ratio: {ratio:.2f}; goal ≤ 100 ms per query with faiss: {goal}")


if __name__ == "__main__":
    main()
