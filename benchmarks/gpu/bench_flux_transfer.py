"""MegaStyle-FLUX compute cost on one GPU: a FLUX.1-dev-sized transformer at random bf16 weights.

    pip install --no-deps wheels/diffusers-*.whl   # done by the wrapper command, never by this script
    python benchmarks/gpu/bench_flux_transfer.py [--quick] [--json results.json]
    python benchmarks/gpu/bench_flux_transfer.py --tiny      # CPU smoke test: tiny config, 64 px (~15 s)
    python benchmarks/gpu/bench_flux_transfer.py --tiny --compile-sizes 64   # + compile path (minutes on CPU)

What is timed (transformer only: no VAE, no text encoders; prompt embeddings are random 512-token
tensors; attention is diffusers' native backend = torch SDPA):
- seconds per denoising step and images/s at 30 steps per image, at 512² and 1024², without and with
  the reference (a same-size packed latent joined BEFORE the target with the official ids, through
  ``megastyle.transfer.latents.predict_target_velocity``, the step the pipeline and trainer run), at batch 1 and at
  the largest power-of-two batch that fits (bounded search), eager and with regional ``torch.compile``
  (each transformer block, ``fullgraph=True``, static shapes);
- LoRA training samples/s (rank 128 = alpha on attention, MLP and AdaLN modulation linears of every
  block, base bf16, LoRA weights fp32 under bf16 autocast, gradient checkpointing, AdamW, MSE on the
  target tokens only) at 512² with the reference, batch 1 and the largest that fits.
Ratios are computed against measurements of the same run; the anchor (H200, diffusers 0.42.1, SDPA)
is printed beside them only for reference. Nothing is asserted. Results are written (and rewritten
after every measurement, so a run cut short keeps what it measured) to ``--json`` or ``$OUT``.

Needs torch and diffusers (plus diffusers' own small dependencies: huggingface_hub, safetensors,
filelock, regex, requests, numpy, Pillow); peft is used for LoRA when importable, else an inline LoRA
of the same shapes and cost is used and the output says so.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
STEPS_PER_IMAGE = 30
VAE_SCALE_FACTOR = 8  # FLUX's VAE: 512 px → 64×64 latent → 32×32 = 1024 packed tokens
# diffusers' FluxTransformer2DModel defaults are FLUX.1-dev's shapes except guidance_embeds (False there).
FLUX_DEV_CONFIG: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}
TINY_CONFIG: dict[str, Any] = {
    **FLUX_DEV_CONFIG,
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,
    "pooled_projection_dim": 32,
    "axes_dims_rope": (4, 4, 8),
}
# Official LoRA targets (kohya names → diffusers modules): qkv/proj, MLPs, mod_lin of double blocks;
# linear1 (= to_q/k/v + proj_mlp), linear2 (= proj_out) and modulation_lin of single blocks.
LORA_TARGETS = (
    r"transformer_blocks\.\d+\.(attn\.(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)"
    r"|ff\.net\.(0\.proj|2)|ff_context\.net\.(0\.proj|2)|norm1\.linear|norm1_context\.linear)"
    r"|single_transformer_blocks\.\d+\.(attn\.(to_q|to_k|to_v)|proj_mlp|proj_out|norm\.linear)"
)
# Anchor: one H200, torch 2.11, diffusers 0.42.1, bf16, SDPA, batch 1 (ms per step).
ANCHOR_MS = {(512, False): 64.3, (512, True): 94.4, (1024, False): 174.2, (1024, True): 364.7}


def import_diffusers() -> Any:
    """``diffusers.FluxTransformer2DModel``, or exit with the install line the wrapper should run."""
    try:
        from diffusers import FluxTransformer2DModel
    except ImportError as err:
        sys.exit(
            f"cannot import diffusers ({err}); the wrapper command must run "
            "`pip install --no-deps wheels/diffusers-*.whl` (and wheels of any missing dependency) first"
        )
    return FluxTransformer2DModel


def import_latents() -> tuple[Any, str]:
    """``megastyle.transfer.latents`` (torch only), imported from the repository's ``src``."""
    sys.path.insert(0, str(REPO / "src"))
    from megastyle.transfer import latents

    return latents, "megastyle.transfer.latents.predict_target_velocity (the pipeline's own step)"


class Runner:
    """Holds the model and device; builds inputs; times steps; writes results as it goes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
        self.latents, self.join_source = import_latents()
        self.rows: list[dict[str, Any]] = []
        self.max_batch: dict[tuple[int, bool], int] = {}  # (size, reference) → largest eager batch
        self.notes: list[str] = []
        self.t_start = time.perf_counter()
        self.config = TINY_CONFIG if args.tiny else FLUX_DEV_CONFIG
        model_cls = import_diffusers()
        t0 = time.perf_counter()
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)  # build directly in the target dtype: no fp32 copy of 11.9B
        try:
            with torch.device(self.device):
                self.model = model_cls(**self.config).eval().requires_grad_(False)
        finally:
            torch.set_default_dtype(default_dtype)
        self.build_s = time.perf_counter() - t0
        self.params = sum(p.numel() for p in self.model.parameters())

    # ----- bookkeeping ------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since the runner started."""
        return time.perf_counter() - self.t_start

    def over_budget(self, what: str) -> bool:
        """True (and noted) when the time budget is spent, so ``what`` is skipped."""
        if self.elapsed() < self.args.budget_s:
            return False
        self.notes.append(f"skipped {what}: time budget {self.args.budget_s:.0f} s spent")
        print(f"  [skip] {self.notes[-1]}", flush=True)
        return True

    def sync(self) -> None:
        """Wait for queued device work (timings need it on CUDA)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def free(self) -> None:
        """Release cached blocks after an out-of-memory try or a finished section."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def reset_peak(self) -> None:
        """Start a fresh peak-memory window."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        """Peak allocated GiB since ``reset_peak`` (None off CUDA)."""
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**30

    def record(self, row: dict[str, Any]) -> None:
        """Keep a row, print it, and rewrite the JSON file."""
        self.rows.append(row)
        print("  " + format_row(row), flush=True)
        self.write_json()

    def write_json(self, ratios: dict[str, Any] | None = None) -> None:
        """Write everything measured so far to ``--json`` (or ``$OUT/bench_flux_transfer.json``)."""
        path = self.args.json or (
            Path(os.environ["OUT"]) / "bench_flux_transfer.json" if "OUT" in os.environ else None
        )
        if path is None:
            return
        payload = {"environment": environment(self), "rows": self.rows, "notes": self.notes, "ratios": ratios}
        Path(path).write_text(json.dumps(payload, indent=2), encoding="utf-8")

    # ----- inputs and steps -------------------------------------------------------------------
    def forward_fn(self, size: int, batch: int, reference: bool) -> Callable[[], torch.Tensor]:
        """One transformer pass at ``size`` px through the pipeline's own ``predict_target_velocity``.

        Random packed latents (and a random clean reference joined before them with the official ids),
        random 512-token prompt embeddings; returns the target tokens' velocity only.
        """
        cfg = self.config
        side = size // VAE_SCALE_FACTOR
        kw = {"device": self.device, "dtype": self.dtype}
        latents = self.latents.pack_latents(torch.randn(batch, cfg["in_channels"] // 4, side, side, **kw))
        ref = torch.randn_like(latents) if reference else None  # packed, same size as the target
        text = self.args.text_tokens
        prompt_embeds = torch.randn(batch, text, cfg["joint_attention_dim"], **kw)
        pooled = torch.randn(batch, cfg["pooled_projection_dim"], **kw)
        text_ids = torch.zeros(text, 3, **kw)
        sigma = torch.full((batch,), 0.5, **kw)
        guidance = torch.full((batch,), 3.5, **kw) if cfg["guidance_embeds"] else None

        def forward() -> torch.Tensor:
            return self.latents.predict_target_velocity(
                self.model, latents, ref, sigma, prompt_embeds, pooled, text_ids, guidance, side, side
            )

        return forward

    def timed(self, step: Callable[[], Any], warmup: int, iters: int) -> tuple[float, float]:
        """(seconds of the warm-up calls, seconds per timed call)."""
        t0 = time.perf_counter()
        for _ in range(warmup):
            step()
        self.sync()
        warm_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        self.sync()
        return warm_s, (time.perf_counter() - t0) / iters

    def infer_step(self, size: int, batch: int, reference: bool) -> Callable[[], Any]:
        """A no-grad denoising step that keeps only the target tokens (as the pipeline does)."""
        forward = self.forward_fn(size, batch, reference)

        def step() -> Any:
            with torch.inference_mode():
                return forward()

        return step

    def largest_batch(self, make_step: Callable[[int], Callable[[], Any]], cap: int) -> int:
        """Largest power of two ≤ ``cap`` whose step runs; stops at the first OOM or a step over the limit."""
        best, batch = 0, 1
        while batch <= cap:
            oom = False
            try:
                t0 = time.perf_counter()
                make_step(batch)()
                self.sync()
                took = time.perf_counter() - t0
            except torch.OutOfMemoryError:
                oom = True
            self.free()  # outside the except block: the traceback no longer pins tensors
            if oom:
                self.notes.append(f"batch {batch} ran out of memory")
                break
            best = batch
            if took > self.args.max_step_s:  # the next doubling would cost too much time
                break
            batch *= 2
        return best

    # ----- sections ---------------------------------------------------------------------------
    def measure_inference(
        self, size: int, reference: bool, batch: int, compiled: bool
    ) -> dict[str, Any] | None:
        """Time one inference configuration and record it (None when it runs out of memory)."""
        self.reset_peak()
        warmup = self.args.warmup + (1 if compiled else 0)
        try:
            warm_s, step_s = self.timed(self.infer_step(size, batch, reference), warmup, self.args.iters)
        except torch.OutOfMemoryError:
            warm_s = step_s = -1.0
        self.free()
        if step_s < 0:
            self.notes.append(f"{size}px ref={reference} batch {batch} compiled={compiled}: out of memory")
            return None
        row = {
            "mode": "infer",
            "size": size,
            "reference": reference,
            "batch": batch,
            "compiled": compiled,
            "ms_per_step": 1000 * step_s,
            "ms_per_image_step": 1000 * step_s / batch,
            "images_per_s": batch / (STEPS_PER_IMAGE * step_s),
            "peak_gib": self.peak_gib(),
            "warmup_s": warm_s,
        }
        self.record(row)
        return row

    def inference_section(self, sizes: list[int], compiled: bool) -> None:
        """Batch 1 and the largest batch, without and with the reference, at every size."""
        for size in sizes:
            cap = self.args.max_batch_512 if size <= 512 else self.args.max_batch_1024
            for reference in (True, False):
                if self.over_budget(f"{'compiled' if compiled else 'eager'} {size}px ref={reference}"):
                    return
                self.measure_inference(size, reference, 1, compiled)
                key = (size, reference)
                if not compiled:
                    self.max_batch[key] = self.largest_batch(
                        lambda b, s=size, r=reference: self.infer_step(s, b, r), cap
                    )
                if self.max_batch.get(key, 0) > 1 and not self.over_budget(
                    f"{size}px ref={reference} batched"
                ):
                    self.measure_inference(size, reference, self.max_batch[key], compiled)

    def compile_blocks(self) -> None:
        """Regional compile: every FluxTransformerBlock / FluxSingleTransformerBlock, fullgraph, static shapes."""
        import torch._dynamo

        # Each (batch, size, reference) shape compiles once; keep them all instead of falling back to eager.
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, 64)
        self.model.compile_repeated_blocks(fullgraph=True, dynamic=False)

    def training_section(self, size: int) -> None:
        """LoRA training samples/s at ``size`` with the reference: batch 1 and the largest that fits."""
        params, source = add_lora(self.model, self.args.lora_rank)
        self.notes.append(
            f"LoRA rank {self.args.lora_rank}: {sum(p.numel() for p in params) / 1e6:.1f}M parameters via {source}"
        )
        print(f"  {self.notes[-1]}", flush=True)
        self.model.enable_gradient_checkpointing()
        self.model.train()
        optimizer = torch.optim.AdamW(params, lr=1e-4, fused=self.device.type == "cuda")

        def make_step(batch: int) -> Callable[[], Any]:
            forward = self.forward_fn(size, batch, reference=True)
            side = size // VAE_SCALE_FACTOR
            target = torch.randn(batch, side * side // 4, self.config["in_channels"], device=self.device)

            def step() -> None:
                with torch.autocast(
                    self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16
                ):
                    out = forward()
                loss = torch.nn.functional.mse_loss(out.float(), target)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            return step

        make_step(1)()  # allocates the optimizer state before the memory search
        best = self.largest_batch(make_step, self.args.max_batch_train)
        optimizer.zero_grad(set_to_none=True)  # an OOM mid-backward leaves gradients behind
        for batch in sorted({1, best} - {0}):
            if self.over_budget(f"training batch {batch}"):
                break
            self.reset_peak()
            try:
                warm_s, step_s = self.timed(make_step(batch), self.args.warmup, self.args.iters)
            except torch.OutOfMemoryError:
                step_s = -1.0
            self.free()
            if step_s < 0:
                self.notes.append(f"training batch {batch}: out of memory")
                continue
            self.record({"mode": "train", "size": size, "reference": True, "batch": batch, "compiled": False,
                         "ms_per_step": 1000 * step_s, "samples_per_s": batch / step_s,
                         "peak_gib": self.peak_gib(), "warmup_s": warm_s})  # fmt: skip
        optimizer.state.clear()  # frees the fp32 moments before the compiled section

    def untrain(self) -> None:
        """Back to the plain inference model: no LoRA, no checkpointing, eval, no gradients."""
        strip_lora(self.model)
        self.model.disable_gradient_checkpointing()
        self.model.eval().requires_grad_(False)
        self.free()


def add_lora(model: torch.nn.Module, rank: int) -> tuple[list[torch.nn.Parameter], str]:
    """Rank-``rank`` (alpha = rank) LoRA on the official targets; fp32 LoRA weights, base frozen."""
    model.requires_grad_(False)
    try:
        from peft import LoraConfig, inject_adapter_in_model

        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=LORA_TARGETS), model)
        source = "peft"
    except ImportError:
        import re

        pattern = re.compile(LORA_TARGETS)
        for name, module in list(model.named_modules()):
            if isinstance(module, torch.nn.Linear) and pattern.fullmatch(name):
                parent, _, child = name.rpartition(".")
                setattr(model.get_submodule(parent), child, InlineLora(module, rank))
        source = "inline LoRA (peft not importable)"
    params = []
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = param.data.float()
            param.requires_grad_(True)
            params.append(param)
    return params, source


class InlineLora(torch.nn.Module):
    """``base(x) + up(down(x))``: the same two extra matmuls per layer as a peft LoRA (fallback only)."""

    def __init__(self, base: torch.nn.Linear, rank: int) -> None:
        super().__init__()
        self.base_layer = base
        kw = {"device": base.weight.device, "dtype": base.weight.dtype, "bias": False}
        self.lora_A = torch.nn.Linear(base.in_features, rank, **kw)
        self.lora_B = torch.nn.Linear(rank, base.out_features, **kw)
        torch.nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Base output plus the low-rank update."""
        return self.base_layer(x) + self.lora_B(self.lora_A(x.to(self.lora_A.weight.dtype))).to(x.dtype)


def strip_lora(model: torch.nn.Module) -> None:
    """Replace every LoRA-wrapped layer by its base layer (inference runs on the plain model again)."""
    for name, module in list(model.named_modules()):
        base = getattr(module, "base_layer", None)
        if isinstance(base, torch.nn.Module) and name:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, base)


def format_row(row: dict[str, Any]) -> str:
    """One table line."""
    rate = (
        f"{row['images_per_s']:8.3f} img/s"
        if row["mode"] == "infer"
        else f"{row['samples_per_s']:8.3f} smp/s"
    )
    per_image = f"{row['ms_per_image_step']:8.1f}" if "ms_per_image_step" in row else f"{'':8}"
    peak = f"{row['peak_gib']:6.1f}" if row.get("peak_gib") is not None else f"{'-':>6}"
    return (f"{row['mode']:5} {row['size']:5} {'ref' if row['reference'] else '-':>4} {row['batch']:5} "
            f"{'compile' if row['compiled'] else 'eager':>7} {row['ms_per_step']:9.1f} {per_image} {rate} "
            f"{peak} {row['warmup_s']:7.1f}")  # fmt: skip


HEADER = "mode   size  ref batch   kind   ms/step ms/img-st     rate       peakGiB* warm s   (*incl. weights)"


def best(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    """The row with the highest rate among those matching ``match``."""
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    key = "images_per_s" if match.get("mode") == "infer" else "samples_per_s"
    return max(found, key=lambda r: r[key]) if found else None


def ratios(rows: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """Goal ratio, reference overhead, compile and batching gains: all within this run."""
    out: dict[str, Any] = {}
    small = min(sizes)
    base = best(rows, mode="infer", size=small, reference=True, batch=1, compiled=False)
    top = best(rows, mode="infer", size=small, reference=True)
    if base and top:
        out[f"goal_{small}_ref_best_over_b1_eager"] = top["images_per_s"] / base["images_per_s"]
        out[f"goal_{small}_ref_best_config"] = {"batch": top["batch"], "compiled": top["compiled"]}
    for size in sizes:
        for compiled in (False, True):
            with_ref = best(rows, mode="infer", size=size, reference=True, batch=1, compiled=compiled)
            without = best(rows, mode="infer", size=size, reference=False, batch=1, compiled=compiled)
            if with_ref and without:
                tag = "compiled" if compiled else "eager"
                out[f"reference_overhead_{size}_b1_{tag}"] = with_ref["ms_per_step"] / without["ms_per_step"]
        eager = best(rows, mode="infer", size=size, reference=True, batch=1, compiled=False)
        comp = best(rows, mode="infer", size=size, reference=True, batch=1, compiled=True)
        batched = best(rows, mode="infer", size=size, reference=True, compiled=False)
        if eager and comp:
            out[f"compile_gain_{size}_ref_b1"] = comp["images_per_s"] / eager["images_per_s"]
        if eager and batched:
            out[f"batching_gain_{size}_ref_eager"] = batched["images_per_s"] / eager["images_per_s"]
    return out


def environment(runner: Runner) -> dict[str, Any]:
    """Versions, device and run settings."""
    import diffusers

    device = (
        torch.cuda.get_device_name(runner.device)
        if runner.device.type == "cuda"
        else platform.processor() or "cpu"
    )
    return {"device": device, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "dtype": runner.args.dtype, "config": "tiny" if runner.args.tiny else "FLUX.1-dev",
            "parameters": runner.params, "build_s": runner.build_s, "text_tokens": runner.args.text_tokens,
            "reference_join": runner.join_source, "attention": "diffusers native backend (torch SDPA)",
            "steps_per_image": STEPS_PER_IMAGE, "quick": runner.args.quick}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--quick`` and ``--tiny`` set smaller defaults."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="Fewer steps, smaller batch caps, compile at 512² only."
    )
    p.add_argument("--tiny", action="store_true", help="CPU smoke test: tiny config at 64 px, fp32.")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=("bf16", "fp32"), default=None)
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    p.add_argument("--compile-sizes", type=int, nargs="*", default=None, help="Sizes timed compiled.")
    p.add_argument("--text-tokens", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--iters", type=int, default=None)
    p.add_argument("--max-batch-512", type=int, default=None)
    p.add_argument("--max-batch-1024", type=int, default=None)
    p.add_argument("--max-batch-train", type=int, default=None)
    p.add_argument(
        "--max-step-s", type=float, default=4.0, help="Stop doubling the batch past this step time."
    )
    p.add_argument("--lora-rank", type=int, default=None)
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--budget-s", type=float, default=None, help="Skip what is left after this many seconds.")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    quick, tiny = a.quick or a.tiny, a.tiny
    defaults = {
        "device": "cpu" if tiny else "cuda",
        "dtype": "fp32" if tiny else "bf16",
        "sizes": [64] if tiny else [512, 1024],
        # Inductor on a CPU takes minutes per shape: the smoke test compiles only with --compile-sizes 64.
        "compile_sizes": [] if tiny else ([512] if quick else [512, 1024]),
        "text_tokens": 16 if tiny else 512,
        "warmup": 1 if quick else 2,
        "iters": 2 if quick else 4,
        "max_batch_512": 4 if tiny else (8 if quick else 16),
        "max_batch_1024": 4 if tiny else (4 if quick else 8),
        "max_batch_train": 2 if tiny else (8 if quick else 16),
        "lora_rank": 8 if tiny else 128,
        "budget_s": 420.0,
    }
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    return a


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every section in priority order, print the table and the ratios."""
    args = parse_args(argv)
    runner = Runner(args)
    print(f"{runner.params / 1e6:.1f}M parameters built in {runner.build_s:.1f} s on {args.device} "
          f"({args.dtype}); reference join: {runner.join_source}", flush=True)  # fmt: skip
    print(HEADER, flush=True)
    runner.inference_section(args.sizes, compiled=False)
    if not args.no_train and not runner.over_budget("training"):
        try:
            runner.training_section(min(args.sizes))
        except Exception as err:  # keep the inference results and still try the compiled section
            runner.notes.append(f"training section stopped: {type(err).__name__}: {str(err)[:300]}")
            print(f"  [error] {runner.notes[-1]}", flush=True)
        finally:
            runner.untrain()
    if args.compile_sizes and not runner.over_budget("compile"):
        try:
            runner.compile_blocks()
            runner.inference_section([s for s in args.sizes if s in args.compile_sizes], compiled=True)
        except Exception as err:  # a compiler failure must not lose the eager and training results
            runner.notes.append(f"compiled section stopped: {type(err).__name__}: {str(err)[:300]}")
            print(f"  [error] {runner.notes[-1]}", flush=True)
    result = ratios(runner.rows, args.sizes)
    runner.write_json(result)
    print("\n" + HEADER)
    for row in runner.rows:
        print("  " + format_row(row))
    print("\nratios (same run):")
    for key, value in result.items():
        print(f"  {key}: {value:.3f}x" if isinstance(value, float) else f"  {key}: {value}")
    goal = next((v for k, v in result.items() if k.startswith("goal_") and isinstance(v, float)), None)
    if goal is not None:
        print(f"  goal ≥ 1.5x: {'met' if goal >= 1.5 else 'not met'} ({goal:.2f}x)")
    if not args.tiny:
        print("anchor (H200, diffusers 0.42.1, SDPA, batch 1, ms/step) vs this run's eager batch 1:")
        for (size, ref), anchor in ANCHOR_MS.items():
            row = best(runner.rows, mode="infer", size=size, reference=ref, batch=1, compiled=False)
            if row:
                print(f"  {size}px ref={ref}: {row['ms_per_step']:.1f} ms here vs {anchor} ms anchor "
                      f"({row['ms_per_step'] / anchor:.2f}x)")  # fmt: skip
    for note in runner.notes:
        print(f"note: {note}")
    print(f"total {runner.elapsed():.0f} s")
    return {"rows": runner.rows, "ratios": result, "notes": runner.notes}


if __name__ == "__main__":
    main()
