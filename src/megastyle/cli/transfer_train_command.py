"""``megastyle train-transfer``: MegaStyle-FLUX LoRA training on paired rows of MegaStyle shards."""

from __future__ import annotations

import typer
from rich.console import Console

from megastyle.cli.common import config_command
from megastyle.transfer.train_config import TrainTransferConfig

console = Console()


def run_train_transfer(cfg: TrainTransferConfig) -> None:
    """Train (or resume), then print where the LoRA files went."""
    from megastyle.transfer.train import train_transfer

    alpha = cfg.alpha
    console.print(
        f"train-transfer: LoRA rank {cfg.rank} (alpha {alpha:g}) on {len(cfg.target_modules)} module patterns, "
        f"{cfg.height}x{cfg.width}, batch {cfg.batch_size}/process, σ sampling {cfg.timestep_sampling}, "
        f"cache {'on' if cfg.cache else 'off'}"
    )
    result = train_transfer(cfg)
    console.print(f"{result.steps} steps, final loss {result.final_loss}")
    for fmt, path in result.lora_files.items():
        console.print(f"  {fmt} LoRA: {path}")


def register(app: typer.Typer) -> None:
    """Add ``train-transfer`` to ``app``."""
    config_command(
        app,
        "train-transfer",
        TrainTransferConfig,
        "Train a MegaStyle-FLUX LoRA (paired style references, flow matching on the target tokens).",
    )(run_train_transfer)
