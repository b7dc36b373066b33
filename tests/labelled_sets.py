"""A small labelled image set written in each of the forms a user brings (shared by the collection tests).

Three styles (a base colour each, with noise) × four images; two content labels (a square or a bar, at
a varying place). Every form holds the same image bytes in the same order (style, then image), so a
command reads the same rows from each.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

STYLES = ("cubism", "pointillism", "ukiyo-e")
PER_STYLE = 4
CONTENTS = ("bar", "square")
FORMS = ("folders", "csv", "jsonl", "parquet")
# The Parquet form names its columns its own way: the commands are told them.
PARQUET_COLUMNS = [
    "--image-column",
    "picture",
    "--style-column",
    "artist_style",
    "--content-column",
    "subject",
]


def image_bytes(style: int, index: int, size: int = 32) -> bytes:
    """A PNG: the style's colour with seeded noise, and a darker square or bar (the content)."""
    rng = np.random.default_rng(100 * style + index)
    base = np.array([(200, 60, 40), (40, 160, 70), (50, 70, 200)][style], dtype=np.int64)
    pixels = np.clip(base + rng.integers(-40, 41, (size, size, 3)), 0, 255)
    offset = 2 + 3 * index
    if index % 2:  # a bar
        pixels[offset : offset + 4, 2:-2] //= 3
    else:  # a square
        pixels[offset : offset + 10, offset : offset + 10] //= 3
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def entries() -> list[tuple[str, str, str, bytes]]:
    """(relative path, style, content, PNG bytes) of every image, in style order."""
    out = []
    for s, style in enumerate(STYLES):
        for i in range(PER_STYLE):
            out.append((f"{style}/{i}.png", style, CONTENTS[i % 2], image_bytes(s, i)))
    return out


def write_form(root: Path, form: str, *, content: bool = True) -> Path:
    """The set in one form under ``root``; returns the path to give as ``source``."""
    rows = entries()
    if form == "folders":
        for rel, _, _, data in rows:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        return root
    if form in ("csv", "jsonl"):
        # Flat files under images/ (the labels come from the manifest alone).
        for rel, _, _, data in rows:
            file = root / "images" / rel.replace("/", "_")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        records = [
            {"path": f"images/{rel.replace('/', '_')}", "style": style, **({"content": c} if content else {})}
            for rel, style, c, _ in rows
        ]
        if form == "csv":
            with (root / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(records[0]))
                writer.writeheader()
                writer.writerows(records)
        else:
            (root / "labels.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
            )
        return root
    if form == "parquet":
        root.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                "picture": pa.array([data for *_, data in rows], pa.binary()),
                "artist_style": [style for _, style, _, _ in rows],
                "subject": [c if content else None for _, _, c, _ in rows],
                "note": [rel for rel, *_ in rows],
            }
        )
        pq.write_table(table, root / "set.parquet")
        return root / "set.parquet"
    raise ValueError(form)


def form_args(form: str) -> list[str]:
    """The extra options a command needs to read ``form`` (the Parquet form's column names)."""
    return list(PARQUET_COLUMNS) if form == "parquet" else []
