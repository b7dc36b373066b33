"""The dataset card: a README.md beside the shards with counts, every stage's numbers, backends and seeds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_HEADER = """---
license: other
task_categories:
- text-to-image
- image-to-image
tags:
- style
- megastyle
configs:
- config_name: default
  data_files: "train-*.parquet"
---
"""


def _table(rows: list[tuple[str, str]]) -> str:
    lines = ["| item | value |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines)


def _flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        rows: list[tuple[str, str]] = []
        for key, inner in value.items():
            rows.extend(_flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return rows
    if isinstance(value, float):
        return [(prefix, f"{value:.4g}")]
    if isinstance(value, list) and len(value) > 12:
        return [(prefix, json.dumps(value[:12], default=str)[:-1] + ", …]")]
    return [(prefix, json.dumps(value, default=str) if isinstance(value, list | dict) else str(value))]


def write_dataset_card(
    path: str | Path,
    *,
    title: str,
    summary: Mapping[str, Any],
    stages: Mapping[str, Mapping[str, Any]],
    backends: Mapping[str, str],
    seed: int,
    config_toml: str,
) -> Path:
    """Write README.md: overview table, one table per stage, the backends, the seed and the full config."""
    path = Path(path)
    parts = [_HEADER, f"# {title}\n"]
    parts.append(
        "A style dataset in the MegaStyle-1.4M layout (`id`, `image{bytes,path}`, `content`, `style`, plus "
        "megastyle's optional columns), produced by `megastyle curate`. Rows that share a style prompt are "
        "consecutive and carry the same `style_id`.\n"
    )
    parts.append("## Summary\n\n" + _table(_flatten("", summary)) + "\n")
    parts.append("## Backends\n\n" + _table(list(backends.items())) + f"\n\nSeed: `{seed}`.\n")
    parts.append("## Stages\n")
    for name, stats in stages.items():
        parts.append(f"### {name}\n\n" + _table(_flatten("", stats)) + "\n")
    parts.append("## Configuration\n\n```toml\n" + config_toml.strip() + "\n```\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
