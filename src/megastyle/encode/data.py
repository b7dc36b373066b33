"""Style-labelled training data over MegaStyle shards: style split, held-out styles, seeded augmentation.

Styles are identified by their prompt text across every shard folder given (the same text in two
folders is one style). Held-out styles — never seen in training, for the retrieval benchmark —
come from a file (style ids or style texts) and/or a seeded fraction; the split is written next
to the run so the benchmark can use exactly the same one.

Augmentations are light and style-preserving: a random resized crop (area 0.8–1.0 by default) and
a horizontal flip. No colour jitter, blur or grayscale: colour and texture *are* the style. Each
item's augmentation is drawn from its own seed (given by the sampler), so a batch is a pure
function of ``(seed, epoch, batch)`` whatever process decodes it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from megastyle.data import ImageDecodeError, ShardReader, build_style_index, to_rgb
from megastyle.encode.images import ImagePreprocessor, PreprocessConfig

logger = logging.getLogger(__name__)


@dataclass
class StyleRows:
    """Rows ``(source, row)`` of a set of styles; ``labels`` index ``styles`` densely."""

    sources: list[Path]
    rows: np.ndarray  # int64 (n, 2): shard folder position, global row within that folder
    labels: np.ndarray  # int64 (n,)
    styles: list[str]  # label -> style prompt
    style_ids: list[int | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def scan_styles(sources: Sequence[str | Path]) -> StyleRows:
    """Every row of every style in ``sources`` (shard folders or files), styles merged by text."""
    if not sources:
        raise ValueError("no training data: give at least one shard folder")
    paths = [Path(s) for s in sources]
    styles: list[str] = []
    style_ids: list[int | None] = []
    label_of: dict[str, int] = {}
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for position, path in enumerate(paths):
        index = build_style_index(path)
        for text, style_rows in index.groups():
            label = label_of.get(text)
            if label is None:
                label = label_of[text] = len(styles)
                styles.append(text)
                style_ids.append(index.style_id(text))
            rows.append(np.stack([np.full(len(style_rows), position), style_rows], axis=1))
            labels.append(np.full(len(style_rows), label))
    if not rows:
        raise ValueError(f"no rows in {[str(p) for p in paths]}")
    return StyleRows(
        sources=paths,
        rows=np.concatenate(rows).astype(np.int64),
        labels=np.concatenate(labels).astype(np.int64),
        styles=styles,
        style_ids=style_ids,
    )


def read_holdout_file(path: str | Path) -> list[str]:
    """Held-out style entries: JSON (a list, or an object with ``heldout_styles``/``styles``) or lines."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"held-out styles file {file} does not exist")
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".json":
        data: Any = json.loads(text)
        if isinstance(data, dict):
            data = data.get("heldout_styles", data.get("styles"))
        if not isinstance(data, list):
            raise ValueError(f"{file}: expected a JSON list or an object with 'heldout_styles' or 'styles'")
        return [str(entry) for entry in data]
    return [line.strip() for line in text.splitlines() if line.strip()]


def match_styles(entries: Iterable[str | int], data: StyleRows) -> tuple[set[str], list[str]]:
    """Style texts named by ``entries`` (a style text or a numeric style id); and the unmatched entries."""
    by_id: dict[int, list[str]] = {}
    for text, style_id in zip(data.styles, data.style_ids, strict=False):
        if style_id is not None:
            by_id.setdefault(style_id, []).append(text)
    known = set(data.styles)
    matched: set[str] = set()
    unmatched: list[str] = []
    for entry in entries:
        value = str(entry).strip()
        if value in known:
            matched.add(value)
        elif value.isdigit() and int(value) in by_id:
            matched.update(by_id[int(value)])
        else:
            unmatched.append(value)
    return matched, unmatched


def select_holdout_styles(styles: Sequence[str], fraction: float, seed: int) -> list[str]:
    """A seeded ``fraction`` of ``styles`` (rounded, at least one when fraction > 0), sorted by text."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0 or not styles:
        return []
    ordered = sorted(set(styles))  # independent of shard order
    count = max(1, math.floor(fraction * len(ordered) + 0.5))
    picked = np.random.default_rng(seed).permutation(len(ordered))[:count]
    return sorted(ordered[i] for i in picked)


def split_styles(data: StyleRows, heldout: set[str]) -> tuple[StyleRows, StyleRows]:
    """(training rows, held-out rows), each relabelled densely in the original style order."""

    def subset(keep: list[bool]) -> StyleRows:
        new_label = np.full(len(data.styles), -1, dtype=np.int64)
        kept = [i for i, k in enumerate(keep) if k]
        new_label[kept] = np.arange(len(kept))
        mask = new_label[data.labels] >= 0
        return StyleRows(
            sources=data.sources,
            rows=data.rows[mask],
            labels=new_label[data.labels[mask]],
            styles=[data.styles[i] for i in kept],
            style_ids=[data.style_ids[i] for i in kept] if data.style_ids else [],
        )

    is_heldout = [text in heldout for text in data.styles]
    return subset([not h for h in is_heldout]), subset(is_heldout)


@dataclass(frozen=True)
class AugmentConfig:
    """A random crop then horizontal flip with ``flip_p``.

    ``crop = "resized"``: the usual random resized crop (area share ``crop_scale``, aspect ``crop_ratio``),
    later resized to the input as a whole. ``crop = "native"`` (for multi-crop preprocessing): a square
    of side ``native_size`` × a log-uniform factor in ``native_zoom``, resized to ``native_size``² — the
    texture keeps (about) the scale the embedding's grid crops see.
    """

    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    crop: Literal["resized", "native"] = "resized"
    native_size: int = 64
    native_zoom: tuple[float, float] = (0.8, 1.25)


def _native_crop(image: Image.Image, config: AugmentConfig, rng: np.random.Generator) -> Image.Image:
    width, height = image.size
    log_zoom = (math.log(config.native_zoom[0]), math.log(config.native_zoom[1]))
    side = min(width, height, round(config.native_size * math.exp(rng.uniform(*log_zoom))))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = image.crop((left, top, left + side, top + side))
    if side != config.native_size:
        crop = crop.resize((config.native_size, config.native_size), resample=Image.Resampling.BICUBIC)
    return crop


def augment_image(image: Image.Image, config: AugmentConfig, seed: int) -> Image.Image:
    """The crop and flip drawn from ``seed`` (same seed → same augmentation)."""
    rng = np.random.default_rng(seed)
    if config.crop == "native":
        image = _native_crop(image, config, rng)
        if rng.uniform() < config.flip_p:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image
    width, height = image.size
    area = width * height
    box = (0, 0, width, height)
    log_ratio = (math.log(config.crop_ratio[0]), math.log(config.crop_ratio[1]))
    for _ in range(10):  # rejection sampling as in the usual RandomResizedCrop
        target = area * rng.uniform(*config.crop_scale)
        ratio = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            box = (left, top, left + w, top + h)
            break
    image = image.crop(box)
    if rng.uniform() < config.flip_p:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image


class StyleImageDataset(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """``dataset[(i, seed)]`` → (pixel values, style label) of row ``i``; augmented when configured.

    With ``label_rows`` the label is the row index ``i`` instead (one text per row: caption targets).

    Shard readers open lazily in each process (DataLoader workers). With ``cache_images`` every image
    is decoded once up front and kept in memory at most ``2 × image_size`` on its long side — meant
    for small datasets (the quickstart); large ones read row groups through a small LRU cache.
    """

    def __init__(
        self,
        data: StyleRows,
        preprocess: PreprocessConfig,
        *,
        augment: AugmentConfig | None = None,
        cache_images: bool = False,
        cache_row_groups: int = 8,
        label_rows: bool = False,
    ) -> None:
        self.data = data
        self.label_rows = label_rows
        self.preprocessor = ImagePreprocessor(preprocess)
        self.augment = augment
        self.cache_row_groups = cache_row_groups
        self._readers: dict[int, ShardReader] = {}
        self._images: dict[int, Image.Image] | None = None
        self.bad_rows: dict[int, str] = {}
        if cache_images:
            self._images = {}
            for index in range(len(data)):
                try:
                    self._images[index] = self._shrink(self._decode(index))
                except ImageDecodeError as err:
                    self.bad_rows[index] = str(err)
            if self.bad_rows:
                logger.warning(
                    "%d undecodable training images (replaced by their style's others)", len(self.bad_rows)
                )

    def __len__(self) -> int:
        return len(self.data)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_readers"] = {}  # file handles and locks stay in their process
        return state

    def _reader(self, source: int) -> ShardReader:
        reader = self._readers.get(source)
        if reader is None:
            reader = ShardReader(
                self.data.sources[source], columns=["id", "image"], cache_row_groups=self.cache_row_groups
            )
            self._readers[source] = reader
        return reader

    def _decode(self, index: int) -> Image.Image:
        from megastyle.data import decode_image

        source, row = (int(v) for v in self.data.rows[index])
        record = self._reader(source).get_row(row, columns=["id", "image"])
        image = record["image"] or {}
        return decode_image(image.get("bytes") or b"", item=record["id"])

    def _shrink(self, image: Image.Image) -> Image.Image:
        if self.preprocessor.config.crop_grid:  # multi-crop needs the crop source, not a thumbnail
            return self.preprocessor.crop_source(to_rgb(image))
        limit = 2 * self.preprocessor.config.image_size
        if max(image.size) > limit:
            image = image.copy()
            image.thumbnail((limit, limit), Image.Resampling.BICUBIC)
        return image

    def load_image(self, index: int) -> Image.Image:
        """The RGB image of dataset row ``index`` (a bad image is replaced by another of its style)."""
        if self._images is not None and index in self._images:
            return self._images[index]
        if index not in self.bad_rows:
            try:
                return self._decode(index)
            except ImageDecodeError as err:
                self.bad_rows[index] = str(err)
                logger.warning("skipping undecodable training image: %s", err)
        label = self.data.labels[index]
        for other in np.flatnonzero(self.data.labels == label):
            if int(other) not in self.bad_rows:
                return self.load_image(int(other))
        raise ImageDecodeError(f"every image of style {self.data.styles[label][:60]!r} is undecodable")

    def __getitem__(self, key: tuple[int, int] | int) -> tuple[torch.Tensor, int]:
        index, seed = (key, 0) if isinstance(key, int) else key
        image = self.load_image(index)
        augment = (
            None if self.augment is None else functools.partial(augment_image, config=self.augment, seed=seed)
        )
        label = index if self.label_rows else int(self.data.labels[index])
        return self.preprocessor(image, augment=augment), label

    def views(self, index: int) -> torch.Tensor:
        """(v, 3, H, W) evaluation views of row ``index`` (the grid crops in multi-crop mode)."""
        return self.preprocessor.views(self.load_image(index))


def row_captions(data: StyleRows) -> list[str]:
    """Each row's full prompt, ``"<content>. <style>"`` (rows without a content prompt: the style alone)."""
    contents: dict[int, list[Any]] = {}
    for position in sorted({int(source) for source in data.rows[:, 0]}):
        table = ShardReader(data.sources[position], columns=["content"]).read_table(columns=["content"])
        contents[position] = table.column("content").to_pylist()
    captions = []
    for (source, row), label in zip(data.rows.tolist(), data.labels.tolist(), strict=True):
        content = (contents[source][row] or "").strip().rstrip(".")
        captions.append(f"{content}. {data.styles[label]}" if content else data.styles[label])
    return captions


def collate_style_batch(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (pixel values, label) items into ``(n, 3, H, W)`` and ``(n,)`` tensors."""
    pixels = torch.stack([pixel for pixel, _ in items])
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    return pixels, labels


@torch.no_grad()
def heldout_metrics(
    encoder: torch.nn.Module, dataset: StyleImageDataset, batch_size: int = 64, max_images: int = 4096
) -> dict[str, float]:
    """Leave-one-out style retrieval on held-out images: Recall@1, mean average precision, mean cosines.

    At most ``max_images`` images: whole styles in label order, so every kept image keeps its positives.
    """
    labels_all = dataset.data.labels
    keep = np.flatnonzero(
        labels_all < np.searchsorted(np.cumsum(np.bincount(labels_all)), max_images, "right")
    )
    if len(keep) < 2:
        keep = np.arange(min(len(labels_all), max_images))
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    chunks = []
    try:
        for start in range(0, len(keep), batch_size):
            views = [dataset.views(int(i)).to(device) for i in keep[start : start + batch_size]]
            chunks.append(encoder.embed_views(views).float().cpu())
    finally:
        encoder.train(was_training)
    features = torch.cat(chunks)
    labels = torch.from_numpy(labels_all[keep])
    similarity = features @ features.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(keep), dtype=torch.bool)
    ranked = similarity.masked_fill(eye, float("-inf")).argsort(dim=1, descending=True)[:, :-1]  # self last
    hits = (labels[ranked] == labels[:, None]).float()
    precision = hits.cumsum(dim=1) / torch.arange(1, hits.shape[1] + 1)
    average_precision = (precision * hits).sum(dim=1) / hits.sum(dim=1).clamp(min=1)
    return {
        "recall_at_1": float(hits[:, 0].mean()),
        "map": float(average_precision[hits.sum(dim=1) > 0].mean()),
        "same_style_cosine": float(similarity[same & ~eye].mean()),
        "other_style_cosine": float(similarity[~same].mean()),
        "images": float(len(keep)),
    }
