"""Path-based pool readers: image folders (metadata files or ``name.txt`` sidecars) and JSONL/CSV lists."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from megastyle.curate.pools.rows import caption_columns, file_item, image_field, pick, read_rows, with_caption
from megastyle.curate.pools.spec import METADATA_FILES, Entry, PoolSpec
from megastyle.data import Reject


def iter_list_file(path: Path, spec: PoolSpec) -> Iterator[Entry]:
    """Rows of a JSONL/CSV list: a local image path (relative to the list file) plus a caption."""
    name, seen = spec.source_name, dict[str, int]()
    for number, row in read_rows(path):
        where = f"{path.name}:{number}"
        if isinstance(row, str):
            yield Reject(f"{name}/{where}", f"{where}: {row}")
            continue
        image = image_field(row, spec)
        if not isinstance(image, str) or not image.strip():
            yield Reject(f"{name}/{where}", f"{where}: no image path in the row")
            continue
        # Several rows may name one image (one per caption): later ones get #2, #3...
        seen[image] = seen.get(image, 0) + 1
        item_id = f"{name}/{image}" if seen[image] == 1 else f"{name}/{image}#{seen[image]}"
        if "://" in image:
            yield Reject(item_id, f"{where}: {image} is a URL; ingest reads local files only")
            continue
        item = file_item(item_id, (path.parent / image), str(path))
        column, value = pick(row, caption_columns(spec))
        yield item if isinstance(item, Reject) else with_caption(item, value, f"{where} {column}", spec)


def iter_folder(root: Path, spec: PoolSpec) -> Iterator[Entry]:
    """Images under ``root`` (recursive, sorted); captions from metadata files or ``name.txt`` sidecars."""
    name, extensions = spec.source_name, tuple(e.lower() for e in spec.extensions)
    # image path → (caption value, where, row id), from metadata files met on the way down
    listed: dict[Path, tuple[object, str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        names = set(filenames)
        for meta in (m for m in METADATA_FILES if m in names):
            for number, row in read_rows(here / meta):
                where = f"{(here / meta).relative_to(root).as_posix()}:{number}"
                image = image_field(row, spec) if isinstance(row, dict) else None
                if not isinstance(image, str):
                    yield Reject(
                        f"{name}/{where}", f"{where}: {row if isinstance(row, str) else 'no file_name'}"
                    )
                    continue
                column, value = pick(row, caption_columns(spec))
                listed[(here / image).resolve()] = (value, f"{where} {column}", f"{name}/{where}")
        for filename in sorted(names):
            if filename.startswith(".") or not filename.lower().endswith(extensions):
                continue
            path = here / filename
            item = file_item(f"{name}/{path.relative_to(root).as_posix()}", path, str(root))
            if isinstance(item, Reject):
                yield item
                continue
            value, where, _ = listed.pop(path.resolve(), (None, "", "")) if listed else (None, "", "")
            sidecar = f"{Path(filename).stem}.txt"
            if value is None and sidecar in names:
                value, where = (here / sidecar).read_bytes(), sidecar
            yield with_caption(item, value, where, spec)
    for path, (_, where, row_id) in listed.items():  # metadata rows whose image never turned up
        yield Reject(row_id, f"{where.split(' ')[0]}: names a missing image {path}")
