"""Which device a command runs on: ``auto`` is CUDA when there is one, else the CPU."""

from __future__ import annotations


def resolve_device(name: str) -> str:
    """'auto' → cuda when available, else cpu; any other name is returned as given."""
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name
