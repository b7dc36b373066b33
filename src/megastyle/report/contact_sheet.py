"""Contact sheets: one row of thumbnails per style, labelled, as a single PNG."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def contact_sheet(
    rows: Sequence[tuple[str, Sequence[Image.Image]]],
    thumb: int = 96,
    label_width: int = 260,
    gap: int = 4,
) -> Image.Image:
    """Compose ``(label, images)`` rows into one RGB sheet with the label wrapped on the left."""
    if not rows:
        raise ValueError("contact sheet: no rows to draw")
    columns = max(len(images) for _, images in rows)
    width = label_width + columns * (thumb + gap) + gap
    height = len(rows) * (thumb + gap) + gap
    sheet = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    chars_per_line = max(label_width // 6, 10)
    max_lines = max(thumb // 11, 1)
    for r, (label, images) in enumerate(rows):
        top = gap + r * (thumb + gap)
        lines = textwrap.wrap(label, chars_per_line)[:max_lines]
        draw.multiline_text((gap, top), "\n".join(lines), fill=(30, 30, 30), font=font, spacing=1)
        for c, image in enumerate(images):
            tile = image.convert("RGB").resize((thumb, thumb), Image.Resampling.BILINEAR)
            sheet.paste(tile, (label_width + c * (thumb + gap), top))
    return sheet


def save_contact_sheet(
    rows: Sequence[tuple[str, Sequence[Image.Image]]], path: str | Path, **kwargs: int
) -> Path:
    """Write ``contact_sheet(rows)`` to ``path`` as PNG and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(rows, **kwargs).save(path, format="PNG", optimize=False)
    return path


def save_contact_sheet_pages(
    rows: Sequence[tuple[str, Sequence[Image.Image]]], folder: str | Path, *, per_page: int = 8, **kwargs: int
) -> list[Path]:
    """Write ``rows`` as sheets of ``per_page`` rows each (``contact_sheet_01.png``, …); returns their paths."""
    folder = Path(folder)
    return [
        save_contact_sheet(
            rows[start : start + per_page],
            folder / f"contact_sheet_{start // per_page + 1:02d}.png",
            **kwargs,
        )
        for start in range(0, len(rows), per_page)
    ]
