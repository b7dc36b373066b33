"""A controlled content-leakage test: every style rendered with every content, scored by matched leakage.

A dataset gives each style only a few contents (MegaStyle: 8 of 400K), so few pairs of styles share
a content and the leakage measure is noisy. With the text-to-image backend at hand, the grid renders
each of S styles with each of C contents: every pair of styles shares all C contents, which gives
S(S−1)/2 · C same-content pairs, each matched against the other contents of its two styles. The
styles should be ones no encoder under test was trained on (the quickstart uses its held-out styles).

Rendering is a plain function over batches of requests (``render_grid``), so a Ray pipeline can run
the same code; seeds depend on (seed, style index, content index) only, so a grid is reproducible and
any cell can be re-rendered alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from megastyle.bench.dataset_quality import DatasetQuality, measure_encoders
from megastyle.bench.encoders import Embedder
from megastyle.bench.leakage import MatchedLeakage
from megastyle.curate.generators.base import GenerationRequest, TextToImageBackend
from megastyle.progress import track
from megastyle.prompts.vocabulary import stable_hash


@dataclass
class LeakageGrid:
    """Rendered grid images with the style and content index of each."""

    images: list[Image.Image]
    styles: np.ndarray
    contents: np.ndarray


def grid_requests(
    styles: Sequence[str], contents: Sequence[str], *, size: int, seed: int = 0
) -> list[GenerationRequest]:
    """One request per (style, content), style-major; seeds from (seed, style index, content index)."""
    if not styles or not contents:
        raise ValueError(f"a leakage grid needs styles and contents (got {len(styles)} and {len(contents)})")
    for kind, texts in (("style", styles), ("content", contents)):
        if len(set(texts)) != len(texts):
            raise ValueError(f"leakage grid: {kind} prompts repeat")
        empty = [i for i, text in enumerate(texts) if not text.strip()]
        if empty:
            raise ValueError(f"leakage grid: {kind} prompt #{empty[0]} is empty")
    return [
        GenerationRequest(s, c, stable_hash(f"{seed}/{i}/{j}", "leakage-grid") % (2**31), size)
        for i, s in enumerate(styles)
        for j, c in enumerate(contents)
    ]


def render_grid(
    backend: TextToImageBackend,
    styles: Sequence[str],
    contents: Sequence[str],
    *,
    size: int,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> LeakageGrid:
    """Render every style with every content through ``backend``, in batches."""
    requests = grid_requests(styles, contents, size=size, seed=seed)
    images: list[Image.Image] = []
    with track("leakage grid: render", len(requests), enabled=progress) as bar:
        for start in range(0, len(requests), batch_size):
            images.extend(backend.generate(requests[start : start + batch_size]))
            bar.advance(len(requests[start : start + batch_size]))
    if len(images) != len(requests):
        raise RuntimeError(
            f"{type(backend).__name__} returned {len(images)} images for {len(requests)} requests"
        )
    index = np.arange(len(requests))
    return LeakageGrid(images, index // len(contents), index % len(contents))


def grid_leakage(
    grid: LeakageGrid,
    encoders: Mapping[str, Embedder],
    *,
    seed: int = 0,
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[dict[str, DatasetQuality], dict[str, MatchedLeakage]]:
    """Dataset quality (with the global AUC) and matched leakage of each encoder on the grid."""
    return measure_encoders(
        grid.images, grid.styles, grid.contents, encoders, seed=seed, batch_size=batch_size, progress=progress
    )
