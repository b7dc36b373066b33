"""``megastyle train-encoder``: SSCL training of the style encoder on MegaStyle shards."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from megastyle.cli.common import config_command
from megastyle.encode.train_config import TrainEncoderConfig

console = Console()


def run_train_encoder(cfg: TrainEncoderConfig) -> None:
    """Train (or resume), then print where the encoder went and the held-out evaluation."""
    from megastyle.encode.train import train_encoder

    console.print(
        f"train-encoder: P={cfg.styles_per_batch} styles × K={cfg.images_per_style} images = batch "
        f"{cfg.batch_size}, chunk {cfg.chunk_size or 'off'}, init {cfg.init}"
    )
    result = train_encoder(cfg)
    console.print(
        f"{result.steps} steps, final loss {result.final_loss}; encoder saved to {result.encoder_dir}"
    )
    if result.evals:
        table = Table(title=f"held-out styles ({len(result.heldout_styles)})")
        for column in ("step", "recall@1", "same-style cos", "other-style cos"):
            table.add_column(column, justify="right")
        for row in result.evals:
            table.add_row(
                str(row["step"]),
                f"{row['recall_at_1']:.3f}",
                f"{row['same_style_cosine']:.3f}",
                f"{row['other_style_cosine']:.3f}",
            )
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``train-encoder`` to ``app``."""
    config_command(
        app,
        "train-encoder",
        TrainEncoderConfig,
        "Train the MegaStyle style encoder (SupCon + SigLIP loss, P×K batches, gradient caching).",
    )(run_train_encoder)
