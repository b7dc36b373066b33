"""What every execution engine is: how stage functions are mapped over batches.

A stage function has the shape ``fn(batch, resource) -> result``; ``resource`` is what a worker
loads once (a captioner, a text embedder, a text-to-image backend) from a picklable factory. The
local engine (``local``) runs it in a process pool, one resource per process, and yields results
in input order; the Ray engine (``ray``) maps the same function with a Ray Data actor pool. Global
algorithms (dedup, k-means balancing) run through ``run_task``: in-process here, as one Ray task
with its own CPU/GPU request there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

BatchT = TypeVar("BatchT")
ResultT = TypeVar("ResultT")

StageFn = Callable[[Any, Any], Any]
ResourceFactory = Callable[[], Any]


@dataclass(frozen=True)
class WorkerSpec:
    """Who runs a stage: how many workers (processes or actors) and what each one reserves."""

    workers: int | None = None  # None: the engine's default
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError(f"num_cpus and num_gpus must be >= 0, got {self.num_cpus}, {self.num_gpus}")


class Engine(Protocol):
    """Maps a stage function over batches, in order, with one resource per worker."""

    name: str

    def map_batches(
        self,
        fn: StageFn,
        batches: Sequence[Any],
        resource_factory: ResourceFactory | None = None,
        spec: WorkerSpec | None = None,
    ) -> Iterator[Any]:
        """Yield ``fn(batch, resource)`` for each batch, in input order."""
        ...

    def run_task(self, fn: Callable[..., ResultT], *args: Any, spec: WorkerSpec | None = None) -> ResultT:
        """``fn(*args)`` as one unit of work (a global algorithm), with ``spec``'s CPUs/GPUs."""
        ...

    def close(self) -> None:
        """Release what the engine started (pools, a local cluster)."""
        ...


def map_parts(
    engine: Engine,
    fn: StageFn,
    parts: Sequence[tuple[int, Sequence[Any]]],
    batch_size: int,
    resource_factory: ResourceFactory | None = None,
    on_batch: Callable[[int], None] | None = None,
    spec: WorkerSpec | None = None,
) -> Iterator[tuple[int, list[Any]]]:
    """Map ``fn`` over every batch of every part in one engine call; yield ``(part, results)``.

    Parts are the unit of resume (each becomes one file); a single call keeps one worker pool,
    and one loaded model per worker, for the whole stage instead of one per part. ``on_batch``
    receives each finished batch's size (for progress bars).
    """
    batches: list[Sequence[Any]] = []
    owners: list[int] = []
    for position, (_, items) in enumerate(parts):
        for start in range(0, len(items), batch_size):
            batches.append(items[start : start + batch_size])
            owners.append(position)
    remaining = [0] * len(parts)
    for owner in owners:
        remaining[owner] += 1
    collected: list[list[Any]] = [[] for _ in parts]
    results = engine.map_batches(fn, batches, resource_factory, spec)
    for owner, batch, result in zip(owners, batches, results, strict=True):
        collected[owner].append(result)
        remaining[owner] -= 1
        if on_batch is not None:
            on_batch(len(batch))
        if remaining[owner] == 0:
            yield parts[owner][0], collected[owner]
            collected[owner] = []
