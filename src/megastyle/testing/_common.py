"""Shared helpers for the tiny-model builders: seeded construction and output directories."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator inside the block and restore the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def output_dir(path: str | os.PathLike[str]) -> Path:
    """Create (if needed) and return ``path`` as an absolute ``Path``."""
    out = Path(path).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def round_up(value: int, multiple: int = 64) -> int:
    """Round ``value`` up to a multiple of ``multiple`` (embedding sizes)."""
    return -(-value // multiple) * multiple
