"""The local engine: stage functions mapped over a process pool on this machine, one resource per process."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from megastyle.curate.executor.base import ResourceFactory, StageFn, WorkerSpec

ResultT = TypeVar("ResultT")

_WORKER_RESOURCES: dict[int, Any] = {}


def _init_worker(key: int, factory: ResourceFactory | None) -> None:
    _WORKER_RESOURCES[key] = factory() if factory is not None else None


def _call_in_worker(key: int, fn: StageFn, batch: Any) -> Any:
    return fn(batch, _WORKER_RESOURCES[key])


class LocalEngine:
    """A process pool on this machine; one worker runs in-process (easiest to debug)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"local engine: workers must be >= 1, got {workers}")
        self.workers = workers

    def map_batches(
        self,
        fn: StageFn,
        batches: Sequence[Any],
        resource_factory: ResourceFactory | None = None,
        spec: WorkerSpec | None = None,
    ) -> Iterator[Any]:
        """Yield ``fn(batch, resource)`` per batch, in order; resources load once per process."""
        if not batches:
            return
        workers = min(spec.workers if spec and spec.workers else self.workers, len(batches))
        if workers == 1:
            resource = resource_factory() if resource_factory is not None else None
            for batch in batches:
                yield fn(batch, resource)
            return
        key = id(fn) ^ id(resource_factory)
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(key, resource_factory)) as pool:
            yield from pool.map(_call_in_worker, [key] * len(batches), [fn] * len(batches), batches)

    def run_task(self, fn: Callable[..., ResultT], *args: Any, spec: WorkerSpec | None = None) -> ResultT:
        """``fn(*args)`` in this process."""
        return fn(*args)

    def close(self) -> None:
        """Nothing to release: each pool ends with its ``map_batches`` call."""
