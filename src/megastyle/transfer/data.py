"""Paired supervision for MegaStyle-FLUX: (target image + its content prompt, augmented reference of its style).

Every epoch each row of a style with at least two rows is the target once, in a seeded order; its reference
is a seeded random *other* row of the same style. The reference gets the official augmentation — horizontal
flip with p 0.5 and, with p 0.5, a random resized crop of area 0.8–1.0 (aspect 3/4–4/3, as torchvision's
default) — then is stretched to the training size, as the official code resizes it; the target is resized and
centre-cropped to that size. A pair is a pure function of ``(seed, epoch, position)``, so any process or
worker builds the same batch and a resumed run sees exactly the pairs an unbroken one would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from megastyle.data import ImageDecodeError, ShardReader, decode_image
from megastyle.data.augment import AugmentConfig, augment_image
from megastyle.data.styles import StyleRows, scan_styles

logger = logging.getLogger(__name__)


def stream_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (numpy SeedSequence: well mixed, platform independent)."""
    return int(
        np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1
    )


@dataclass(frozen=True)
class ReferenceAugment:
    """The official reference augmentation: flip with ``flip_p``; random resized crop with ``crop_p``."""

    flip_p: float = 0.5
    crop_p: float = 0.5
    crop_scale: tuple[float, float] = (0.8, 1.0)

    def __call__(self, image: Image.Image, seed: int) -> Image.Image:
        """Augment ``image`` with the draws of ``seed`` (same seed → same result)."""
        rng = np.random.default_rng(seed)
        crop, flip, crop_seed = (
            rng.uniform() < self.crop_p,
            rng.uniform() < self.flip_p,
            int(rng.integers(2**62)),
        )
        if crop:  # the shared RandomResizedCrop sampler of the encoder's data, without its flip
            image = augment_image(image, AugmentConfig(crop_scale=self.crop_scale, flip_p=0.0), crop_seed)
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image


def fit_target(image: Image.Image, width: int, height: int) -> Image.Image:
    """Resize (cover) and centre-crop to ``width × height``; identity when the size already matches."""
    if image.size == (width, height):
        return image
    return ImageOps.fit(image, (width, height), Image.Resampling.BICUBIC)


def fit_reference(image: Image.Image, width: int, height: int) -> Image.Image:
    """Stretch to ``width × height`` like the official reference resize."""
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.BICUBIC)


@dataclass
class PairPlan:
    """One epoch of pairs: ``targets[i]`` and ``references[i]`` index the rows of a ``StyleRows``."""

    targets: np.ndarray
    references: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


def trainable_rows(data: StyleRows, excluded: Sequence[int] = ()) -> np.ndarray:
    """Rows whose style keeps at least two usable rows (a pair needs another row of the style)."""
    usable = np.ones(len(data), dtype=bool)
    usable[np.asarray(list(excluded), dtype=np.int64)] = False
    counts = np.bincount(data.labels[usable], minlength=len(data.styles))
    return np.flatnonzero(usable & (counts[data.labels] >= 2))


def plan_epoch(data: StyleRows, rows: np.ndarray, epoch: int, seed: int) -> PairPlan:
    """Seeded order of targets for ``epoch`` and, for each, a uniformly drawn other row of its style."""
    rng = np.random.default_rng(stream_seed(seed, epoch, 0x9A1F))
    targets = rows[rng.permutation(len(rows))]
    # Group the usable rows by style: members of label l are grouped[start[l] : start[l] + count[l]].
    labels = data.labels[rows]
    grouped = rows[np.argsort(labels, kind="stable")]
    count = np.bincount(labels, minlength=len(data.styles))
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    target_labels = data.labels[targets]
    pick = rng.integers(0, count[target_labels] - 1)  # among the count - 1 others
    candidate = grouped[start[target_labels] + pick]
    last = grouped[start[target_labels] + count[target_labels] - 1]
    references = np.where(candidate == targets, last, candidate)  # the target's slot goes to the last member
    return PairPlan(targets=targets, references=references)


def batches_per_epoch(num_pairs: int, batch_size: int, world_size: int) -> int:
    """Full global batches in an epoch (the last partial batch is dropped so every process steps equally)."""
    return num_pairs // (batch_size * world_size)


def local_batch(plan: PairPlan, batch: int, batch_size: int, world_size: int, rank: int) -> list[int]:
    """Plan positions of this process' share of global batch ``batch``."""
    start = batch * batch_size * world_size + rank * batch_size
    return list(range(start, start + batch_size))


class RowImages:
    """Decoded images and content prompts of ``StyleRows`` rows; a bad image is replaced by its style's next."""

    def __init__(self, data: StyleRows, cache_row_groups: int = 4) -> None:
        self.data = data
        self.cache_row_groups = cache_row_groups
        self._readers: dict[int, ShardReader] = {}
        self.bad_rows: dict[int, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_readers"] = {}  # file handles stay in their process
        return state

    def reader(self, source: int) -> ShardReader:
        """The (lazily opened) reader of shard folder ``source``."""
        if source not in self._readers:
            self._readers[source] = ShardReader(
                self.data.sources[source],
                columns=["id", "image", "content"],
                cache_row_groups=self.cache_row_groups,
            )
        return self._readers[source]

    def row(self, index: int) -> dict[str, Any]:
        """``{"id", "image" (bytes), "content"}`` of dataset row ``index``."""
        source, row = (int(v) for v in self.data.rows[index])
        record = self.reader(source).get_row(row)
        return {
            "id": record["id"],
            "image": (record["image"] or {}).get("bytes") or b"",
            "content": record["content"],
        }

    def load(self, index: int) -> tuple[Image.Image, str, int]:
        """(RGB image, content prompt, row actually used) — another row of the style if this one is bad."""
        label = self.data.labels[index]
        candidates = [index] + [int(i) for i in np.flatnonzero(self.data.labels == label) if i != index]
        for candidate in candidates:
            if candidate in self.bad_rows:
                continue
            record = self.row(candidate)
            try:
                return decode_image(record["image"], item=record["id"]), record["content"] or "", candidate
            except ImageDecodeError as error:
                self.bad_rows[candidate] = str(error)
                logger.warning("skipping undecodable training image: %s", error)
        raise ImageDecodeError(f"every image of style {self.data.styles[label][:60]!r} is undecodable")


class PairDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """``dataset[position]`` → target/reference pixels in [0, 1] and the target's content prompt."""

    def __init__(
        self,
        images: RowImages,
        plan: PairPlan,
        *,
        width: int,
        height: int,
        augment: ReferenceAugment | None,
        seed: int,
        epoch: int,
    ) -> None:
        self.images, self.plan = images, plan
        self.width, self.height, self.augment = width, height, augment
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, position: int) -> dict[str, Any]:
        target, prompt, _ = self.images.load(int(self.plan.targets[position]))
        reference, _, _ = self.images.load(int(self.plan.references[position]))
        if self.augment is not None:
            reference = self.augment(reference, stream_seed(self.seed, self.epoch, position, 0xA0))
        return {
            "target": to_tensor(fit_target(target, self.width, self.height)),
            "reference": to_tensor(fit_reference(reference, self.width, self.height)),
            "prompt": prompt,
        }


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL → (3, H, W) float in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def collate_pairs(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of pair items."""
    return {
        "target": torch.stack([item["target"] for item in items]),
        "reference": torch.stack([item["reference"] for item in items]),
        "prompt": [item["prompt"] for item in items],
    }


def load_rows(sources: Sequence[str | Path]) -> StyleRows:
    """Every row of every style in the shard folders ``sources`` (styles merged by text), for pairing."""
    return scan_styles(sources)
