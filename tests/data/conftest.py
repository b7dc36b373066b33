"""Small in-memory images and records shared by the dataset-layer tests."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from megastyle.data import StyleRecord, make_id


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (16, 16)) -> bytes:
    """A solid-colour RGB PNG with one differing pixel (so images are not all alike)."""
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    pixels[:] = color
    pixels[0, 0] = (color[0] ^ 0xFF, color[1], color[2])
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def style_text(style_id: int) -> str:
    return f"style number {style_id}: thick impasto oil, warm ochre palette, soft rim light " + "x" * style_id


def make_record(style_id: int, content_id: int, *, size: tuple[int, int] = (16, 16)) -> StyleRecord:
    rid = make_id(style_id, content_id)
    return StyleRecord(
        id=rid,
        image=png_bytes(((style_id * 37) % 256, (content_id * 11) % 256, 90), size),
        image_path=f"{rid}.png",
        style=style_text(style_id),
        content=f"a lighthouse on a cliff, view {content_id}",
        style_id=style_id,
        content_id=content_id,
        style_attributes=json.dumps({"medium": "oil", "lighting": "rim"}),
        backend="procedural",
        seed=1000 + style_id * 100 + content_id,
    )


@pytest.fixture
def record_factory() -> Callable[..., StyleRecord]:
    return make_record


@pytest.fixture
def png_factory() -> Callable[..., bytes]:
    return png_bytes


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A syntactically valid PNG whose header claims width x height; the pixels are never there."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _chunk(b"IEND", b"")
    )


@pytest.fixture
def huge_png() -> bytes:
    return huge_png_header()
