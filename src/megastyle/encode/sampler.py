"""P×K batch sampler: every global batch holds K images of each of P distinct styles.

One epoch, from a generator seeded by ``(seed, epoch)``:

* each style's rows are shuffled and cut into *groups* of K. A last, partial group is topped up
  with other rows of the same style (drawn without replacement from the rows not already in it),
  so every image is seen at least once per epoch. A style with fewer than K rows in total is
  handled by ``small_styles``: ``"replace"`` fills its single group by drawing its rows with
  replacement; ``"skip"`` leaves the style out.
* batches are built one at a time: P distinct styles are drawn without replacement, with
  probability proportional to the groups each still has left (so big styles are spread over the
  epoch rather than piled at its end), and each gives its next group. The epoch ends when fewer
  than P styles have groups left; those leftovers are dropped (they differ from epoch to epoch).
* with ``neighbour_share`` > 0 and per-style embeddings (the style prompts' text embeddings), each
  batch is built around its first style: that share of the other P − 1 places goes to the first
  style's nearest styles (cosine) that still have groups left, the rest is drawn as above. Random
  batches of a few styles out of many rarely hold two styles that look alike, so once the easy
  pairs are apart the loss has little left to teach; neighbour batches keep the look-alikes meeting
  (hard-negative classes, as in metric learning's class-level mining).

The batch list is a pure function of ``(labels, P, K, seed, epoch)`` (and the style embeddings
with neighbour batches), so every rank computes the same one. With ``world_size > 1`` each global
batch is split by style groups: rank ``r`` takes the groups ``[r·P/W, (r+1)·P/W)``, i.e. ``P/W``
styles × K images, and the loss sees the whole global batch after the features are gathered. The
effective batch is ``P·K`` whatever the world size.

Each item is ``(row, augmentation_seed)``: the seed is derived from ``(seed, epoch, batch, slot)``
so augmentations are reproducible whichever worker process decodes the image (exact resume).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np

SmallStyles = Literal["replace", "skip"]
SampleKey = tuple[int, int]  # (row index into the dataset, augmentation seed)


class PKBatchSampler:
    """Yields this rank's part of each P×K batch as a list of ``(row, augmentation_seed)``."""

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        styles_per_batch: int,
        images_per_style: int,
        *,
        seed: int = 0,
        small_styles: SmallStyles = "replace",
        world_size: int = 1,
        rank: int = 0,
        style_embeddings: np.ndarray | None = None,
        neighbour_share: float = 0.0,
    ) -> None:
        if styles_per_batch < 1 or images_per_style < 1:
            raise ValueError(f"P and K must be ≥ 1, got P={styles_per_batch}, K={images_per_style}")
        if small_styles not in ("replace", "skip"):
            raise ValueError(f"small_styles must be 'replace' or 'skip', got {small_styles!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid rank {rank} for world_size {world_size}")
        if styles_per_batch % world_size:
            raise ValueError(
                f"styles_per_batch {styles_per_batch} must be divisible by world_size {world_size} "
                "(each rank takes an equal share of every batch's styles)"
            )
        if not 0.0 <= neighbour_share <= 1.0:
            raise ValueError(f"neighbour_share must be in [0, 1], got {neighbour_share}")
        if neighbour_share > 0 and style_embeddings is None:
            raise ValueError("neighbour_share > 0 needs style_embeddings (one row per style label)")
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.ndim != 1:
            raise ValueError("labels must be one-dimensional")
        self.neighbour_share = neighbour_share
        self.styles_per_batch = styles_per_batch
        self.images_per_style = images_per_style
        self.seed = seed
        self.small_styles: SmallStyles = small_styles
        self.world_size = world_size
        self.rank = rank
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out (for exact resume)
        order = np.argsort(self.labels, kind="stable")
        _, starts = np.unique(self.labels[order], return_index=True)
        self._style_rows = [np.sort(rows) for rows in np.split(order, starts[1:])] if len(order) else []
        self._cached_epoch: tuple[int, list[list[int]]] | None = None
        self._neighbours = (
            self._neighbour_order(style_embeddings)
            if neighbour_share > 0 and style_embeddings is not None
            else None
        )
        usable = sum(
            1 for rows in self._style_rows if len(rows) >= images_per_style or small_styles == "replace"
        )
        if usable < styles_per_batch:
            raise ValueError(
                f"only {usable} styles can give {images_per_style} images (small_styles={small_styles!r}), "
                f"but a batch needs {styles_per_batch} distinct styles"
            )

    def _neighbour_order(self, style_embeddings: np.ndarray) -> np.ndarray:
        """For each style (sampler order), the other styles from nearest to farthest by cosine."""
        values = np.unique(self.labels)
        table = np.asarray(style_embeddings, dtype=np.float64)
        if table.ndim != 2 or (len(values) and (values.min() < 0 or values.max() >= len(table))):
            raise ValueError(
                f"style_embeddings must be a 2-D table with a row per style label; got shape {table.shape} "
                f"for labels up to {values.max() if len(values) else None}"
            )
        rows = table[values]
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        if (norms == 0).any():
            raise ValueError("style_embeddings has an all-zero row: its style has no direction to be near")
        rows = rows / norms
        similarity = rows @ rows.T
        np.fill_diagonal(similarity, -np.inf)
        # Stable sort on the negated similarity: ties keep label order, so the order is reproducible.
        return np.argsort(-similarity, axis=1, kind="stable")[:, :-1]

    def _draw_styles(self, rng: np.random.Generator, left: np.ndarray) -> np.ndarray:
        p = self.styles_per_batch
        if self._neighbours is None:
            return rng.choice(len(left), size=p, replace=False, p=left / left.sum())
        first = int(rng.choice(len(left), p=left / left.sum()))
        wanted = round(self.neighbour_share * (p - 1))
        order = self._neighbours[first]
        near = order[left[order] > 0][:wanted]
        rest_left = left.copy()
        rest_left[first] = 0
        rest_left[near] = 0
        missing = p - 1 - len(near)
        rest = (
            rng.choice(len(left), size=missing, replace=False, p=rest_left / rest_left.sum())
            if missing
            else np.zeros(0, dtype=np.int64)
        )
        return np.concatenate([[first], near, rest]).astype(np.int64)

    @property
    def batch_size(self) -> int:
        """Images per global batch (P·K)."""
        return self.styles_per_batch * self.images_per_style

    @property
    def local_batch_size(self) -> int:
        """Images this rank gets per batch."""
        return self.batch_size // self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields (from its first batch)."""
        self.epoch = epoch
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        """Epoch and position within it: enough to resume exactly (the rest is the constructor's)."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore ``state_dict``; the next iteration continues at the saved batch."""
        if int(state["seed"]) != self.seed:
            raise ValueError(
                f"checkpoint sampler seed {state['seed']} differs from the configured {self.seed}"
            )
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])

    def _groups(self, rng: np.random.Generator) -> list[list[np.ndarray]]:
        k = self.images_per_style
        groups: list[list[np.ndarray]] = []
        for rows in self._style_rows:
            if len(rows) < k:
                if self.small_styles == "skip":
                    groups.append([])
                    continue
                groups.append([rng.choice(rows, size=k, replace=True)])
                continue
            shuffled = rng.permutation(rows)
            style_groups = [shuffled[i : i + k] for i in range(0, len(shuffled) - k + 1, k)]
            rest = shuffled[len(style_groups) * k :]
            if len(rest):
                others = shuffled[: len(style_groups) * k]
                fill = rng.choice(others, size=k - len(rest), replace=False)
                style_groups.append(np.concatenate([rest, fill]))
            groups.append(style_groups)
        return groups

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every global batch of ``epoch`` as P·K rows, grouped by style (K consecutive rows each)."""
        if self._cached_epoch is not None and self._cached_epoch[0] == epoch:
            return self._cached_epoch[1]
        rng = np.random.default_rng([self.seed, epoch])
        groups = self._groups(rng)
        left = np.array([len(g) for g in groups], dtype=np.int64)
        taken = np.zeros(len(groups), dtype=np.int64)
        batches: list[list[int]] = []
        p = self.styles_per_batch
        while int((left > 0).sum()) >= p:
            styles = self._draw_styles(rng, left)
            batch: list[int] = []
            for style in styles:
                batch.extend(int(r) for r in groups[style][taken[style]])
                taken[style] += 1
                left[style] -= 1
            batches.append(batch)
        self._cached_epoch = (epoch, batches)
        return batches

    def __len__(self) -> int:
        """Batches in the current epoch (depends on the epoch's draws only through its leftovers)."""
        return len(self.epoch_batches(self.epoch))

    def _keys(self, batch_index: int, rows: list[int]) -> list[SampleKey]:
        per_rank = self.local_batch_size
        mine = rows[self.rank * per_rank : (self.rank + 1) * per_rank]
        seeds = np.random.default_rng([self.seed, self.epoch, batch_index, 1]).integers(
            0, 2**31 - 1, size=len(rows)
        )
        offset = self.rank * per_rank
        return [(row, int(seeds[offset + slot])) for slot, row in enumerate(mine)]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        """This rank's keys of the current epoch's batches, from ``position`` on.

        ``position`` advances as batches are *yielded*; a DataLoader prefetches ahead, so a trainer
        should checkpoint the number of batches it has *consumed* and restore that instead.
        """
        batches = self.epoch_batches(self.epoch)
        while self.position < len(batches):
            index = self.position
            self.position += 1  # advance first: a checkpoint taken after this batch resumes after it
            yield self._keys(index, batches[index])


def batch_labels(labels: Sequence[int] | np.ndarray, keys: Sequence[SampleKey]) -> np.ndarray:
    """Style labels of a batch of sampler keys."""
    values = np.asarray(labels, dtype=np.int64)
    return values[[row for row, _ in keys]]
