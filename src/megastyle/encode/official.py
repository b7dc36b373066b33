"""The official ``megastyle_encoder.pth`` (a SigLIP vision state dict, bare or under ``"model"``) and the
official ``style_score.py``'s way of opening images.

Read safely (``weights_only=True``; ``.safetensors`` through safetensors) onto a local SigLIP folder that
supplies the architecture (so400m-patch14-384 for the release), with every missing/unexpected key reported.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from PIL import Image

from megastyle.data import ImageDecodeError, probe_image
from megastyle.encode.model import StyleEncoder
from megastyle.encode.state_dict import (
    LoadReport,
    OfficialCheckpointError,
    StateDictLoadError,
    read_state_dict,
    unwrap_state_dict,
)


def load_official_encoder(
    pth_path: str | os.PathLike[str],
    base_model_path: str | os.PathLike[str],
    *,
    strict: bool = False,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[StyleEncoder, LoadReport]:
    """Build the encoder from the local SigLIP/CLIP folder ``base_model_path`` and load ``pth_path`` on it.

    With ``strict=False`` (the official script's setting) the report lists what did not match; a load
    that placed no tensor at all raises, because it would score with the base model's weights.
    """
    encoder = StyleEncoder.from_pretrained(base_model_path)
    state_dict = unwrap_state_dict(read_state_dict(pth_path))
    report = encoder.load_official_state_dict(state_dict, strict=strict, source=str(pth_path))
    if report.loaded == 0:
        raise StateDictLoadError(report)
    if device is not None or dtype is not None:
        encoder.to(device=device, dtype=dtype)
    return encoder.eval(), report


def open_like_official(path: Path) -> Image.Image:
    """``Image.open(path).convert("RGB")`` as style_score.py does (no EXIF rotation, alpha dropped), size-guarded."""
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    data = path.read_bytes()
    try:
        probe_image(data, item=str(path))  # refuses decompression bombs before decoding
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except ImageDecodeError:
        raise
    except Exception as err:  # PIL raises many types on corrupt files
        raise ImageDecodeError(f"{type(err).__name__}: {err}", item=str(path)) from err


__all__ = [
    "LoadReport",
    "OfficialCheckpointError",
    "StateDictLoadError",
    "load_official_encoder",
    "open_like_official",
    "read_state_dict",
]
