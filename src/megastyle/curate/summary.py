"""A curate run in words: each stage's numbers as one sentence, the rejects grouped by cause.

Read by the quickstart's report and the app's dataset explorer from a run folder's ``summary.json``
and ``rejects.jsonl``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _kinds(stats: Mapping[str, Any], describe: Any) -> str:
    return "; ".join(f"{kind}: {describe(stats[kind])}" for kind in ("style", "content") if kind in stats)


def stage_sentence(name: str, stats: Mapping[str, Any]) -> str:
    """One readable line for a curate stage's numbers."""
    if name == "ingest":
        return _kinds(stats, lambda s: f"{s['items']} items read, {s['rejected']} rejected")
    if name == "caption":
        return _kinds(stats, lambda s: f"{s['captioned']} captioned, {s['failed']} failed ({s['backend']})")
    if name == "dedup":
        return _kinds(
            stats,
            lambda s: (
                f"{s['input']} → {s['kept']} kept (removed: "
                + ", ".join(f"{step} {n}" for step, n in s["removed"].items())
                + ")"
            ),
        )
    if name == "balance":
        return _kinds(
            stats,
            lambda s: (
                f"{s['n_input']} → {s['n_selected']} selected over {s['ks'][-1] if s['ks'] else 1} "
                f"clusters (largest cluster share {s['before']['largest_share']:.2f} → {s['after']['largest_share']:.2f})"
            ),
        )
    if name == "combine":
        low, high = stats["content_uses_min_max"]
        return (
            f"{stats['styles']} styles × {stats['pairs'] // max(stats['styles'], 1)} contents = {stats['pairs']} "
            f"pairs; each of {stats['contents']} contents used {low}–{high} times"
        )
    if name == "generate":
        return (
            f"{stats['rendered']} of {stats['planned']} images rendered by '{stats['backend']}' at "
            f"{stats['image_size']}², {stats['rejected']} rejected"
        )
    if name == "filter":
        if not stats.get("enabled"):
            return "off (every style kept)"
        return f"{stats['styles']} styles scored with {stats['embedder']}, {stats['dropped']} dropped"
    if name == "write":
        return f"{stats['rows']} rows of {stats['styles']} styles in {stats['shards']} shards"
    return json.dumps(stats, default=str)[:200]


def reject_cause(cause: str) -> str:
    """The kind of a reject: its stage and the cause without the item's own details."""
    head, _, rest = cause.partition(": ")
    detail = rest.split(": ")[-1] if rest else ""
    return f"{head}: {detail}" if detail else head


def read_run_rejects(run_dir: Path) -> list[dict[str, str]]:
    """Every rejected item of a run folder (``rejects.jsonl``), as dicts with item and cause."""
    path = run_dir / "rejects.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def rejects_by_cause(rejects: list[dict[str, str]]) -> list[tuple[str, int]]:
    """(cause, count) pairs, most frequent first."""
    return Counter(reject_cause(r["cause"]) for r in rejects).most_common()


def read_run_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``summary.json`` (stage numbers and seconds), or None for a run that never finished."""
    path = run_dir / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
