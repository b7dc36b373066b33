"""The item types that flow between curation stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from megastyle.curate.members import read_member
from megastyle.data import decode_image


@dataclass(frozen=True)
class PoolItem:
    """One image of a style or content pool: bytes, a file path, or a member of a container file.

    ``member`` set: the image is inside the file at ``path`` (a Parquet row, an uncompressed tar
    member; see ``curate.members``) and is read only when needed.
    """

    id: str
    source: str  # where it came from: a folder, shard or list file, for rejects and the dataset card
    image_bytes: bytes | None = None
    path: str | None = None
    caption: str | None = None
    member: str | None = None

    def read_bytes(self) -> bytes:
        """The encoded image: held bytes, the file, or the member of the container file."""
        if self.image_bytes is not None:
            return self.image_bytes
        if self.path is None:
            raise ValueError(f"pool item {self.id}: neither image bytes nor a path")
        if self.member is not None:
            return read_member(self.path, self.member)
        return Path(self.path).read_bytes()

    def load_image(self, max_pixels: int | None = None) -> Image.Image:
        """Decode the image safely to RGB; raises ``ImageDecodeError`` naming this item."""
        try:
            data = self.read_bytes()
        except OSError as err:
            raise ValueError(f"pool item {self.id}: cannot read {self.path}: {err}") from err
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
