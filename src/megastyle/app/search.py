"""Style search behind the app's second tab: open or build an index, query it by image, compare two images.

Scores are cosines of the encoder's normalised embeddings (the official ``style_score.py`` measure);
when the collection carries style labels, each score also gets a calibrated readout: its percentile
among pairs of different styles of the same collection.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from megastyle.config import ConfigError
from megastyle.encode.search import SearchHit, SearchIndex

ProgressFn = Callable[[int, int], object]


@dataclass(frozen=True)
class Hit:
    """One search result for the page."""

    rank: int
    index: int  # row in the collection
    id: str
    score: float
    percentile: float | None  # among different-style pairs of the collection
    style: str | None
    image: Image.Image

    @property
    def caption(self) -> str:
        """Rank, score (raw and calibrated) and the style prompt where known."""
        calibrated = f", {self.percentile:.0f}th percentile" if self.percentile is not None else ""
        style = f" | {self.style}" if self.style else ""
        return f"#{self.rank} {self.id}: score {self.score:.3f}{calibrated}{style}"


def official_score_line(score: float) -> str:
    """The line the official ``style_score.py`` prints for a score."""
    return f"=> style score: {score:.2f}"


class StyleSearch:
    """An encoder and an index over a collection; every method returns what the page shows."""

    def __init__(self, encoder: Any, work_dir: Path) -> None:
        self.encoder = encoder
        self.work_dir = work_dir
        self.index: SearchIndex | None = None
        self.source: str = ""
        self.summary: str = ""  # what open() said, for pages that show it again later
        self._calibration: Any = None
        from megastyle.encode.search import ImageSource

        self._images = ImageSource()

    def open(self, path: str | Path, progress: ProgressFn | None = None) -> str:
        """Open a saved index, an embeddings file, or embed a collection (images, manifest, shards) first."""
        from megastyle.encode.embed import embed_collection
        from megastyle.encode.search import META_NAME, build_index

        path = Path(path).expanduser()
        if not path.exists():
            raise ConfigError(f"{path}: no such index, embeddings file or collection")
        if path.is_dir() and (path / META_NAME).is_file():
            index = SearchIndex.load(path)
        elif path.suffix == ".safetensors":
            index = build_index(path)
        else:
            name = re.sub(r"[^\w.-]+", "_", str(path.resolve()).strip("/"))[-80:]
            out = self.work_dir / "indexes" / f"{name}.safetensors"
            summary = embed_collection(
                self.encoder, path, out_path=out, reuse=True, progress=False, on_progress=progress
            )
            index = build_index(summary.out_path)
        if index.dim != self.encoder.dim:
            raise ConfigError(
                f"{path}: the index holds {index.dim}-d vectors, the encoder makes {self.encoder.dim}-d"
            )
        self.index, self.source = index, str(path)
        self._calibration = _calibration(index)
        labelled = " with style labels (scores get percentiles)" if self._calibration is not None else ""
        self.summary = f"{path}: {len(index)} images{labelled}, {index.kind} index on {index.backend}"
        return self.summary

    def _require_index(self) -> SearchIndex:
        if self.index is None:
            raise ConfigError("no index is open: open an index, an embeddings file or a collection first")
        return self.index

    def embed(self, image: Image.Image) -> np.ndarray:
        """The encoder's normalised embedding of one image."""
        return np.asarray(self.encoder.embed_images([image.convert("RGB")], batch_size=1), dtype=np.float32)[
            0
        ]

    def query_image(self, image: Image.Image, k: int = 12) -> list[Hit]:
        """The ``k`` images of the index closest in style to ``image``."""
        return self._hits(self._require_index().search(self.embed(image)[None], k)[0])

    def query_item(self, index: int, k: int = 12) -> list[Hit]:
        """More like this: the ``k`` images closest to item ``index`` of the collection (itself first)."""
        search = self._require_index()
        if not 0 <= index < len(search):
            raise ConfigError(f"item {index}: the collection has {len(search)} images")
        return self._hits(search.search(search.embeddings[index][None], k)[0])

    def _hits(self, hits: list[SearchHit]) -> list[Hit]:
        out = []
        for hit in hits:
            try:
                image = self._images.load(hit.item)
            except (OSError, ValueError) as err:  # a moved or broken file: shown, not fatal
                image = Image.new("RGB", (64, 64), (200, 200, 200))
                hit_id = f"{hit.id} (image unavailable: {err})"
            else:
                hit_id = hit.id
            image.thumbnail((256, 256))
            percentile = self._calibration.percentile(hit.score) if self._calibration is not None else None
            out.append(Hit(hit.rank, hit.index, hit_id, hit.score, percentile, hit.item.style_label, image))
        return out

    def compare(self, a: Image.Image, b: Image.Image) -> tuple[float, str]:
        """The style score of two images and the official script's line for it."""
        from megastyle.encode.model import cosine_score

        score = cosine_score(self.encoder, a.convert("RGB"), b.convert("RGB"))
        line = official_score_line(score)
        if self._calibration is not None:
            line += f"\n=> percentile vs different-style pairs of {Path(self.source).name}: "
            line += f"{self._calibration.percentile(score):.1f}"
        return score, line


def _calibration(index: SearchIndex) -> Any:
    """A score calibration from the collection's own style labels, or None when it has none."""
    from megastyle.encode.calibrate import ScoreCalibration

    labels = [
        item.style_id if item.style_id is not None else item.style_label for item in index.collection.items
    ]
    if any(label is None for label in labels) or len(set(labels)) < 2:
        return None
    codes = {label: i for i, label in enumerate(dict.fromkeys(labels))}
    return ScoreCalibration.fit(
        index.embeddings, [codes[label] for label in labels], num_pairs=20_000, seed=0
    )
