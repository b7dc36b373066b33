"""The caption batch function, kept free of heavy imports: Ray actors unpickle it by module path."""

from __future__ import annotations

from typing import Any

from megastyle.curate.items import Caption, PoolItem


def caption_batch(batch: list[tuple[str, PoolItem]], captioner: Any) -> list[Caption]:
    """One ``Caption`` per ``(kind, item)``; failures are recorded, never raised. A batch holds one kind."""
    kinds = {kind for kind, _ in batch}
    if len(kinds) > 1:
        raise ValueError(f"caption_batch: a batch mixes prompt kinds {sorted(kinds)}")
    return captioner.caption([item for _, item in batch], batch[0][0]) if batch else []
