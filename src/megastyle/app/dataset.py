"""The dataset explorer behind the app's third tab: a dataset browsed style by style, filtered by words.

It opens MegaStyle-layout shards (ours or the released MegaStyle-1.4M) or a curate run folder; for a
run it also reads the stage numbers and the rejected items with their causes.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from megastyle.config import ConfigError
from megastyle.curate.summary import read_run_rejects, read_run_summary, stage_sentence
from megastyle.data import ShardReader, build_style_index, list_shards

THUMB = 128


@dataclass(frozen=True)
class StyleCard:
    """One style of the dataset: its prompt, its attributes and where its rows are."""

    label: int  # dense 0..K-1 in the dataset's order
    style_id: int | None
    style: str
    attributes: dict[str, Any]
    rows: list[int] = field(default_factory=list)

    @property
    def title(self) -> str:
        """How the style is named on the page."""
        number = f"s{self.style_id}" if self.style_id is not None else f"style {self.label + 1}"
        return f"{number} ({len(self.rows)} images): {self.style}"


def locate_dataset(path: str | Path) -> tuple[Path, Path | None]:
    """(shard folder, curate run folder or None) for a shard folder or a curate run folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"{path}: no such dataset folder")
    if path.is_dir() and (path / "dataset").is_dir() and list_shards(path / "dataset"):
        return path / "dataset", path
    if path.is_dir() and list_shards(path):
        run = path.parent if (path.parent / "stages").is_dir() else None
        return path, run
    if path.is_file() and path.suffix == ".parquet":
        return path, None
    raise ConfigError(
        f"{path}: no train-*.parquet shards and no curate run (a run folder holds dataset/); "
        "`megastyle import` turns labelled images into shards"
    )


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.lower())


def _official_metadata(folder: Path) -> dict[int, dict[str, str]]:
    """Per-style attributes of the released MegaStyle-1.4M (``metadata.csv``), keyed by style number."""
    path = folder / "metadata.csv"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out: dict[int, dict[str, str]] = {}
    for position, row in enumerate(rows):
        key = next((row[k] for k in ("style_id", "id", "style") if row.get(k)), None)
        digits = re.sub(r"\D", "", key or "")
        number = int(digits) if digits else position
        out[number] = {k: v for k, v in row.items() if k not in ("style_id", "id") and v and v != "N/A"}
    return out


class DatasetExplorer:
    """One opened dataset: its styles, their rows, and (for a curate run) stages and rejects."""

    def __init__(self, path: str | Path) -> None:
        self.shards, self.run_dir = locate_dataset(path)
        self.reader = ShardReader(self.shards)
        index = build_style_index(self.reader)
        table = self.reader.read_table(["content", "style_attributes"])
        self.contents: list[str] = [c or "" for c in table.column("content").to_pylist()]
        attribute_text = table.column("style_attributes").to_pylist()
        metadata = _official_metadata(self.shards if self.shards.is_dir() else self.shards.parent)
        self.cards: list[StyleCard] = []
        for label, (text, rows) in enumerate(index.groups()):
            style_id = index.style_ids[label]
            attributes: dict[str, Any] = {}
            first = int(rows[0])
            if attribute_text[first]:
                try:
                    attributes = dict(json.loads(attribute_text[first]))
                except (ValueError, TypeError):
                    attributes = {}
            elif style_id is not None and style_id in metadata:
                attributes = metadata[style_id]
            self.cards.append(StyleCard(label, style_id, text, attributes, [int(r) for r in rows]))
        self._search_text = [
            set(_words(card.style))
            | set(_words(" ".join(str(v) for v in card.attributes.values())))
            | {w for row in card.rows for w in _words(self.contents[row])}
            for card in self.cards
        ]

    @property
    def summary(self) -> str:
        """What is open, in one line."""
        kind = f"curate run {self.run_dir}" if self.run_dir else f"shards {self.shards}"
        return (
            f"{kind}: {len(self.reader)} images, {len(self.cards)} styles, {len(self.reader.shards)} shards"
        )

    def find(self, query: str = "") -> list[StyleCard]:
        """The styles whose prompt, attributes or content prompts hold every word of ``query``."""
        words = _words(query)
        return [
            card
            for card, text in zip(self.cards, self._search_text, strict=True)
            if all(w in text for w in words)
        ]

    def page(self, cards: list[StyleCard], page: int, per_page: int) -> tuple[list[StyleCard], int]:
        """Page ``page`` (1-based, clamped) of ``cards`` and the number of pages."""
        pages = max(1, -(-len(cards) // per_page))
        page = min(max(1, page), pages)
        return cards[(page - 1) * per_page : page * per_page], pages

    def thumbnail(self, row: int, size: int = THUMB) -> Image.Image:
        """Row ``row``'s image, fitted in a ``size``² box."""
        image = self.reader[row].pil_image()
        image.thumbnail((size, size))
        return image

    def strip(self, card: StyleCard, columns: int = 8, size: int = 96) -> Image.Image:
        """The style's first ``columns`` images side by side: one glance at what the style prompt renders."""
        rows = card.rows[:columns]
        strip = Image.new("RGB", (len(rows) * (size + 2), size), (250, 250, 250))
        for i, row in enumerate(rows):
            tile = self.thumbnail(row, size)
            strip.paste(tile, (i * (size + 2) + (size - tile.width) // 2, (size - tile.height) // 2))
        return strip

    def style_caption(self, card: StyleCard) -> str:
        """The style's prompt and attributes as a gallery caption."""
        attributes = "; ".join(f"{k}: {v}" for k, v in card.attributes.items() if v)
        return card.title + (f" | {attributes}" if attributes else "")

    def row(self, row: int) -> tuple[Image.Image, dict[str, Any]]:
        """One image and its row (every column but the image bytes)."""
        record = self.reader[row]
        fields = {
            "row": row, "id": record.id, "style_id": record.style_id, "content_id": record.content_id,
            "style": record.style, "content": record.content, "backend": record.backend, "seed": record.seed,
        }  # fmt: skip
        if record.style_attributes:
            try:
                fields["style_attributes"] = json.loads(record.style_attributes)
            except ValueError:
                fields["style_attributes"] = record.style_attributes
        return record.pil_image(), fields

    def stages(self) -> list[tuple[str, str, str]]:
        """(stage, what happened, seconds) of the curate run, or nothing for bare shards."""
        summary = read_run_summary(self.run_dir) if self.run_dir else None
        if summary is None:
            return []
        seconds = summary.get("seconds", {})
        return [
            (name, stage_sentence(name, stats), f"{seconds.get(name, 0.0):.1f}")
            for name, stats in summary.get("stages", {}).items()
        ]

    def rejects(self) -> list[tuple[str, str]]:
        """(item, cause) of every rejected item of the curate run."""
        return [(r["item"], r["cause"]) for r in read_run_rejects(self.run_dir)] if self.run_dir else []
