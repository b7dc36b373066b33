"""MegaStyle-FLUX compute cost on one GPU: a FLUX.1-dev-sized transformer at random bf16 weights.

    pip install --no-deps wheels/diffusers-*.whl   # done by the wrapper command, never by this script
    python benchmarks/gpu/bench_flux_transfer.py [--quick] [--json results.json]
    python benchmarks/gpu/bench_flux_transfer.py --tiny      # CPU: tiny config, 64 px, every section (~15 s)
    python benchmarks/gpu/bench_flux_transfer.py --tiny --compile-sizes 64   # + compile path (minutes on CPU)

What is timed (transformer only: no VAE, no text encoders; prompt embeddings are random 512-token
tensors; attention is diffusers' native backend = torch SDPA):
- seconds per denoising step and images/s at 30 steps per image, at 512² and 1024², without and with
  the reference (a same-size packed latent joined BEFORE the target with the official ids, through
  ``megastyle.transfer.latents.predict_target_velocity``, the step the pipeline and trainer run), at batch 1 and at
  the largest power-of-two batch that fits (bounded search), eager and with regional ``torch.compile``
  (each transformer block, ``fullgraph=True``, static shapes), optionally after diffusers'
  ``fuse_qkv_projections`` (``--fuse-qkv``; the change it makes to one step's output is printed), optionally with SDPA held
  to one backend (``--compiled-sdpa cudnn|flash|...``; the eager rows keep SDPA's own choice);
- LoRA training samples/s (rank 128 = alpha on attention, MLP and AdaLN modulation linears of every
  block, base bf16, LoRA weights fp32 under bf16 autocast, gradient checkpointing, AdamW as megastyle's
  trainer builds it (foreach), SDPA without its cuDNN backend as the trainer runs it, MSE on the target
  tokens only) at 512² with the reference, batch 1 and the largest that fits. Training runs in a child
  process on a freshly built model (``--train-child``): a CUDA error there (the 2026-11-26 H200 runs hit
  "illegal memory access" in the backward with cuDNN attention on, which poisons the whole CUDA context)
  cannot take the inference sections or their results down. When a child fails, the next of
  ``--train-variants`` is tried (``cudnn-sdpa``, ``fused-adamw`` and ``blocking`` reproduce the failure:
  ``blocking`` launches synchronously and syncs after each phase at batch 1, so the failing kernel is named).
Ratios are computed against measurements of the same run; the anchor (H200, diffusers 0.42.1, SDPA)
is printed beside them only for reference. Nothing is asserted. Results are written (and rewritten
after every measurement, so a run cut short keeps what it measured) to ``--json`` or ``$OUT``; each
training child writes its own ``*.train-<variant>.json`` beside it as it goes. Every section's error is
kept with its phase and full traceback under ``errors``.

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
import subprocess
import sys
import tempfile
import time
import traceback
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
# Training child settings: (extra flags, extra environment). On the 2026-11-26 H200 runs (torch 2.11, cuDNN
# 9.19) training with SDPA's own backend choice (cuDNN attention first on sm90: check_prefer_cudnn_attention
# in sdp_utils.cpp) died with an illegal memory access in the backward, with foreach and with fused AdamW alike,
# and completed with the cuDNN backend off. megastyle's trainer therefore turns it off (cudnn_attention =
# false). "blocking" names the failing kernel: synchronous launches, cuDNN attention on.
TRAIN_VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "trainer": (["--no-cudnn-sdpa"], {}),  # megastyle's trainer: foreach AdamW, no cuDNN attention
    "cudnn-sdpa": ([], {}),  # SDPA's own backend choice: what failed on the H200
    "fused-adamw": (["--fused-adamw"], {}),  # the first failing run's optimizer (cuDNN attention on)
    "blocking": (["--sync-phases", "--max-batch-train", "1"], {"CUDA_LAUNCH_BLOCKING": "1"}),
}


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
        self.errors: list[dict[str, Any]] = []
        self.phase = "setup"  # what was running when an error surfaced (kept with its traceback)
        self.t_start = time.perf_counter()
        self.config = TINY_CONFIG if args.tiny else FLUX_DEV_CONFIG
        self.model: Any = None
        self.fused_qkv = False  # set once --fuse-qkv has fused this process's model (the compiled section)
        # The SDPA backend of the rows: SDPA's own choice until --compiled-sdpa restricts the compiled section.
        self.sdpa = "default"
        self.build_model()
        self.build_s = self.last_build_s
        self.params = sum(p.numel() for p in self.model.parameters())
        self.env = environment(self)  # once: after a CUDA error the device cannot be queried any more

    def build_model(self) -> None:
        """A fresh model at random weights, frozen and in eval mode, directly in the target dtype and device."""
        model_cls = import_diffusers()
        t0 = time.perf_counter()
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)  # build directly in the target dtype: no fp32 copy of 11.9B
        try:
            with torch.device(self.device):
                self.model = model_cls(**self.config).eval().requires_grad_(False)
        finally:
            torch.set_default_dtype(default_dtype)
        self.last_build_s = time.perf_counter() - t0

    def release_model(self) -> None:
        """Drop this process's model so a training child has the device memory to itself."""
        self.model = None
        self.free()

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
            try:
                torch.cuda.empty_cache()
            except RuntimeError as err:  # a dead context (sticky CUDA error) is reported by its section
                print(f"  [warn] empty_cache: {type(err).__name__}: {str(err).splitlines()[0]}", flush=True)

    def reset_peak(self) -> None:
        """Start a fresh peak-memory window."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float | None:
        """Peak allocated GiB since ``reset_peak`` (None off CUDA)."""
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**30

    def run_section(self, name: str, body: Callable[[], Any]) -> bool:
        """Run one section, wait for its queued kernels, and keep its error instead of raising (False then)."""
        try:
            body()
            self.phase = f"{name}: final synchronize"  # an asynchronous error surfaces here, not later
            self.sync()
        except Exception as err:  # one section's failure must not lose what the others measured
            self.fail(name, err)
            return False
        return True

    def fail(self, section: str, err: BaseException) -> None:
        """Note a failure with its phase and full traceback; touches no device state (it may be dead)."""
        first_line = (str(err).splitlines() or [""])[0][:300]
        self.notes.append(f"{section} stopped in {self.phase}: {type(err).__name__}: {first_line}")
        trace = traceback.format_exc()
        self.errors.append({"section": section, "phase": self.phase, "traceback": trace})
        print(f"  [error] {self.notes[-1]}\n{trace}", flush=True)
        self.write_json()

    def json_path(self, suffix: str = "") -> Path | None:
        """``--json`` (or ``$OUT/bench_flux_transfer.json``) with ``suffix`` before the extension."""
        path = self.args.json or (
            Path(os.environ["OUT"]) / "bench_flux_transfer.json" if "OUT" in os.environ else None
        )
        return None if path is None else path.with_name(f"{path.stem}{suffix}{path.suffix}")

    def record(self, row: dict[str, Any]) -> None:
        """Keep a row, print it, and rewrite the JSON file."""
        self.rows.append(row)
        print("  " + format_row(row), flush=True)
        self.write_json()

    def write_json(self, ratios: dict[str, Any] | None = None) -> None:
        """Write everything measured so far to ``--json`` (or ``$OUT/bench_flux_transfer.json``)."""
        path = self.json_path()
        if path is None or not hasattr(self, "env"):
            return
        payload = {"environment": self.env, "rows": self.rows, "notes": self.notes, "errors": self.errors}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload | {"ratios": ratios}, indent=2), encoding="utf-8")

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

    def largest_batch(self, make_step: Callable[[int], Callable[[], Any]], cap: int, what: str) -> int:
        """Largest power of two ≤ ``cap`` whose step runs; stops at the first OOM or a step over the limit."""
        best, batch = 0, 1
        while batch <= cap:
            self.phase = f"{what}: batch search at {batch}"
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
                self.notes.append(f"{what}: batch {batch} ran out of memory")
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
        self.phase = f"{'compiled' if compiled else 'eager'} inference {size}px ref={reference} batch {batch}"
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
            "fused_qkv": self.fused_qkv,
            "compile_mode": self.args.compile_mode if compiled else None,
            "sdpa": self.sdpa,
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
        if self.model is None:
            self.build_model()
        only_ref = compiled and self.args.compile_ref_only
        for size in sizes:
            cap = self.args.max_batch_512 if size <= 512 else self.args.max_batch_1024
            for reference in (True,) if only_ref else (True, False):
                if self.over_budget(f"{'compiled' if compiled else 'eager'} {size}px ref={reference}"):
                    return
                if not (compiled and self.args.compile_largest_batch_only):
                    self.measure_inference(size, reference, 1, compiled)
                key = (size, reference)
                if not compiled:
                    self.max_batch[key] = self.largest_batch(
                        lambda b, s=size, r=reference: self.infer_step(s, b, r), cap, f"inference {size}px"
                    )
                if self.max_batch.get(key, 0) > 1 and not self.over_budget(
                    f"{size}px ref={reference} batched"
                ):
                    self.measure_inference(size, reference, self.max_batch[key], compiled)

    def compiled_section(self, sizes: list[int]) -> None:
        """Regional compile of this process's (never trained) model, then the inference section at ``sizes``."""
        import torch._dynamo

        if self.model is None:
            self.build_model()
        self.phase = "compile_repeated_blocks"
        # Every FluxTransformerBlock / FluxSingleTransformerBlock, fullgraph, static shapes, default mode
        # (no CUDA graphs).
        # Each (batch, size, reference) shape compiles once; keep them all instead of falling back to eager.
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, 64)
        if self.args.fuse_qkv:
            self.fuse_qkv(min(sizes))
        if self.args.compiled_sdpa != "default":
            self.sdpa = restrict_sdpa(self.args.compiled_sdpa)
        mode = {} if self.args.compile_mode == "default" else {"mode": self.args.compile_mode}
        self.model.compile_repeated_blocks(fullgraph=True, dynamic=False, **mode)
        self.inference_section(sizes, compiled=True)

    def fuse_qkv(self, size: int) -> float:
        """diffusers' ``fuse_qkv_projections`` (one GEMM for q/k/v and one for the text stream's); returns and notes
        the largest change it makes to one step's output, relative to the output's largest value."""
        self.phase = "fuse_qkv_projections"
        step = self.infer_step(size, 1, reference=True)  # fixed random inputs: the same for both calls
        before = step().float()
        self.model.fuse_qkv_projections()
        after = step().float()
        change = float((after - before).abs().max() / before.abs().max().clamp_min(1e-12))
        fused = sum(bool(getattr(m, "fused_projections", False)) for m in self.model.modules())
        self.notes.append(f"fused q/k/v in {fused} attention modules; one step's output changed by {change:.2e} "
                          f"(max |Δ| / max |output|, {self.args.dtype})")  # fmt: skip
        print(f"  {self.notes[-1]}", flush=True)
        self.fused_qkv = True
        return change

    def training_section(self, size: int) -> None:
        """LoRA training samples/s at ``size`` with the reference: batch 1 and the largest that fits."""
        self.phase = "LoRA injection"
        params, source = add_lora(self.model, self.args.lora_rank)
        million = sum(p.numel() for p in params) / 1e6
        self.notes.append(f"LoRA rank {self.args.lora_rank}: {million:.1f}M parameters via {source}")
        print(f"  {self.notes[-1]}", flush=True)
        self.model.enable_gradient_checkpointing()
        self.model.train()
        # megastyle's trainer builds AdamW with torch's default (foreach); fused only as a diagnostic variant.
        optimizer = torch.optim.AdamW(params, lr=1e-4, fused=self.args.fused_adamw or None)
        variant = self.args.train_child or "in-process"

        def phase(name: str, batch: int) -> None:
            if self.args.sync_phases:  # attribute an asynchronous device error to the phase that queued it
                self.sync()
            self.phase = f"training {variant} batch {batch}: {name}"

        def make_step(batch: int) -> Callable[[], Any]:
            forward = self.forward_fn(size, batch, reference=True)
            side = size // VAE_SCALE_FACTOR
            target = torch.randn(batch, side * side // 4, self.config["in_channels"], device=self.device)

            def step() -> None:
                phase("forward", batch)
                with torch.autocast(
                    self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16
                ):
                    out = forward()
                loss = torch.nn.functional.mse_loss(out.float(), target)
                phase("backward", batch)
                loss.backward()
                phase("optimizer step", batch)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                phase("step done", batch)

            return step

        make_step(1)()  # allocates the optimizer state before the memory search
        self.sync()
        best = self.largest_batch(make_step, self.args.max_batch_train, f"training {variant}")
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
                         "peak_gib": self.peak_gib(), "warmup_s": warm_s, "variant": variant})  # fmt: skip

    def train_in_children(self, argv: list[str]) -> None:
        """Training in child processes, one per ``--train-variants`` entry until one completes."""
        self.release_model()  # the child builds its own model: the device memory is its alone
        for variant in self.args.train_variants:
            if self.over_budget(f"training ({variant})"):
                return
            if self.train_child(variant, argv) and not self.args.train_all_variants:
                return

    def train_child(self, variant: str, argv: list[str]) -> bool:
        """Run ``--train-child variant`` with this run's options; merge what it measured; True when it completed."""
        flags, env = TRAIN_VARIANTS[variant]
        path = self.json_path(f".train-{variant}")
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="bench_flux_")) / f"train-{variant}.json"
        path.unlink(missing_ok=True)
        left = max(self.args.budget_s - self.elapsed(), 1.0)
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--train-child", variant, *flags,
               "--json", str(path), "--budget-s", f"{left:.0f}"]  # fmt: skip
        settings = " ".join(flags + [f"{k}={v}" for k, v in env.items()]) or "megastyle trainer settings"
        print(f"  [train] child process, variant {variant}: {settings}", flush=True)
        try:
            done = subprocess.run(
                cmd, env={**os.environ, **env}, timeout=self.args.train_timeout_s, check=False
            )
            status, ok = f"exit code {done.returncode}", done.returncode == 0
        except subprocess.TimeoutExpired:
            status, ok = f"killed after --train-timeout-s {self.args.train_timeout_s:.0f} s", False
        child = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.rows += child.get("rows", [])
        self.notes += [f"[{variant}] {note}" for note in child.get("notes", [])]
        self.errors += [{**error, "variant": variant} for error in child.get("errors", [])]
        if not ok:
            self.notes.append(f"training variant {variant}: {status}" + ("" if child else ", wrote nothing"))
            print(f"  [error] {self.notes[-1]}", flush=True)
        self.write_json()
        return ok


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


SDPA_BACKENDS = ("flash", "mem_efficient", "math", "cudnn")


def restrict_sdpa(backend: str) -> str:
    """Leave only ``backend`` among SDPA's CUDA backends (no silent fallback: an unsupported call fails)."""
    if backend not in SDPA_BACKENDS:
        raise ValueError(f"unknown SDPA backend {backend!r}; choose from {SDPA_BACKENDS}")
    for name in SDPA_BACKENDS:
        getattr(torch.backends.cuda, f"enable_{name}_sdp")(name == backend)
    return backend


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
            f"{('compile' if row['compiled'] else 'eager') + ('+fq' if row.get('fused_qkv') else ''):>10} {row['ms_per_step']:9.1f} {per_image} {rate} "
            f"{peak} {row['warmup_s']:7.1f}" + (f"   [{row['variant']}]" if "variant" in row else "")
            + (f"   [sdpa {row['sdpa']}]" if row.get("sdpa", "default") != "default" else ""))  # fmt: skip


HEADER = (
    "mode   size  ref batch      kind   ms/step ms/img-st     rate       peakGiB* warm s   (*incl. weights)"
)


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
        keys = ("batch", "compiled", "fused_qkv", "compile_mode", "sdpa")
        out[f"goal_{small}_ref_best_config"] = {k: top.get(k) for k in keys}
    compiled = best(rows, mode="infer", size=small, reference=True, compiled=True)
    if base and compiled:  # the configuration: compiled, at its best batch, against eager batch 1
        out[f"goal_{small}_ref_compiled_best_batch_over_b1_eager"] = (
            compiled["images_per_s"] / base["images_per_s"]
        )
    trained = best(rows, mode="train", size=small)
    if trained:
        out[f"train_{small}_ref_best"] = {k: trained[k] for k in ("batch", "samples_per_s", "variant")}
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
            "steps_per_image": STEPS_PER_IMAGE, "quick": runner.args.quick,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "sdpa_enabled": {"flash": torch.backends.cuda.flash_sdp_enabled(),
                             "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
                             "math": torch.backends.cuda.math_sdp_enabled(),
                             "cudnn": torch.backends.cuda.cudnn_sdp_enabled()},
            "train_child": runner.args.train_child}  # fmt: skip


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
    p.add_argument(
        "--train-variants",
        nargs="+",
        choices=tuple(TRAIN_VARIANTS),
        default=["trainer", "blocking"],
        help="Training child settings, tried in order until one completes.",
    )
    p.add_argument(
        "--train-all-variants", action="store_true", help="Run every variant (to bisect a failure)."
    )
    p.add_argument(
        "--train-timeout-s", type=float, default=None, help="Kill a training child after this long."
    )
    # A training child's own options (set by the parent from TRAIN_VARIANTS; usable by hand to reproduce one).
    p.add_argument(
        "--train-child", choices=tuple(TRAIN_VARIANTS), default=None, help="Run only the training section."
    )
    p.add_argument(
        "--fuse-qkv",
        action="store_true",
        help="Fuse q/k/v projections before compiling (diffusers' own option).",
    )
    p.add_argument(
        "--compile-mode",
        choices=("default", "max-autotune-no-cudagraphs"),
        default="default",
        help="torch.compile mode of the compiled section (max-autotune: Triton GEMM templates, long compile).",
    )
    p.add_argument(
        "--compile-ref-only", action="store_true", help="Compiled section: with the reference only."
    )
    p.add_argument(
        "--compile-largest-batch-only", action="store_true", help="Compiled section: skip batch 1."
    )
    p.add_argument("--fused-adamw", action="store_true", help="fused=True AdamW instead of the default.")
    p.add_argument("--no-cudnn-sdpa", action="store_true", help="Disable the cuDNN SDPA backend.")
    p.add_argument(
        "--compiled-sdpa",
        choices=("default", *SDPA_BACKENDS),
        default="default",
        help="Compiled section only: SDPA's one backend (the eager rows, the goal's baseline, keep SDPA's choice).",
    )
    p.add_argument("--sync-phases", action="store_true", help="Synchronize after every training phase.")
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
        "train_timeout_s": 120.0 if tiny else 300.0,
    }
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    return a


def run_train_child(args: argparse.Namespace) -> dict[str, Any]:
    """``--train-child``: the training section alone on a fresh model; exit code 1 when it failed."""
    runner = Runner(args)
    print(f"  [train {args.train_child}] {runner.params / 1e6:.1f}M parameters on {args.device} ({args.dtype}), "
          f"cuDNN {runner.env['cudnn']}, SDPA backends {runner.env['sdpa_enabled']}", flush=True)  # fmt: skip
    ok = runner.run_section(
        f"training ({args.train_child})", lambda: runner.training_section(min(args.sizes))
    )
    runner.write_json()
    return {"rows": runner.rows, "notes": runner.notes, "errors": runner.errors, "returncode": 0 if ok else 1}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every section in priority order, print the table and the ratios."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.no_cudnn_sdpa:
        torch.backends.cuda.enable_cudnn_sdp(False)  # before the build, so the environment records it
    if args.train_child:
        return run_train_child(args)
    runner = Runner(args)
    print(f"{runner.params / 1e6:.1f}M parameters built in {runner.build_s:.1f} s on {args.device} "
          f"({args.dtype}); reference join: {runner.join_source}", flush=True)  # fmt: skip
    print(HEADER, flush=True)
    runner.run_section("eager inference", lambda: runner.inference_section(args.sizes, compiled=False))
    if not args.no_train and not runner.over_budget("training"):
        runner.train_in_children(argv)
    compile_sizes = [s for s in args.sizes if s in args.compile_sizes]
    if compile_sizes and not runner.over_budget("compile"):
        runner.run_section("compiled inference", lambda: runner.compiled_section(compile_sizes))
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
    return {"rows": runner.rows, "ratios": result, "notes": runner.notes, "errors": runner.errors}


if __name__ == "__main__":
    sys.exit(main().get("returncode", 0))
