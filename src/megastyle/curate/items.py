"""The item types that flow between curation stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from megastyle.data import decode_image


@dataclass(frozen=True)
class PoolItem:
    """One image of a style or content pool: bytes or a file path, plus an optional sidecar caption."""

    id: str
    source: str  # where it came from: a folder, shard or list file, for rejects and the dataset card
    image_bytes: bytes | None = None
    path: str | None = None
    caption: str | None = None

    def load_image(self, max_pixels: int | None = None) -> Image.Image:
        """Decode the image safely to RGB; raises ``ImageDecodeError`` naming this item."""
        data = self.image_bytes
        if data is None:
            if self.path is None:
                raise ValueError(f"pool item {self.id}: neither image bytes nor a path")
            data = Path(self.path).read_bytes()
        kwargs = {"max_pixels": max_pixels} if max_pixels else {}
        return decode_image(data, item=self.id, **kwargs)


@dataclass(frozen=True)
class Caption:
    """A captioner's answer for one pool item: the prompt text, or the error that stopped it."""

    item_id: str
    kind: str  # "style" or "content"
    text: str | None
    attributes_json: str | None = None  # style captions: the structured attributes behind the text
    error: str | None = None
    attempts: int = 1
    backend: str = ""

    @property
    def ok(self) -> bool:
        """True when the caption has text and no error."""
        return self.text is not None and self.error is None
