"""Compare the safetensors weights of saved model directories (determinism checks)."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def load_weights(directory: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Every tensor of every ``*.safetensors`` file under ``directory``, keyed ``relative/path:tensor``."""
    from safetensors.torch import load_file

    root = Path(directory)
    weights: dict[str, torch.Tensor] = {}
    for file in sorted(root.rglob("*.safetensors")):
        for name, tensor in load_file(file).items():
            weights[f"{file.relative_to(root).as_posix()}:{name}"] = tensor
    return weights


def assert_same_weights(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> None:
    """Raise ``AssertionError`` unless both directories hold the same tensors, bit for bit."""
    wa, wb = load_weights(a), load_weights(b)
    if not wa:
        raise AssertionError(f"no safetensors weights under {a}")
    if wa.keys() != wb.keys():
        raise AssertionError(f"tensor names differ: {sorted(wa.keys() ^ wb.keys())[:5]}")
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    if different:
        raise AssertionError(f"{len(different)} tensors differ, e.g. {different[:5]}")


def assert_different_weights(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> None:
    """Raise ``AssertionError`` if the two directories hold identical tensors (e.g. seeds ignored)."""
    wa, wb = load_weights(a), load_weights(b)
    if not wa or wa.keys() != wb.keys():
        raise AssertionError("directories do not hold the same set of tensors")
    if all(torch.equal(wa[k], wb[k]) for k in wa):
        raise AssertionError("weights are identical")
