"""Checkpoint folders shared by the trainers: ``output_dir/checkpoints/step-NNNNNNN/``, complete when
``trainer_state.json`` exists (each trainer writes it last), and what both trainers save alike: the
optimizer and scheduler states and the torch RNG states."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from megastyle.config import ConfigError

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
        # Unmark first: a kill in the middle of the delete leaves an incomplete folder, never a false one.
        (old / "trainer_state.json").unlink(missing_ok=True)
        shutil.rmtree(old, ignore_errors=True)


def save_optimizer_state(folder: Path, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
    """Write the optimizer's state (``optimizer.pt``, tensors only) and the scheduler's (``scheduler.json``)."""
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    (folder / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))


def load_optimizer_state(folder: Path, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
    """Restore what ``save_optimizer_state`` wrote; the optimizer file is never unpickled."""
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True, map_location="cpu"))
    scheduler.load_state_dict(json.loads((folder / "scheduler.json").read_text()))


def torch_rng_states() -> dict[str, torch.Tensor]:
    """The CPU generator's state and, where CUDA is present, each device's (``torch_cpu``, ``torch_cuda_N``)."""
    states = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states |= {f"torch_cuda_{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())}
    return states


def restore_torch_rng_states(states: dict[str, torch.Tensor]) -> None:
    """Put back what ``torch_rng_states`` saved; the CUDA states only where CUDA is present."""
    torch.set_rng_state(states["torch_cpu"])
    # In device order as numbers: as strings torch_cuda_10 would sort before torch_cuda_2.
    cuda = sorted((k for k in states if k.startswith("torch_cuda_")), key=lambda k: int(k.rpartition("_")[2]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([states[k] for k in cuda])


def check_resume_key(checkpoint: Path, resume_key: dict[str, Any]) -> None:
    """Refuse to resume ``checkpoint`` unless its saved ``resume_key`` equals this run's, naming what differs."""
    saved = json.loads((checkpoint / "trainer_state.json").read_text()).get("resume_key", {})
    if saved != resume_key:
        differing = sorted(k for k in saved.keys() | resume_key.keys() if saved.get(k) != resume_key.get(k))
        raise ConfigError(f"{checkpoint} was written with other settings {differing}; set resume = false")
