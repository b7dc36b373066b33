"""The encoder's training data: style-labelled rows (``data.styles``) decoded, augmented
(``data.augment``) and preprocessed into tensors, plus the held-out evaluation.

The split is written next to the run so the benchmark can use exactly the same held-out styles.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import torch
from PIL import Image

from megastyle.data import ImageDecodeError, ShardReader, to_rgb
from megastyle.data.augment import AugmentConfig, augment_image
from megastyle.data.styles import StyleRows
from megastyle.encode.images import ImagePreprocessor, PreprocessConfig

logger = logging.getLogger(__name__)


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
