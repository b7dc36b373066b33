"""Execution engines: how stage functions are mapped over batches.

A stage function has the shape ``fn(batch, resource) -> result``; ``resource`` is what a worker
loads once (a captioner, a text-to-image backend) from a picklable factory. The local engine
runs it in a process pool, one resource per process, and yields results in input order; a Ray
engine maps the same function with an actor pool (one resource per actor).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

BatchT = TypeVar("BatchT")
ResultT = TypeVar("ResultT")

StageFn = Callable[[Any, Any], Any]
ResourceFactory = Callable[[], Any]


class Engine(Protocol):
    """Maps a stage function over batches, in order, with one resource per worker."""

    name: str

    def map_batches(
        self, fn: StageFn, batches: Sequence[Any], resource_factory: ResourceFactory | None = None
    ) -> Iterator[Any]:
        """Yield ``fn(batch, resource)`` for each batch, in input order."""
        ...


_WORKER_RESOURCES: dict[int, Any] = {}


def _init_worker(key: int, factory: ResourceFactory | None) -> None:
    _WORKER_RESOURCES[key] = factory() if factory is not None else None


def _call_in_worker(key: int, fn: StageFn, batch: Any) -> Any:
    return fn(batch, _WORKER_RESOURCES[key])


class LocalEngine:
    """A process pool on this machine; ``workers=1`` runs in-process (easiest to debug)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"local engine: workers must be >= 1, got {workers}")
        self.workers = workers

    def map_batches(
        self, fn: StageFn, batches: Sequence[Any], resource_factory: ResourceFactory | None = None
    ) -> Iterator[Any]:
        """Yield ``fn(batch, resource)`` per batch, in order; resources load once per process."""
        if not batches:
            return
        if self.workers == 1 or len(batches) == 1:
            resource = resource_factory() if resource_factory is not None else None
            for batch in batches:
                yield fn(batch, resource)
            return
        key = id(fn) ^ id(resource_factory)
        workers = min(self.workers, len(batches))
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(key, resource_factory)) as pool:
            yield from pool.map(_call_in_worker, [key] * len(batches), [fn] * len(batches), batches)


def make_engine(name: str, workers: int = 1, **options: Any) -> Engine:
    """The engine called ``name`` (``local``; ``ray`` arrives with the cluster engine)."""
    if name == "local":
        return LocalEngine(workers)
    raise ValueError(f"unknown engine {name!r}; known: local")


def map_parts(
    engine: Engine,
    fn: StageFn,
    parts: Sequence[tuple[int, Sequence[Any]]],
    batch_size: int,
    resource_factory: ResourceFactory | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, list[Any]]]:
    """Map ``fn`` over every batch of every part in one engine call; yield ``(part, results, items)``.

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
    results = engine.map_batches(fn, batches, resource_factory)
    for owner, batch, result in zip(owners, batches, results, strict=True):
        collected[owner].append(result)
        remaining[owner] -= 1
        if on_batch is not None:
            on_batch(len(batch))
        if remaining[owner] == 0:
            yield parts[owner][0], collected[owner]
            collected[owner] = []
