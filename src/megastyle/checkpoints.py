"""Checkpoint folders shared by the trainers: ``output_dir/checkpoints/step-NNNNNNN/``, complete when
``trainer_state.json`` exists (each trainer writes it last)."""

from __future__ import annotations

import shutil
from pathlib import Path

CHECKPOINTS = "checkpoints"


def completed_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    return sorted(p.parent for p in (output_dir / CHECKPOINTS).glob("step-*/trainer_state.json"))


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint folder, if any."""
    done = completed_checkpoints(output_dir)
    return done[-1] if done else None


def prune_checkpoints(output_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints."""
    for old in completed_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
