"""Encoder-training checkpoints: tensors and JSON only, so a resumed run takes exactly the unbroken run's steps.

A checkpoint (``checkpoints/step-NNNNNNN/``) holds the encoder and loss weights (safetensors), the
optimizer state (``torch.save`` of tensors/numbers, read back with ``weights_only=True``), the
scheduler state and trainer position (JSON), and each process's torch/numpy/python RNG states.
``trainer_state.json`` is written last and marks the checkpoint complete.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from megastyle.checkpoints import (
    CHECKPOINTS,
    latest_checkpoint,
    load_optimizer_state,
    prune_checkpoints,
    restore_torch_rng_states,
    save_optimizer_state,
    torch_rng_states,
)
from megastyle.data import atomic_write_json
from megastyle.encode.losses import SSCLLoss
from megastyle.encode.model import StyleEncoder


def _rng_states() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = torch_rng_states()
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    json_state = {
        "numpy": [name, keys.tolist(), pos, has_gauss, gauss],
        "python": [version, list(internal), python_gauss],
    }
    return tensors, json_state


def _set_rng_states(tensors: dict[str, torch.Tensor], json_state: dict[str, Any]) -> None:
    restore_torch_rng_states(tensors)
    name, keys, pos, has_gauss, gauss = json_state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, python_gauss = json_state["python"]
    random.setstate((version, tuple(internal), python_gauss))


def save_checkpoint(
    folder: Path,
    *,
    encoder: StyleEncoder,
    loss_fn: SSCLLoss,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    trainer_state: dict[str, Any],
    rank: int,
    is_main: bool,
) -> None:
    """Write one checkpoint; ``trainer_state.json`` goes last and marks it complete."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors, json_state = _rng_states()
    save_file(tensors, str(folder / f"rng-rank{rank}.safetensors"))
    (folder / f"rng-rank{rank}.json").write_text(json.dumps(json_state))
    if not is_main:
        return
    save_file(
        {k: v.contiguous() for k, v in encoder.state_dict().items()}, str(folder / "encoder.safetensors")
    )
    save_file({k: v.contiguous() for k, v in loss_fn.state_dict().items()}, str(folder / "loss.safetensors"))
    save_optimizer_state(folder, optimizer, scheduler)
    atomic_write_json(folder / "trainer_state.json", trainer_state)  # the marker: whole or absent


def load_checkpoint(
    folder: Path,
    *,
    encoder: StyleEncoder,
    loss_fn: SSCLLoss,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    rank: int,
) -> dict[str, Any]:
    """Restore everything ``save_checkpoint`` wrote; returns the trainer state."""
    from safetensors.torch import load_file

    encoder.load_state_dict(load_file(str(folder / "encoder.safetensors")))
    loss_fn.load_state_dict(load_file(str(folder / "loss.safetensors")))
    load_optimizer_state(folder, optimizer, scheduler)
    rng_file = folder / f"rng-rank{rank}.safetensors"
    if rng_file.is_file():  # a run resumed on more processes than it saved from starts fresh streams
        _set_rng_states(load_file(str(rng_file)), json.loads((folder / f"rng-rank{rank}.json").read_text()))
    return json.loads((folder / "trainer_state.json").read_text())


__all__ = ["CHECKPOINTS", "latest_checkpoint", "load_checkpoint", "prune_checkpoints", "save_checkpoint"]
