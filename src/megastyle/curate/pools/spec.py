"""Pool specs: where one pool source lives, how to read it, and how its kind is detected from the path."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from megastyle.curate.items import PoolItem
from megastyle.data import IMAGE_EXTENSIONS, Reject

PoolKind = Literal["folder", "parquet", "webdataset", "list"]
METADATA_FILES: tuple[str, ...] = ("metadata.jsonl", "captions.jsonl", "metadata.csv", "captions.csv")
DEFAULT_CAPTION_COLUMNS: tuple[str, ...] = ("caption", "text", "prompt")
DEFAULT_IMAGE_COLUMNS: tuple[str, ...] = ("image", "file_name", "image_path", "path", "jpg", "png", "webp")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
LIST_SUFFIXES = (".jsonl", ".csv")

Entry = PoolItem | Reject
RejectSink = Callable[[Reject], object] | list[Reject] | None


class PoolSpec(BaseModel):
    """Where one pool source lives and how to read it (the kind is detected from ``path`` by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    kind: PoolKind | Literal["auto"] = "auto"
    role: Literal["style", "content"] = "style"
    name: str | None = Field(None, description="id prefix; default: the path's name without suffix")
    image_column: str | None = Field(None, description="Parquet/list/metadata column holding the image")
    caption_columns: tuple[str, ...] | None = Field(
        None,
        description="first present wins; default: the role column for MegaStyle shards, else caption/text/prompt",
    )
    require_caption: bool = False
    limit: int | None = Field(None, ge=0, description="stop after this many accepted items")
    shuffle: bool = False
    seed: int = 0
    shuffle_buffer: int = Field(
        10_000, ge=1, description="Parquet/tar only: folder and list sources shuffle exactly"
    )
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS

    @property
    def source_name(self) -> str:
        """The id prefix of this pool's items."""
        if self.name:
            return self.name
        name = self.path.name
        for suffix in (*TAR_SUFFIXES, ".parquet", *LIST_SUFFIXES):
            name = name.removesuffix(suffix)
        return name or "pool"

    def resolved_kind(self) -> PoolKind:
        """``kind``, or the kind detected from ``path``."""
        return detect_kind(self.path, self.extensions) if self.kind == "auto" else self.kind


def detect_kind(path: str | Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> PoolKind:
    """Kind of a pool path: by suffix for files; for folders, the one kind of file found inside."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"pool path {path} does not exist")
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".parquet"):
            return "parquet"
        if name.endswith(TAR_SUFFIXES):
            return "webdataset"
        if name.endswith(LIST_SUFFIXES):
            return "list"
        raise ValueError(f"{path}: cannot tell the pool kind from the suffix; set kind explicitly")
    found: set[PoolKind] = set()
    for _, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for filename in filenames:
            lower = filename.lower()
            if lower.endswith(".parquet") and not filename.startswith("."):
                found.add("parquet")
            elif lower.endswith(TAR_SUFFIXES):
                found.add("webdataset")
            elif lower.endswith(tuple(extensions)):
                found.add("folder")
        if len(found) > 1:  # stop scanning as soon as the answer is ambiguous
            raise ValueError(f"{path} mixes {sorted(found)} files; set the pool kind explicitly")
    if not found:
        raise ValueError(f"{path}: no images, Parquet or tar shards found")
    return found.pop()
