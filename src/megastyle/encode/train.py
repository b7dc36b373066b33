"""SSCL training of the style encoder (``megastyle train-encoder``) through accelerate.

One step: a P×K batch (this process's share) → image features (plain, or GradCache chunks) →
features gathered across processes *with* grad → ``SSCLLoss`` against the frozen text bank →
AdamW on the vision tower and the loss' scale/bias (warmup + cosine). Only the image tower and
the loss parameters train; the text tower never enters the optimizer and runs without grad.

Gradients with several processes: every process computes the same global loss L on the gathered
features; ``all_gather``'s backward sums the W identical contributions, so each process holds
W·∂L/∂θ over its own images and DDP's mean over processes gives exactly ∂L/∂θ.

Checkpoints (``encode.checkpoint``) hold only tensors and JSON, RNG states included, so a resumed
run takes exactly the steps an unbroken run takes.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from megastyle.checkpoints import check_resume_key
from megastyle.config import ConfigError
from megastyle.data import trim_jsonl_log
from megastyle.data.augment import AugmentConfig
from megastyle.data.folders import claim_output_dir
from megastyle.data.styles import (
    StyleRows,
    match_styles,
    read_holdout_file,
    scan_styles,
    select_holdout_styles,
    split_styles,
)
from megastyle.encode.checkpoint import (
    CHECKPOINTS,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from megastyle.encode.compiling import compile_layers
from megastyle.encode.data import StyleImageDataset, collate_style_batch, heldout_metrics, row_captions
from megastyle.encode.gradcache import GradCache
from megastyle.encode.losses import SSCLLoss, SSCLLossOutput
from megastyle.encode.model import StyleEncoder
from megastyle.encode.sampler import PKBatchSampler
from megastyle.encode.text_side import TextBank, TextTower, build_text_bank, load_text_tower
from megastyle.encode.train_config import TrainEncoderConfig
from megastyle.progress import track

LOG_NAME = "train_log.jsonl"
HELDOUT_NAME = "heldout_styles.json"
logger = logging.getLogger("megastyle")


def _notice(line: str) -> None:
    """An import's notice: on the terminal and in the log."""
    from rich.console import Console

    Console(stderr=True).print(line, highlight=False)
    logger.info(line)


@dataclass
class TrainResult:
    """Where the trained encoder went and how training went."""

    output_dir: Path
    encoder_dir: Path
    steps: int
    final_loss: float | None
    heldout_styles: list[str]
    evals: list[dict[str, Any]] = field(default_factory=list)


# ----- pieces ------------------------------------------------------------------------------------
def build_encoder(cfg: TrainEncoderConfig) -> StyleEncoder:
    """The encoder to train: a seeded tiny SigLIP tower, or a local pretrained folder."""
    if cfg.init == "tiny":
        vision = cfg.tiny.vision_config()
        encoder = StyleEncoder.from_vision_config(
            "siglip", vision, image_size=vision["image_size"], seed=cfg.seed
        )
        if cfg.tiny.crop_grid:
            crops = {"crop_grid": cfg.tiny.crop_grid, "crop_source_size": cfg.tiny.crop_source_size}
            encoder.set_preprocess(encoder.config.preprocess.model_copy(update=crops))
        return encoder
    return StyleEncoder.from_pretrained(cfg.init)


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float) -> Callable[[int], float]:
    """LR multiplier: linear 1/W … 1 over ``warmup_steps``, then cosine down to ``min_ratio``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def make_optimizer(encoder: StyleEncoder, loss_fn: SSCLLoss, cfg: TrainEncoderConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not norms, biases or the loss' scale/bias)."""
    decay = [p for p in encoder.vision_model.parameters() if p.ndim >= 2]
    no_decay = [p for p in encoder.vision_model.parameters() if p.ndim < 2]
    extra = [p for name, p in loss_fn.named_parameters() if name.startswith("text_projection")]
    scalars = [p for name, p in loss_fn.named_parameters() if not name.startswith("text_projection")]
    groups = [
        {"params": decay + extra, "weight_decay": cfg.weight_decay},
        {"params": no_decay + scalars, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.adam_betas, fused=torch.cuda.is_available())


def gather_with_grad(features: torch.Tensor, num_processes: int) -> torch.Tensor:
    """All processes' features in rank order, differentiable (identity for one process)."""
    if num_processes == 1:
        return features
    import torch.distributed.nn.functional as dist_fn

    return torch.cat(dist_fn.all_gather(features.contiguous()), dim=0)


# ----- data split --------------------------------------------------------------------------------
def source_shards(cfg: TrainEncoderConfig, progress: bool = True) -> list[Path]:
    """The shard folders of ``cfg.source``: shards as they are, other forms imported under output_dir/imported."""
    from megastyle.data.collections import CollectionOptions, ensure_all_shards

    return ensure_all_shards(
        cfg.source,
        CollectionOptions.of(cfg),
        cache_root=cfg.output_dir / "imported",
        progress=progress,
        report=_notice,
    )


def resolve_split(
    cfg: TrainEncoderConfig, shards: list[Path] | None = None
) -> tuple[StyleRows, StyleRows, list[str]]:
    """(training rows, held-out rows, held-out style texts) per the file and the seeded fraction."""
    data = scan_styles(shards if shards is not None else source_shards(cfg, progress=False))
    heldout: set[str] = set()
    if cfg.holdout_styles_file is not None:
        heldout, unmatched = match_styles(read_holdout_file(cfg.holdout_styles_file), data)
        if not heldout:
            raise ConfigError(
                f"no style in {cfg.holdout_styles_file} matches the training data ({len(unmatched)} entries)"
            )
    remaining = [s for s in data.styles if s not in heldout]
    heldout.update(select_holdout_styles(remaining, cfg.holdout_fraction, cfg.seed))
    train_rows, heldout_rows = split_styles(data, heldout)
    if len(train_rows.styles) < cfg.styles_per_batch:
        raise ConfigError(
            f"{len(train_rows.styles)} training styles, fewer than styles_per_batch = {cfg.styles_per_batch}"
        )
    return train_rows, heldout_rows, sorted(heldout)


# ----- the loop ----------------------------------------------------------------------------------
class SSCLTrainer:
    """One training run: everything built from the config, then ``run()`` (resumes when it can)."""

    def __init__(self, cfg: TrainEncoderConfig) -> None:
        from accelerate import Accelerator

        mixed = cfg.mixed_precision
        if mixed == "auto":
            mixed = "bf16" if torch.cuda.is_available() and not cfg.cpu else "no"
        self.cfg = cfg
        # cpu=True without a GPU too: only then does accelerate take torchrun's processes as one gloo group.
        on_cpu = cfg.cpu or not torch.cuda.is_available()
        self.accelerator = accelerator = Accelerator(cpu=on_cpu, mixed_precision=mixed)
        self.rank, self.world = accelerator.process_index, accelerator.num_processes
        self.is_main = accelerator.is_main_process
        self.out = out = cfg.output_dir
        if self.is_main:  # one claim: two ranks at once would each see the other's marker being written
            claim_output_dir(out, "train-encoder", legacy=lambda f: (f / CHECKPOINTS).is_dir())

        # Only the main process claims the folder and imports a source that is not shards; the others
        # wait and reuse it.
        if not self.is_main:
            accelerator.wait_for_everyone()
        shards = source_shards(cfg, progress=cfg.progress and self.is_main)
        if self.is_main:
            accelerator.wait_for_everyone()
        train_rows, heldout_rows, self.heldout = resolve_split(cfg, shards)
        if self.is_main:
            payload = {"heldout_styles": self.heldout, "seed": cfg.seed}
            (out / HELDOUT_NAME).write_text(json.dumps(payload, indent=2))
        torch.manual_seed(cfg.seed + self.rank)
        np.random.seed(cfg.seed + self.rank)
        random.seed(cfg.seed + self.rank)

        self.device = device = accelerator.device
        # On the device before the optimizer exists, so loaded optimizer state lands there too.
        self.encoder = build_encoder(cfg).train().to(device)
        if cfg.compile:  # in place: parameter names, checkpoints and exports stay those of the plain tower
            compile_layers(self.encoder.vision_model)
        self.bank: TextBank | None = None
        self._tower: TextTower | None = None
        if cfg.siglip_weight > 0:
            # Caption targets: one text per training row, and each image's label is its row.
            texts = row_captions(train_rows) if cfg.text_target == "caption" else train_rows.styles
            self.bank = build_text_bank(self._text_tower(), texts, cache_dir=out / "cache").to(device)
        # The loss' own weights (scale, bias, text bridge) live outside DDP: every rank computes the same
        # full-batch loss, so they stay equal only if they start equal, from the run's seed, not the rank's.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.loss_fn = SSCLLoss(
                supcon_weight=cfg.supcon_weight,
                siglip_weight=cfg.siglip_weight,
                temperature=cfg.temperature,
                base_temperature=cfg.base_temperature,
                image_dim=self.encoder.dim,
                text_dim=self.bank.dim if self.bank is not None else None,
            ).to(device)

        cache = cfg.cache_images == "on" or (
            cfg.cache_images == "auto" and len(train_rows) <= cfg.cache_images_max_rows
        )
        preprocess = self.encoder.config.preprocess
        augment = None
        if cfg.augment:  # multi-crop encoders train on single native crops at the grid's scale
            augment = AugmentConfig(
                crop_scale=(cfg.crop_scale_min, 1.0),
                crop="native" if preprocess.crop_grid else "resized",
                native_size=preprocess.image_size,
                native_zoom=cfg.native_zoom,
            )
        self.dataset = StyleImageDataset(
            train_rows,
            preprocess,
            augment=augment,
            cache_images=cache,
            label_rows=cfg.text_target == "caption",
        )
        self.heldout_set = (
            StyleImageDataset(heldout_rows, preprocess, cache_images=cache) if self.heldout else None
        )
        self.sampler = PKBatchSampler(
            train_rows.labels,
            cfg.styles_per_batch,
            cfg.images_per_style,
            seed=cfg.seed,
            small_styles=cfg.small_styles,
            world_size=self.world,
            rank=self.rank,
            style_embeddings=self._style_embeddings(train_rows) if cfg.neighbour_share > 0 else None,
            neighbour_share=cfg.neighbour_share,
        )
        self.total_steps = cfg.max_steps or sum(len(self.sampler.epoch_batches(e)) for e in range(cfg.epochs))

        self.optimizer = make_optimizer(self.encoder, self.loss_fn, cfg)
        warmup = math.ceil(cfg.warmup_ratio * self.total_steps)
        schedule = warmup_cosine(self.total_steps, warmup, cfg.min_lr_ratio)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.step, self.epoch, self.position = 0, 0, 0
        self.evals: list[dict[str, Any]] = []
        self.resumed_from = self._resume() if cfg.resume else None

        self.model = model = accelerator.prepare(self.encoder)
        self.params = [*self.encoder.vision_model.parameters(), *self.loss_fn.parameters()]
        self.cacher: GradCache | None = None
        if cfg.chunk_size:
            # The batch stays on the host (pinned); each chunk moves to the device when it is
            # encoded, so device memory holds one chunk of pixels, not the whole batch.
            self.cacher = GradCache(
                lambda chunk: model(chunk.to(device, non_blocking=True)),
                cfg.chunk_size,
                no_sync=lambda: accelerator.no_sync(model),
            )

    def _text_tower(self) -> TextTower:
        """The frozen text tower, loaded once: the SigLIP loss's targets and the neighbour batches' styles."""
        if self._tower is None:
            cfg = self.cfg
            init = None if cfg.init == "tiny" else cfg.init
            self._tower = load_text_tower(cfg.text_tower, text_model_path=cfg.text_model_path, init_path=init)
        return self._tower

    def _style_embeddings(self, train_rows: StyleRows) -> np.ndarray:
        """The style prompts' text embeddings (row = label) that neighbour batches are built from."""
        if self.bank is not None and self.cfg.text_target == "style":
            return self.bank.embeddings.cpu().numpy()
        bank = build_text_bank(self._text_tower(), train_rows.styles, cache_dir=self.out / "cache")
        return bank.embeddings.numpy()

    def _resume(self) -> Path | None:
        previous = latest_checkpoint(self.out)
        if previous is None:
            return None
        check_resume_key(previous, self.cfg.resume_key())
        state = load_checkpoint(
            previous,
            encoder=self.encoder,
            loss_fn=self.loss_fn,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            rank=self.rank,
        )
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        if self.is_main:  # the log ends where the checkpoint does: the steps after it are run again
            kept = trim_jsonl_log(self.out / LOG_NAME, self.step)
            self.evals = [record for record in kept if record.get("event") == "eval"]
        return previous

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON line to the run's log (main process only)."""
        if self.is_main:
            with (self.out / LOG_NAME).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def evaluate(self) -> None:
        """Held-out retrieval metrics of the current encoder, logged and kept."""
        if self.heldout_set is None or not self.is_main:
            return
        encoder = self.accelerator.unwrap_model(self.model)
        metrics = heldout_metrics(encoder, self.heldout_set, max_images=self.cfg.eval_max_images)
        record = {"event": "eval", "step": self.step, **metrics}
        self.evals.append(record)
        self.log(record)

    def checkpoint(self) -> None:
        """Save the full training state at the current step; keep the newest few."""
        state = {"step": self.step, "epoch": self.epoch, "position": self.position}
        state |= {"total_steps": self.total_steps, "resume_key": self.cfg.resume_key()}
        self.accelerator.wait_for_everyone()
        save_checkpoint(
            self.out / CHECKPOINTS / f"step-{self.step:07d}",
            encoder=self.accelerator.unwrap_model(self.model),
            loss_fn=self.loss_fn,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            trainer_state=state,
            rank=self.rank,
            is_main=self.is_main,
        )
        self.accelerator.wait_for_everyone()
        if self.is_main:
            prune_checkpoints(self.out, self.cfg.keep_checkpoints)

    def train_step(self, pixels: torch.Tensor, labels: torch.Tensor) -> tuple[SSCLLossOutput, float | None]:
        """One optimizer step on this process's share of a batch; returns the loss and grad norm."""
        labels = labels.to(self.device)
        labels_all = self.accelerator.gather(labels) if self.world > 1 else labels
        text = self.bank.lookup(labels_all) if self.bank is not None else None

        def loss_of(local: torch.Tensor) -> SSCLLossOutput:
            return self.loss_fn(gather_with_grad(local, self.world), labels_all, text)

        if self.cacher is not None:
            output: SSCLLossOutput = self.cacher.step(pixels, loss_of).loss_output
        else:
            output = loss_of(self.model(pixels.to(self.device, non_blocking=True)))
            output.loss.backward()
        grad_norm = None
        if self.cfg.max_grad_norm:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.cfg.max_grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return output, grad_norm

    def _log_step(self, output: SSCLLossOutput, grad_norm: float | None, seconds: float) -> None:
        self.log(
            {
                "event": "step",
                "step": self.step,
                "epoch": self.epoch,
                "loss": float(output.loss.detach()),
                "supcon": float(output.supcon),
                "siglip": float(output.siglip),
                "lr": self.scheduler.get_last_lr()[0],
                "logit_scale": self.loss_fn.logit_scale.detach().exp().item(),
                "logit_bias": self.loss_fn.logit_bias.detach().item(),
                "grad_norm": grad_norm,
                "images_per_s": self.sampler.batch_size / seconds,
            }
        )

    def run(self) -> TrainResult:
        """Train to ``total_steps`` (from the resumed step), save and return the result."""
        cfg = self.cfg
        if self.step == 0:
            self.evaluate()
        last_loss: float | None = None
        enabled = cfg.progress and self.is_main
        with track("train-encoder", self.total_steps, enabled=enabled, completed=self.step) as progress:
            while self.step < self.total_steps:
                # Consumed-batch position, not the sampler's own: the loader prefetches ahead.
                self.sampler.load_state_dict(
                    {"epoch": self.epoch, "position": self.position, "seed": cfg.seed}
                )
                loader = torch.utils.data.DataLoader(
                    self.dataset,
                    batch_sampler=self.sampler,
                    num_workers=cfg.num_workers,
                    collate_fn=collate_style_batch,
                    pin_memory=self.device.type == "cuda",
                    # Its own generator: the loader's base-seed draw would move the global RNG (dropout),
                    # and a resumed run makes one loader more than the unbroken run. Augmentations take
                    # their seeds from the sampler, so the base seed decides nothing.
                    generator=torch.Generator().manual_seed(cfg.seed),
                )
                started = time.perf_counter()
                for pixels, labels in loader:
                    output, grad_norm = self.train_step(pixels, labels)
                    self.step, self.position = self.step + 1, self.position + 1
                    last_loss = float(output.loss.detach())
                    if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                        self._log_step(output, grad_norm, (time.perf_counter() - started) / cfg.log_every)
                    progress.update(self.step, note=f"loss {last_loss:.3f}")
                    mid_run = self.step < self.total_steps
                    if cfg.eval_every and self.step % cfg.eval_every == 0 and mid_run:
                        self.evaluate()
                    if cfg.save_every and self.step % cfg.save_every == 0 and mid_run:
                        self.checkpoint()
                    if not mid_run:
                        break
                    started = time.perf_counter()
                else:
                    self.epoch, self.position = self.epoch + 1, 0
        self.checkpoint()
        self.evaluate()
        return self._finish(last_loss)

    def _finish(self, last_loss: float | None) -> TrainResult:
        from safetensors.torch import save_file

        encoder_dir = self.out / "encoder"
        if self.is_main:
            self.accelerator.unwrap_model(self.model).save_pretrained(encoder_dir)
            weights = {k: v.contiguous() for k, v in self.loss_fn.state_dict().items()}
            save_file(weights, str(self.out / "sscl_loss.safetensors"))
            summary = {"steps": self.step, "final_loss": last_loss, "heldout_styles": len(self.heldout)}
            summary["evals"] = self.evals
            (self.out / "train_summary.json").write_text(json.dumps(summary, indent=2))
        self.accelerator.wait_for_everyone()
        return TrainResult(self.out, encoder_dir, self.step, last_loss, self.heldout, self.evals)


def train_encoder(cfg: TrainEncoderConfig) -> TrainResult:
    """Run (or resume) SSCL training and save the encoder to ``output_dir/encoder``."""
    return SSCLTrainer(cfg).run()
