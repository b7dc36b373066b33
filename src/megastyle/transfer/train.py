"""MegaStyle-FLUX LoRA training (``megastyle train-transfer``) through peft and accelerate.

One step, per pair: clean target latents x0 and clean reference latents r (VAE, packed), the target's content
prompt embedded by CLIP + T5; σ drawn per sample (uniform, logit-normal, or uniform through the static FLUX
shift), noise ε, ``x_σ = (1 − σ)·x0 + σ·ε``; the transformer sees ``[r, x_σ]`` with the official ids and the
shared timestep through ``predict_target_velocity`` — the very function inference uses — which returns the
velocity of the target tokens only; the loss is ``mean((v − (ε − x0))²)`` over those tokens. Only the LoRA
(peft, on the frozen FLUX transformer) trains; embedded guidance is 1 as in the official training.

Determinism and resume: pairs and augmentations are functions of ``(seed, epoch, position)``; σ and ε come
from a dedicated generator whose state is checkpointed with the global torch RNG (LoRA dropout), the LoRA
weights (safetensors), the optimizer (``torch.save`` of tensors, read back with ``weights_only=True``), the
scheduler and the position (JSON). A resumed run therefore takes exactly the steps of an unbroken run.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from megastyle.checkpoints import (
    CHECKPOINTS,
    check_resume_key,
    latest_checkpoint,
    load_optimizer_state,
    prune_checkpoints,
    restore_torch_rng_states,
    save_optimizer_state,
    torch_rng_states,
)
from megastyle.config import ConfigError
from megastyle.data import atomic_write_json, trim_jsonl_log
from megastyle.data.folders import claim_output_dir
from megastyle.progress import track
from megastyle.transfer.cache import CacheSpec, FluxEncoders, LatentCache, batch_tensors, epoch_loader
from megastyle.transfer.data import RowImages, batches_per_epoch, load_rows, stream_seed, trainable_rows
from megastyle.transfer.latents import predict_target_velocity
from megastyle.transfer.lora import DEFAULT_ADAPTER, save_lora
from megastyle.transfer.train_config import TrainTransferConfig

LOG_NAME = "train_log.jsonl"
# What FluxPipeline.load_lora_weights(folder) looks for.
DIFFUSERS_LORA_NAME = "pytorch_lora_weights.safetensors"
KOHYA_LORA_NAME = "megastyle_flux.safetensors"  # the official file name


@dataclass
class TrainTransferResult:
    """Where the LoRA went and how training went."""

    output_dir: Path
    lora_files: dict[str, Path]
    steps: int
    final_loss: float | None


def _notice(line: str) -> None:
    """An import's notice: on the terminal and in the log."""
    from rich.console import Console

    Console(stderr=True).print(line, highlight=False)
    logging.getLogger("megastyle").info(line)


# ----- model pieces ------------------------------------------------------------------------------
def target_modules_regex(patterns: Sequence[str]) -> str:
    """peft regex for dotted-suffix patterns ('to_q', 'ff.net.2', 'single_transformer_blocks.*.proj_out')."""
    parts = [
        r"\.".join("[^.]+" if p == "*" else re.escape(p) for p in pattern.split(".")) for pattern in patterns
    ]
    return rf"^(?:.*\.)?(?:{'|'.join(parts)})$"


def add_lora(
    transformer: torch.nn.Module, cfg: TrainTransferConfig, adapter_name: str = DEFAULT_ADAPTER
) -> list[str]:
    """Freeze the transformer, add the peft LoRA (fp32 weights), return the LoRA'd module names."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    config = LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=target_modules_regex(cfg.target_modules),
        init_lora_weights=True if cfg.init_lora_weights == "default" else cfg.init_lora_weights,
    )
    with torch.random.fork_rng(devices=[]):  # LoRA init from the run's seed, whatever ran before
        torch.manual_seed(stream_seed(cfg.seed, 0x10EA))
        transformer.add_adapter(config, adapter_name=adapter_name)
    for param in transformer.parameters():
        if param.requires_grad:
            param.data = param.data.float()  # trainable weights stay fp32 under bf16 autocast
    return sorted({n.split(".lora_")[0] for n, p in transformer.named_parameters() if p.requires_grad})


def sample_sigmas(
    batch: int, generator: torch.Generator, cfg: TrainTransferConfig, mu: float | None = None
) -> torch.Tensor:
    """Per-sample σ in (0, 1) by ``cfg.timestep_sampling`` (``mu``: FLUX's log-shift for 'dynamic_shift')."""
    if cfg.timestep_sampling == "logit_normal":
        normal = torch.randn(batch, generator=generator) * cfg.logit_std + cfg.logit_mean
        return torch.sigmoid(normal)
    uniform = torch.rand(batch, generator=generator)
    if cfg.timestep_sampling == "uniform":
        return uniform
    if cfg.timestep_sampling == "dynamic_shift":
        if mu is None:
            raise ValueError("dynamic_shift sampling needs mu (from the image token count)")
        # FluxPipeline's time shift: σ' = e^μ / (e^μ + 1/σ − 1), μ linear in the image token count.
        return math.exp(mu) / (math.exp(mu) + (1 / uniform - 1))
    shift = cfg.timestep_shift  # the static flow-match shift of the official (DiffSynth) schedule
    return shift * uniform / (1 + (shift - 1) * uniform)


def dynamic_shift_mu(scheduler_config: Any, image_seq_len: int) -> float:
    """FLUX's μ for ``image_seq_len`` target tokens, from the scheduler config (FLUX.1-dev's values by default)."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    get = scheduler_config.get
    return float(
        calculate_shift(
            image_seq_len,
            get("base_image_seq_len", 256),
            get("max_image_seq_len", 4096),
            get("base_shift", 0.5),
            get("max_shift", 1.15),
        )
    )


def flow_matching_loss(
    transformer: torch.nn.Module,
    target_latents: torch.Tensor,
    reference_latents: torch.Tensor | None,
    prompt_embeds: torch.Tensor,
    pooled: torch.Tensor,
    sigmas: torch.Tensor,
    noise: torch.Tensor,
    guidance: float | None,
    latent_height: int,
    latent_width: int,
) -> torch.Tensor:
    """Rectified-flow loss on the target tokens: ``‖v_θ([r, x_σ], σ) − (ε − x0)‖²`` (mean)."""
    sigma = sigmas.to(target_latents.dtype)[:, None, None]
    noisy = (1 - sigma) * target_latents + sigma * noise
    text_ids = torch.zeros(prompt_embeds.shape[1], 3, device=prompt_embeds.device, dtype=prompt_embeds.dtype)
    guidance_t = None if guidance is None else torch.full_like(sigmas, guidance)
    velocity = predict_target_velocity(
        transformer,
        noisy,
        reference_latents,
        sigmas.to(prompt_embeds.dtype),  # the transformer's timestep unit is σ (it multiplies by 1000)
        prompt_embeds,
        pooled,
        text_ids,
        guidance_t,
        latent_height,
        latent_width,
    )
    return torch.nn.functional.mse_loss(velocity.float(), (noise - target_latents).float())


def lr_factor(cfg: TrainTransferConfig, total_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warmup, then flat or cosine to 0."""

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "constant":
            return 1.0
        progress = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def resolve_dtypes(cfg: TrainTransferConfig, device: torch.device) -> tuple[str, torch.dtype]:
    """(accelerate mixed precision, dtype of the frozen weights)."""
    on_gpu = device.type == "cuda"
    mixed = cfg.mixed_precision if cfg.mixed_precision != "auto" else ("bf16" if on_gpu else "no")
    base = cfg.base_dtype if cfg.base_dtype != "auto" else ("bfloat16" if on_gpu else "float32")
    return mixed, getattr(torch, base)


def load_pipeline(model: Path, dtype: torch.dtype) -> Any:
    """``MegaStyleFluxPipeline`` from a local FLUX folder."""
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline

    if not Path(model).is_dir():
        raise ConfigError(f"model {model} is not a local FLUX pipeline folder")
    return MegaStyleFluxPipeline.from_pretrained(str(model), dtype=dtype)


# ----- checkpoints -------------------------------------------------------------------------------
def save_checkpoint(
    folder: Path,
    transformer: Any,
    optimizer: Any,
    scheduler: Any,
    noise: torch.Generator,
    state: dict[str, Any],
    rank: int,
    is_main: bool,
) -> None:
    """Write one checkpoint; ``trainer_state.json`` goes last and marks it complete."""
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    rng = torch_rng_states() | {"noise": noise.get_state()}
    save_file(rng, str(folder / f"rng-rank{rank}.safetensors"))
    if not is_main:
        return
    lora = get_peft_model_state_dict(transformer, adapter_name=DEFAULT_ADAPTER)
    save_file({k: v.detach().cpu().contiguous() for k, v in lora.items()}, str(folder / "lora.safetensors"))
    save_optimizer_state(folder, optimizer, scheduler)
    atomic_write_json(folder / "trainer_state.json", state)  # the marker: whole or absent


def load_checkpoint(
    folder: Path, transformer: Any, optimizer: Any, scheduler: Any, noise: torch.Generator, rank: int
) -> dict[str, Any]:
    """Restore what ``save_checkpoint`` wrote; returns the trainer state."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    result = set_peft_model_state_dict(
        transformer, load_file(str(folder / "lora.safetensors")), DEFAULT_ADAPTER
    )
    missing = [k for k in getattr(result, "unexpected_keys", []) if ".lora_" in k]
    if missing:
        raise RuntimeError(f"{folder}: LoRA keys that fit no module: {missing[:5]}")
    load_optimizer_state(folder, optimizer, scheduler)
    rng_file = folder / f"rng-rank{rank}.safetensors"
    if rng_file.is_file():  # a run resumed on more processes than it saved from starts fresh streams
        rng = load_file(str(rng_file))
        restore_torch_rng_states(rng)
        noise.set_state(rng["noise"])
    return json.loads((folder / "trainer_state.json").read_text())


# ----- the loop ----------------------------------------------------------------------------------
@contextmanager
def cudnn_attention(enabled: bool) -> Iterator[None]:
    """SDPA with (or without) its cuDNN backend inside the block; the previous setting comes back after."""
    previous = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(enabled)  # process-wide, so checkpoint recomputes in backward see it
    try:
        yield
    finally:
        torch.backends.cuda.enable_cudnn_sdp(previous)


def train_transfer(cfg: TrainTransferConfig, pipeline: Any | None = None) -> TrainTransferResult:
    """Train (or resume) the MegaStyle LoRA; ``pipeline`` may be an already loaded ``MegaStyleFluxPipeline``.

    A given pipeline is cast to ``base_dtype``; its transformer gets the adapter and keeps it; with the cache
    on, its encoders end on the CPU.
    """
    with cudnn_attention(cfg.cudnn_attention):
        return _train_transfer(cfg, pipeline)


def _train_transfer(cfg: TrainTransferConfig, pipeline: Any | None) -> TrainTransferResult:
    from accelerate import Accelerator

    probe = torch.device("cuda" if torch.cuda.is_available() and not cfg.cpu else "cpu")
    mixed, base_dtype = resolve_dtypes(cfg, probe)
    # cpu=True without a GPU too: only then does accelerate take torchrun's processes as one gloo group.
    accelerator = Accelerator(cpu=probe.type == "cpu", mixed_precision=mixed)
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    is_main = accelerator.is_main_process
    out = cfg.output_dir
    if is_main:  # one claim: two ranks at once would each see the other's marker being written
        claim_output_dir(out, "train-transfer", legacy=lambda f: (f / CHECKPOINTS).is_dir())
    accelerator.wait_for_everyone()
    if pipeline is None:
        if cfg.model is None:
            raise ConfigError("set model = <local FLUX folder>")
        pipeline = load_pipeline(cfg.model, base_dtype)
    pipeline.to(device=device, dtype=base_dtype)  # the frozen weights; the LoRA added next stays fp32
    transformer = pipeline.transformer
    add_lora(transformer, cfg)
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    vae_scale = pipeline.vae_scale_factor
    latent_h, latent_w = 2 * (cfg.height // (vae_scale * 2)), 2 * (cfg.width // (vae_scale * 2))
    guidance = cfg.guidance if transformer.config.guidance_embeds else None
    mu = dynamic_shift_mu(pipeline.scheduler.config, (latent_h // 2) * (latent_w // 2))

    from megastyle.data.collections import CollectionOptions, ensure_all_shards

    if not is_main:  # only the main process imports a source that is not shards; the others reuse it
        accelerator.wait_for_everyone()
    shards = ensure_all_shards(
        cfg.source,
        CollectionOptions.of(cfg),
        cache_root=out / "imported",
        progress=cfg.progress and is_main,
        report=_notice,
    )
    if is_main:
        accelerator.wait_for_everyone()
    data = load_rows(shards)
    images = RowImages(data)
    encoders = FluxEncoders(pipeline, cfg.height, cfg.width, cfg.max_sequence_length, dtype=base_dtype)
    rows = trainable_rows(data)
    cache: LatentCache | None = None
    if cfg.cache:
        cache = LatentCache(cfg.cache_dir or out / "cache", CacheSpec.for_run(cfg, pipeline, base_dtype))
        cache.fill(images, encoders, rows.tolist(), device, cfg.encode_batch_size, rank=rank, world=world)
        accelerator.wait_for_everyone()
        rows = trainable_rows(data, cache.bad_rows(images, rows.tolist()))
        for part in ("vae", "text_encoder", "text_encoder_2"):  # not needed again: free the accelerator
            getattr(pipeline, part).to("cpu")
    per_epoch = batches_per_epoch(len(rows), cfg.batch_size, world)
    if per_epoch == 0:
        raise ConfigError(
            f"{len(rows)} trainable rows: fewer than one global batch of {cfg.batch_size * world}"
        )
    total_steps = cfg.max_steps or cfg.epochs * per_epoch

    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, total_steps))
    noise_generator = torch.Generator().manual_seed(stream_seed(cfg.seed, rank, 0x5EED))
    torch.manual_seed(stream_seed(cfg.seed, rank, 0xD12))
    step, epoch, position = 0, 0, 0
    previous = latest_checkpoint(out) if cfg.resume else None
    if previous is not None:
        check_resume_key(previous, cfg.resume_key())
        state = load_checkpoint(previous, transformer, optimizer, scheduler, noise_generator, rank)
        step, epoch, position = state["step"], state["epoch"], state["position"]
        if is_main:  # the log ends where the checkpoint does: the steps after it are run again
            trim_jsonl_log(out / LOG_NAME, step)
    model = accelerator.prepare(transformer)

    def checkpoint() -> None:
        state = {"step": step, "epoch": epoch, "position": position, "resume_key": cfg.resume_key()}
        accelerator.wait_for_everyone()
        folder = out / CHECKPOINTS / f"step-{step:07d}"
        trained = accelerator.unwrap_model(model)
        save_checkpoint(folder, trained, optimizer, scheduler, noise_generator, state, rank, is_main)
        accelerator.wait_for_everyone()
        if is_main:
            prune_checkpoints(out, cfg.keep_checkpoints)

    last_loss: float | None = None
    started = time.perf_counter()
    with track("train-transfer", total_steps, enabled=cfg.progress and is_main, completed=step) as bar:
        while step < total_steps:
            batch_range = range(position, per_epoch)
            loader = epoch_loader(cfg, images, rows, cache, epoch, batch_range, rank, world)
            for batch in loader:
                x0, ref, embeds, pooled = batch_tensors(batch, encoders, device)
                sigmas = sample_sigmas(x0.shape[0], noise_generator, cfg, mu).to(device)
                noise = torch.randn(x0.shape, generator=noise_generator).to(device=device, dtype=x0.dtype)
                with accelerator.autocast():
                    loss = flow_matching_loss(
                        model, x0, ref, embeds, pooled, sigmas, noise, guidance, latent_h, latent_w
                    )
                accelerator.backward(loss)
                grad_norm = (
                    accelerator.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm else None
                )
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step, position, last_loss = step + 1, position + 1, float(loss.detach())
                if is_main and (step % cfg.log_every == 0 or step == total_steps):
                    seconds = (time.perf_counter() - started) / cfg.log_every
                    record = {"event": "step", "step": step, "epoch": epoch, "loss": last_loss}
                    record |= {
                        "lr": scheduler.get_last_lr()[0],
                        "samples_per_s": cfg.batch_size * world / seconds,
                    }
                    record["grad_norm"] = None if grad_norm is None else float(grad_norm)
                    with (out / LOG_NAME).open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(record) + "\n")
                    started = time.perf_counter()
                bar.update(step, note=f"loss {last_loss:.4f}")
                if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
                    checkpoint()
                if step >= total_steps:
                    break
            else:
                epoch, position = epoch + 1, 0
    checkpoint()
    files: dict[str, Path] = {}
    if is_main:
        trained = accelerator.unwrap_model(model)
        names = {"diffusers": DIFFUSERS_LORA_NAME, "kohya": KOHYA_LORA_NAME}
        files = {fmt: save_lora(trained, out / names[fmt], format=fmt) for fmt in cfg.save_formats}
        summary = {"steps": step, "final_loss": last_loss, "bad_rows": images.bad_rows}
        summary["files"] = {k: str(v) for k, v in files.items()}
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    return TrainTransferResult(out, files, step, last_loss)
