"""Style-labelled rows over shard folders: every row of every style, held-out style selection, the split.

Styles are identified by their prompt text across every shard folder given (the same text in two
folders is one style). Held-out styles — never seen in training, for the retrieval benchmark —
come from a file (style ids or style texts) and/or a seeded fraction; the encoder and the FLUX
trainers read their rows through this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from megastyle.data.index import build_style_index


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
