"""State dicts read safely and matched to a tower: ``.safetensors`` first, ``.pth`` with ``weights_only=True``.

Keys are canonicalised across the wrappers training code puts around a tower (DDP, torch.compile,
checkpoint dicts, HF layouts), and every load reports what it placed and what it could not.
"""

from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

# Wrappers that training code puts around a tower's keys: DDP, torch.compile, checkpoint dicts, HF layouts.
WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "model.", "vision_model.", "vision_tower.")


@dataclass
class LoadReport:
    """What a state-dict load placed and what it could not (never silently dropped)."""

    source: str
    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "key: checkpoint shape vs model shape"
    stripped_prefixes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every model weight was loaded and nothing was left over."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        """One paragraph for logs and the CLI."""
        parts = [f"{self.source}: loaded {self.loaded} tensors"]
        if self.stripped_prefixes:
            parts.append(f"stripped prefixes {sorted(set(self.stripped_prefixes))}")
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                shown = ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
                parts.append(f"{len(keys)} {name} ({shown})")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} shape mismatches ({'; '.join(self.mismatched[:4])})")
        return "; ".join(parts)


class StateDictLoadError(ValueError):
    """A strict load found missing, unexpected or mis-shaped keys; carries the report."""

    def __init__(self, report: LoadReport) -> None:
        self.report = report
        super().__init__(f"state dict does not match the encoder: {report.summary()}")


def canonical_key(key: str) -> tuple[str, list[str]]:
    """Strip wrapper prefixes (``module.``, ``vision_model.`` ...) from a key; returns (key, stripped)."""
    stripped: list[str] = []
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                stripped.append(prefix)
                changed = True
    return key, stripped


class OfficialCheckpointError(ValueError):
    """The checkpoint file cannot be read as a state dict; names the file and the cause."""


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (torch's carry pages of advice after it)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``.pth``/``.pt``/``.bin`` (torch, weights only) or ``.safetensors`` file into a dict."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{file}: checkpoint file does not exist")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(file)))
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise OfficialCheckpointError(f"{file}: not a readable safetensors file ({exc})") from exc
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before it refuses them
            warnings.simplefilter("ignore")
            data = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler met something other than tensors
        raise OfficialCheckpointError(
            f"{file}: refused: contains non-tensor objects (pickle); only tensors are ever loaded, never code"
        ) from exc
    except Exception as exc:  # truncated zips, text files, other formats
        raise OfficialCheckpointError(
            f"{file}: not a readable PyTorch weights file ({type(exc).__name__}: {_first_line(exc)})"
        ) from exc
    if not isinstance(data, Mapping):
        raise OfficialCheckpointError(f"{file}: expected a state dict, found {type(data).__name__}")
    return dict(data)


def unwrap_state_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """Take ``data["model"]`` (or ``"state_dict"``) when the tensors sit under it, else ``data`` itself."""
    for key in ("model", "state_dict"):
        inner = data.get(key)
        if isinstance(inner, Mapping):
            return dict(inner)
    return dict(data)
