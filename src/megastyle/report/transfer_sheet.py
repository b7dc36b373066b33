"""Side-by-side sheets of style transfer results: one row per reference, the reference then one column per prompt."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

__all__ = ["save_transfer_sheet", "transfer_sheet"]

BACKGROUND = (250, 250, 250)
MISSING = (200, 200, 200)
REFERENCE_BORDER = (40, 90, 200)
TEXT = (30, 30, 30)
LINE_HEIGHT = 11  # PIL's default bitmap font


def _tile(image: Image.Image | None, thumb: int, border: tuple[int, int, int] | None) -> Image.Image:
    """``image`` fitted into a ``thumb``² tile (aspect kept), optionally framed; grey when missing."""
    tile = Image.new("RGB", (thumb, thumb), border or BACKGROUND)
    if image is None:
        ImageDraw.Draw(tile).rectangle((0, 0, thumb - 1, thumb - 1), fill=MISSING)
        ImageDraw.Draw(tile).text((4, thumb // 2 - 5), "no image", fill=TEXT, font=ImageFont.load_default())
        return tile
    inset = max(2, thumb // 32) if border else 0
    inner = image.convert("RGB")
    side = thumb - 2 * inset
    scale = min(side / inner.width, side / inner.height)
    size = (max(1, round(inner.width * scale)), max(1, round(inner.height * scale)))
    # Small outputs are enlarged pixel for pixel (nearest) so tiny test images stay readable.
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST
    inner = inner.resize(size, resample)
    tile.paste(inner, ((thumb - inner.width) // 2, (thumb - inner.height) // 2))
    return tile


def _wrapped(text: str, width_px: int, max_lines: int) -> str:
    lines = textwrap.wrap(text, max(width_px // 6, 4)) or [""]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: max(width_px // 6 - 1, 1)] + "…"]
    return "\n".join(lines)


def transfer_sheet(
    references: Sequence[tuple[str, Image.Image]],
    prompts: Sequence[str],
    outputs: Sequence[Sequence[Image.Image | None]],
    *,
    thumb: int = 160,
    gap: int = 6,
    title: str | None = None,
) -> Image.Image:
    """Grid image: rows = references (framed, labelled), columns = prompts (headed); ``outputs[r][p]`` or None."""
    if not references:
        raise ValueError("transfer sheet: no references")
    if len(outputs) != len(references):
        raise ValueError(f"transfer sheet: {len(outputs)} output rows for {len(references)} references")
    for (label, _), row in zip(references, outputs, strict=True):
        if len(row) != len(prompts):
            raise ValueError(
                f"transfer sheet: reference {label!r} has {len(row)} outputs for {len(prompts)} prompts"
            )
    font = ImageFont.load_default()
    header_lines, label_lines = 3, 2
    title_h = LINE_HEIGHT + gap if title else 0
    header_h = header_lines * LINE_HEIGHT + gap
    row_h = thumb + label_lines * LINE_HEIGHT + gap
    width = gap + (len(prompts) + 1) * (thumb + gap)
    height = gap + title_h + header_h + len(references) * row_h
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    top = gap
    if title:
        draw.text((gap, top), _wrapped(title, width - 2 * gap, 1), fill=TEXT, font=font)
        top += title_h
    for column, header in enumerate(["reference", *prompts]):
        left = gap + column * (thumb + gap)
        draw.multiline_text(
            (left, top), _wrapped(header, thumb, header_lines), fill=TEXT, font=font, spacing=0
        )
    top += header_h
    for (label, reference), row in zip(references, outputs, strict=True):
        sheet.paste(_tile(reference, thumb, REFERENCE_BORDER), (gap, top))
        for column, image in enumerate(row, start=1):
            sheet.paste(_tile(image, thumb, None), (gap + column * (thumb + gap), top))
        draw.multiline_text(
            (gap, top + thumb + 1), _wrapped(label, thumb, label_lines), fill=TEXT, font=font, spacing=0
        )
        top += row_h
    return sheet


def save_transfer_sheet(
    path: str | Path,
    references: Sequence[tuple[str, Image.Image]],
    prompts: Sequence[str],
    outputs: Sequence[Sequence[Image.Image | None]],
    **kwargs: int | str | None,
) -> Path:
    """Write ``transfer_sheet(...)`` as PNG to ``path`` (folders created) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    transfer_sheet(references, prompts, outputs, **kwargs).save(target, format="PNG")  # type: ignore[arg-type]
    return target
