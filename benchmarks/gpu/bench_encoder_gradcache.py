"""SSCL training throughput of the SigLIP so400m-patch14-384 vision tower: plain steps vs gradient caching.

    python benchmarks/gpu/bench_encoder_gradcache.py            # full run, ~2-3 min on an H200
    python benchmarks/gpu/bench_encoder_gradcache.py --quick    # shorter: fewer sizes, effective batch 2048
    python benchmarks/gpu/bench_encoder_gradcache.py --tiny     # CPU smoke test with a tiny tower

Random weights (compute cost only), bf16 autocast on CUDA, fused AdamW, the project's own ``GradCache``
and ``SSCLLoss`` (SupCon + multi-positive SigLIP against random 1152-d "prompt" features, K = 8 images
per style). Measures

(a) the plain step (one forward + backward of the whole batch) at increasing batch sizes until CUDA
    runs out of memory: images/s and peak memory;
(b) gradient caching at an effective batch of 8192 with chunk = the fastest plain batch: images/s
    and peak memory; the inputs stay on the host (pinned) and move to the GPU chunk by chunk.

It prints the ratio gradcache img/s ÷ best plain img/s, measured in the same run (gradient caching
re-runs every forward, so ~3/4 is the expected ceiling: forward ≈ 1 unit, backward ≈ 2). Never
asserts timings. The warmup step of every measurement is excluded. Needs only torch + transformers
(the three megastyle modules it imports use torch alone).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from megastyle.encode.compiling import compile_layers
from megastyle.encode.gradcache import GradCache
from megastyle.encode.losses import SSCLLoss

# google/siglip-so400m-patch14-384's vision tower, written out (transformers' SiglipVisionConfig
# defaults are the base model: 768 wide, 12 layers, patch 16, 224 px).
SO400M = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 384,
}
TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "patch_size": 8,
    "image_size": 32,
}
IMAGES_PER_STYLE = 8
GIB = 2**30


class PooledEncoder(nn.Module):
    """SigLIP vision tower → L2-normalised pooled output (the style embedding)."""

    def __init__(self, config: dict[str, int]) -> None:
        super().__init__()
        from transformers import SiglipVisionConfig, SiglipVisionModel

        self.vision_model = SiglipVisionModel(SiglipVisionConfig(**config))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(n, d) normalised embeddings."""
        return F.normalize(self.vision_model(pixel_values=pixel_values).pooler_output, dim=-1)


class Bench:
    """One model, loss and optimizer shared by every measurement (built once on the device)."""

    def __init__(self, config: dict[str, int], device: torch.device, compile_model: bool) -> None:
        self.device = device
        self.image_size = config["image_size"]
        self.width = config["hidden_size"]
        with device:  # initialise directly on the GPU: CPU init of 400M parameters takes long
            self.model = PooledEncoder(config).train()
            self.loss_fn = SSCLLoss(image_dim=self.width, text_dim=self.width)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        if compile_model:  # what `megastyle train-encoder --compile true` does: each layer, in place
            compile_layers(self.model.vision_model)
        params = [*self.model.parameters(), *self.loss_fn.parameters()]
        self.optimizer = torch.optim.AdamW(params, lr=5e-4, fused=device.type == "cuda")

    def autocast(self) -> torch.autocast:
        """bf16 autocast on CUDA; disabled on CPU (the smoke test)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Forward one chunk (moved to the device) under autocast; fp32 features."""
        with self.autocast():
            return self.forward(pixels.to(self.device, non_blocking=True)).float()

    def batch(self, n: int, where: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random pixels (bf16 on CUDA), labels with K images per style, and each image's text feature."""
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        # Values do not change the cost: tile a small random pool instead of drawing 8192 images.
        pool = torch.randn(min(n, 256), 3, self.image_size, self.image_size, dtype=dtype, device=where)
        pixels = pool.repeat(-(-n // len(pool)), 1, 1, 1)[:n].contiguous()
        if where.type == "cpu" and self.device.type == "cuda":
            pixels = pixels.pin_memory()
        labels = torch.arange(n, device=self.device) // IMAGES_PER_STYLE
        prompts = F.normalize(torch.randn(int(labels.max()) + 1, self.width, device=self.device), dim=-1)
        return pixels, labels, prompts[labels]

    def plain_step(self, pixels: torch.Tensor, labels: torch.Tensor, text: torch.Tensor) -> None:
        """Forward and backward of the whole batch, then the optimizer step."""
        self.loss_fn(self.encode(pixels), labels, text).loss.backward()
        self._update()

    def cached_step(self, pixels: torch.Tensor, labels: torch.Tensor, text: torch.Tensor, chunk: int) -> None:
        """The same step through GradCache in chunks of ``chunk``."""
        GradCache(self.encode, chunk).step(pixels, lambda features: self.loss_fn(features, labels, text))
        self._update()

    def _update(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def sync(self) -> None:
        """Wait for queued device work."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def reset_memory(self) -> None:
        """Free cached blocks and restart the peak-memory counters."""
        self.optimizer.zero_grad(set_to_none=True)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> tuple[float, float]:
        """(max allocated, max reserved) GiB since the last reset (0 on CPU)."""
        if self.device.type != "cuda":
            return 0.0, 0.0
        return torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def measure_plain(bench: Bench, sizes: list[int], steps: int) -> list[dict[str, float | str]]:
    """Plain steps at each size until OOM: one warmup step, then ``steps`` timed ones."""
    rows: list[dict[str, float | str]] = []
    for size in sizes:
        bench.reset_memory()
        try:
            pixels, labels, text = bench.batch(size, bench.device)
            start = time.perf_counter()
            bench.plain_step(pixels, labels, text)  # warmup: allocator, kernels, optimizer state, compile
            bench.sync()
            print(f"plain batch {size:5d}: warmup step {time.perf_counter() - start:.1f} s", flush=True)
            start = time.perf_counter()
            for _ in range(steps):
                bench.plain_step(pixels, labels, text)
            bench.sync()
            seconds = time.perf_counter() - start
        except (torch.OutOfMemoryError, RuntimeError) as err:
            if not _is_oom(err):
                raise
            rows.append({"batch": size, "status": "out of memory"})
            print(f"plain batch {size:5d}: out of memory", flush=True)
            del err
            bench.reset_memory()
            break
        allocated, reserved = bench.peak_gib()
        row: dict[str, float | str] = {
            "batch": size,
            "status": "ok",
            "images_per_s": size * steps / seconds,
            "step_s": seconds / steps,
            "peak_allocated_gib": allocated,
            "peak_reserved_gib": reserved,
        }
        rows.append(row)
        print(
            f"plain batch {size:5d}: {row['images_per_s']:8.1f} img/s  {row['step_s']:.3f} s/step  "
            f"peak {allocated:6.1f} GiB allocated, {reserved:6.1f} GiB reserved",
            flush=True,
        )
        del pixels, labels, text
    return rows


def measure_cached(bench: Bench, effective: int, chunk: int, steps: int) -> dict[str, float]:
    """GradCache steps at ``effective`` images in chunks of ``chunk``; warmup on two chunks."""
    bench.reset_memory()
    host = torch.device("cpu")
    warm = bench.batch(min(effective, 2 * chunk), host)
    start = time.perf_counter()
    bench.cached_step(*warm, chunk=chunk)
    bench.sync()
    print(f"gradcache warmup (2 chunks of {chunk}): {time.perf_counter() - start:.1f} s", flush=True)
    del warm
    bench.reset_memory()
    pixels, labels, text = bench.batch(effective, host)
    start = time.perf_counter()
    for _ in range(steps):
        bench.cached_step(pixels, labels, text, chunk=chunk)
    bench.sync()
    seconds = time.perf_counter() - start
    allocated, reserved = bench.peak_gib()
    return {
        "effective_batch": effective,
        "chunk": chunk,
        "images_per_s": effective * steps / seconds,
        "step_s": seconds / steps,
        "peak_allocated_gib": allocated,
        "peak_reserved_gib": reserved,
    }


def main() -> None:
    """Parse flags, run both measurements, print the table and ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Fewer sizes and steps, effective batch 2048.")
    parser.add_argument("--tiny", action="store_true", help="Tiny tower on the CPU (smoke test).")
    parser.add_argument("--sizes", type=int, nargs="+", help="Plain batch sizes to try, ascending.")
    parser.add_argument("--effective", type=int, help="Effective batch of the gradcache step (default 8192).")
    parser.add_argument("--steps", type=int, help="Timed plain steps per size (default 3; quick 2).")
    parser.add_argument("--gc-steps", type=int, default=1, help="Timed gradcache steps (default 1).")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="Compile each transformer layer, as the trainer's compile option.",
    )
    args = parser.parse_args()

    import transformers

    if args.tiny:
        device, config = torch.device("cpu"), TINY
        sizes, effective, steps = [4, 8, 16, 32], 128, 2
    else:
        if not torch.cuda.is_available():
            sys.exit("no CUDA device: run with --tiny for the CPU smoke test")
        device, config = torch.device("cuda"), SO400M
        sizes, effective, steps = [32, 64, 96, 128, 160, 192, 256, 320], 8192, 3
        if args.quick:
            sizes, effective, steps = [64, 128, 192, 256], 2048, 2
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    sizes = args.sizes or sizes
    effective = args.effective or effective
    steps = args.steps or steps
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}; torch {torch.__version__}; transformers {transformers.__version__}")
    started = time.perf_counter()
    bench = Bench(config, device, args.compile)
    print(
        f"tower {config}: {bench.params / 1e6:.2f}M parameters, built in {time.perf_counter() - started:.1f} s"
    )

    plain = measure_plain(bench, sizes, steps)
    fitted = [row for row in plain if row["status"] == "ok"]
    if not fitted:
        sys.exit(f"no plain batch size in {sizes} fits in memory")
    best = max(fitted, key=lambda row: float(row["images_per_s"]))
    largest = max(int(row["batch"]) for row in fitted)
    chunk = int(best["batch"])
    cached = measure_cached(bench, effective, chunk, args.gc_steps)
    print(
        f"gradcache batch {effective} in chunks of {chunk}: {cached['images_per_s']:8.1f} img/s  "
        f"{cached['step_s']:.1f} s/step  peak {cached['peak_allocated_gib']:.1f} GiB allocated, "
        f"{cached['peak_reserved_gib']:.1f} GiB reserved"
    )
    print(
        f"largest plain batch that fits: {largest}; fastest: {chunk} at {float(best['images_per_s']):.1f} img/s"
    )
    print(
        f"ratio gradcache / best plain: {cached['images_per_s'] / float(best['images_per_s']):.3f} "
        "(expected ceiling ~0.75: one extra forward per chunk)"
    )
    print(f"effective batch gain: {effective / largest:.0f}x the largest plain batch")
    print(f"total time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
