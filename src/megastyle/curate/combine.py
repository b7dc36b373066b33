"""Combine stage: pair every style prompt with N distinct content prompts, spreading content use evenly."""

from __future__ import annotations

from collections import deque

import numpy as np


def combine_prompts(num_styles: int, num_contents: int, per_style: int, seed: int) -> np.ndarray:
    """Content indices of shape ``(num_styles, per_style)``: no repeat within a row, usage within ±1."""
    if per_style > num_contents:
        raise ValueError(
            f"combine: {per_style} contents per style need at least {per_style} content prompts, got {num_contents}"
        )
    if num_styles < 0 or per_style < 1:
        raise ValueError(f"combine: need num_styles >= 0 and per_style >= 1, got {num_styles}, {per_style}")
    rng = np.random.default_rng(seed)
    # Draw from a stream of fresh permutations so every content is used once per round;
    # a duplicate inside one style is deferred to the next style, which keeps usage even.
    pending: deque[int] = deque()
    table = np.empty((num_styles, per_style), dtype=np.int64)
    for style in range(num_styles):
        chosen: list[int] = []
        deferred: list[int] = []
        while len(chosen) < per_style:
            if not pending:
                pending.extend(int(i) for i in rng.permutation(num_contents))
            candidate = pending.popleft()
            (deferred if candidate in chosen else chosen).append(candidate)
        pending.extendleft(reversed(deferred))
        table[style] = chosen
    return table
