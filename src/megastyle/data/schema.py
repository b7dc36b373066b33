"""Row model and Parquet schema of MegaStyle shards (the official release layout plus our extras)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from PIL import Image

from megastyle.data.images import DEFAULT_MAX_PIXELS, decode_image

# Columns of the released tencent/MegaStyle-1.4M shards, in file order. Readers require them;
# every other column is ours and optional.
OFFICIAL_COLUMNS: tuple[str, ...] = ("id", "image", "content", "style")
EXTRA_COLUMNS: tuple[str, ...] = ("style_id", "content_id", "style_attributes", "backend", "seed")
ALL_COLUMNS: tuple[str, ...] = OFFICIAL_COLUMNS + EXTRA_COLUMNS

# The Hugging Face `datasets` Image feature is stored as exactly this struct.
IMAGE_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])

_ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "image": IMAGE_TYPE,
    "content": pa.string(),
    "style": pa.string(),
    "style_id": pa.int64(),
    "content_id": pa.int64(),
    "style_attributes": pa.string(),
    "backend": pa.string(),
    "seed": pa.int64(),
}

# `datasets` feature dicts (same JSON that `Features.to_dict()` produces), so that
# `load_dataset("parquet", ...)` decodes `image` to a PIL image. Written by hand because
# `datasets` is only a dev dependency.
_HF_FEATURES: dict[str, dict[str, str]] = {
    "id": {"dtype": "string", "_type": "Value"},
    "image": {"_type": "Image"},
    "content": {"dtype": "string", "_type": "Value"},
    "style": {"dtype": "string", "_type": "Value"},
    "style_id": {"dtype": "int64", "_type": "Value"},
    "content_id": {"dtype": "int64", "_type": "Value"},
    "style_attributes": {"dtype": "string", "_type": "Value"},
    "backend": {"dtype": "string", "_type": "Value"},
    "seed": {"dtype": "int64", "_type": "Value"},
}

_ID_RE = re.compile(r"^s(\d+)_c(\d+)$")
_INT64_MAX = 2**63 - 1


@dataclass
class StyleRecord:
    """One dataset row: an image generated from a (style, content) prompt pair."""

    id: str
    image: bytes  # encoded image (PNG in the release)
    style: str
    content: str
    image_path: str | None = None
    style_id: int | None = None
    content_id: int | None = None
    style_attributes: str | None = None  # JSON of the structured style attributes
    backend: str | None = None  # generator that produced the image, e.g. "procedural"
    seed: int | None = None

    def pil_image(self, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
        """Decode ``image`` to RGB (raises ImageDecodeError naming this row)."""
        return decode_image(self.image, item=self.id, max_pixels=max_pixels)


def make_id(style_id: int, content_id: int) -> str:
    """Build the release row id ``s{style}_c{content}``."""
    for name, value in (("style_id", style_id), ("content_id", content_id)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return f"s{style_id}_c{content_id}"


def parse_id(row_id: str) -> tuple[int, int]:
    """Split a row id ``s{style}_c{content}`` into ``(style_id, content_id)``."""
    match = _ID_RE.match(row_id) if isinstance(row_id, str) else None
    if match is None:
        raise ValueError(f"not a MegaStyle row id (expected 's<style>_c<content>'): {row_id!r}")
    return int(match.group(1)), int(match.group(2))


def hf_metadata(columns: tuple[str, ...] | list[str] = ALL_COLUMNS) -> dict[str, str]:
    """Return the Parquet schema metadata that makes `datasets` read ``image`` as an Image feature."""
    features = {name: _HF_FEATURES[name] for name in columns}
    return {"huggingface": json.dumps({"info": {"features": features}})}


def arrow_schema(columns: tuple[str, ...] | list[str] = ALL_COLUMNS) -> pa.Schema:
    """Return the Arrow schema for ``columns`` (all nullable, as `datasets` expects), with HF metadata."""
    unknown = [c for c in columns if c not in _ARROW_TYPES]
    if unknown:
        raise ValueError(f"unknown columns {unknown}; known: {list(ALL_COLUMNS)}")
    # Nullable everywhere: `datasets` only trusts its metadata for a field equal to the one it
    # would build itself, and it builds nullable fields.
    schema = pa.schema([pa.field(name, _ARROW_TYPES[name], nullable=True) for name in columns])
    return schema.with_metadata(hf_metadata(columns))


def validate_record(record: StyleRecord) -> None:
    """Raise ValueError if ``record`` has a missing or wrongly typed field (no image decoding)."""
    if not isinstance(record, StyleRecord):
        raise ValueError(f"expected StyleRecord, got {type(record).__name__}")
    if not isinstance(record.id, str) or not record.id:
        raise ValueError(f"id must be a non-empty string, got {record.id!r}")
    if not isinstance(record.image, bytes | bytearray | memoryview) or len(record.image) == 0:
        raise ValueError("image must be non-empty bytes")
    for name in ("style", "content"):
        if not isinstance(getattr(record, name), str):
            raise ValueError(f"{name} must be a string")
    for name in ("image_path", "style_attributes", "backend"):
        value = getattr(record, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or None")
    for name in ("style_id", "content_id", "seed"):
        value = getattr(record, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT64_MAX:
            raise ValueError(f"{name} must be an int in [0, 2**63), got {value!r}")
    if record.style_attributes is not None:
        try:
            json.loads(record.style_attributes)
        except json.JSONDecodeError as exc:
            raise ValueError(f"style_attributes is not valid JSON: {exc}") from None


def record_to_row(record: StyleRecord) -> dict[str, Any]:
    """Convert a record to a row dict matching `arrow_schema()`."""
    row: dict[str, Any] = {
        "id": record.id,
        "image": {"bytes": bytes(record.image), "path": record.image_path},
        "content": record.content,
        "style": record.style,
    }
    for name in EXTRA_COLUMNS:
        row[name] = getattr(record, name)
    return row


def record_from_row(row: Mapping[str, Any]) -> StyleRecord:
    """Build a record from a row dict; ``image`` may be a ``{bytes, path}`` dict or raw bytes."""
    image = row.get("image")
    path: str | None = None
    if isinstance(image, Mapping):
        path = image.get("path")
        image = image.get("bytes")
    if image is None:
        raise ValueError(f"row {row.get('id')!r} has no image bytes")
    kwargs: dict[str, Any] = {name: row.get(name) for name in EXTRA_COLUMNS}
    kwargs.update(
        id=row.get("id"),
        image=bytes(image),
        style=row.get("style"),
        content=row.get("content"),
        image_path=path,
    )
    return StyleRecord(**kwargs)
