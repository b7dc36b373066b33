"""Run state on disk: stage manifests, atomic files and resumable parts.

Every file a stage leaves is written atomically (``data.atomic``), and a stage's ``manifest.json``
is written last: a stage with a manifest is complete; a stage without one is redone from its
completed parts. That is what makes ``kill -9`` at any moment safe to resume.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from megastyle.data import Reject, atomic_write_bytes, atomic_write_json


def fingerprint(payload: Any) -> str:
    """A short stable digest of a JSON-able payload (config sections, inputs)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StageDir:
    """One stage's folder: outputs, numbered parts, rejects and the completion manifest."""

    def __init__(self, root: Path, name: str, key: str) -> None:
        self.path = root / "stages" / name
        self.name = name
        self.key = key  # fingerprint of the stage's config and inputs

    @property
    def manifest_path(self) -> Path:
        """Where the completion manifest lives."""
        return self.path / "manifest.json"

    def is_done(self) -> bool:
        """True when this stage finished with the same key (config and inputs)."""
        if not self.manifest_path.exists():
            return False
        manifest = json.loads(self.manifest_path.read_text())
        return manifest.get("key") == self.key

    def prepare(self) -> None:
        """Create the folder; outputs of a different key are stale and removed."""
        self.path.mkdir(parents=True, exist_ok=True)
        key_file = self.path / "key"
        if key_file.exists() and key_file.read_text() != self.key:
            for child in self.path.rglob("*"):
                if child.is_file():
                    child.unlink()
        atomic_write_bytes(key_file, self.key.encode())

    def finish(self, stats: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest that marks the stage complete."""
        manifest = {"stage": self.name, "key": self.key, "finished_at": time.time(), "stats": stats}
        atomic_write_json(self.manifest_path, manifest)
        return manifest

    def stats(self) -> dict[str, Any]:
        """The stats recorded by ``finish``."""
        return json.loads(self.manifest_path.read_text())["stats"]

    def part_path(self, index: int) -> Path:
        """Path of numbered part ``index`` (a Parquet file)."""
        return self.path / "parts" / f"part-{index:05d}.parquet"

    def rejects_path(self, index: int | None = None) -> Path:
        """Rejects of the whole stage, or of one part."""
        if index is None:
            return self.path / "rejects.jsonl"
        return self.path / "parts" / f"part-{index:05d}.rejects.jsonl"


def write_rejects(path: Path, rejects: Iterable[Reject]) -> None:
    """Write rejects as JSON lines atomically (an empty file when there are none)."""
    atomic_write_bytes(path, "".join(r.to_json() + "\n" for r in rejects).encode())


def read_rejects(path: Path) -> list[Reject]:
    """Read a rejects JSONL file; a missing file means no rejects."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [Reject(row["item"], row["cause"]) for row in rows]
