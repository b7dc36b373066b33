"""The Ray engine: the same stage functions as the local engine, run on a Ray cluster.

Model stages (caption, text embedding, generate) become Ray Data ``map_batches`` over an actor
pool: each actor loads its model once from the stage's factory and reserves ``num_gpus``/``num_cpus``;
``workers`` sets the pool size. Global algorithms (dedup, k-means balancing) run as one Ray task
placed where their CPUs/GPUs are. The driver receives results in input order and writes every
file itself, so the run folder, its manifests and its resume logic are the local engine's.

Fault tolerance is Ray's: Ray Data restarts an actor whose process dies and retries its batch
(its defaults ``max_restarts=-1``, ``max_task_retries=-1``); results are keyed by batch index,
so a retried batch is taken once. A failing *item* never raises: stage functions reject it.
A killed driver loses nothing written: ``--resume`` continues from the stage manifests.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from pydantic import Field

from megastyle.config import CommandConfig
from megastyle.curate.executor.base import ResourceFactory, StageFn, WorkerSpec

ResultT = TypeVar("ResultT")
log = logging.getLogger(__name__)


class RaySettings(CommandConfig):
    """Where the Ray engine runs and what its global tasks reserve."""

    address: str | None = Field(
        None,
        description="None: start a local cluster; 'auto': join this node's cluster; 'ray://host:10001': Ray Client.",
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a started local cluster (default: all).")
    num_gpus: int | None = Field(None, ge=0, description="GPUs of a started local cluster (default: all).")
    object_store_memory: int | None = Field(None, ge=78_643_200, description="Object store bytes (local).")
    node_ip_address: str | None = Field(
        None, description="IP a started local cluster binds to (e.g. 127.0.0.1 for a machine-local one)."
    )
    namespace: str | None = Field(None, description="Ray namespace of the job.")
    runtime_env: dict[str, Any] = Field(
        default_factory=dict, description="Ray runtime_env (e.g. pip, env_vars) for the workers."
    )
    dedup_cpus: float = Field(1.0, gt=0, description="CPUs reserved by the exact/fuzzy/semantic dedup task.")
    balance_cpus: float = Field(1.0, gt=0, description="CPUs reserved by the k-means balance task.")
    balance_gpus: float = Field(0.0, ge=0, description="GPUs reserved by the k-means balance task.")
    shutdown: bool = Field(True, description="Shut down a local cluster this run started when it ends.")


def _dumps(value: Any) -> bytes:
    # Batches and results travel between this job's own processes only (never a file read back).
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


class _StageActor:
    """One Ray Data actor: loads the stage's resource once, then runs the stage function per batch."""

    def __init__(self, fn: StageFn, factory: ResourceFactory | None) -> None:
        self.fn = fn
        self.resource = factory() if factory is not None else None

    def __call__(self, rows: dict[str, Any]) -> dict[str, Any]:
        results = [_dumps(self.fn(pickle.loads(p), self.resource)) for p in rows["payload"]]
        return {"index": rows["index"], "result": results}


def _bound_actor(fn: StageFn, factory: ResourceFactory | None) -> type:
    """An actor class with ``fn`` and ``factory`` built in.

    Constructor arguments would live in the object store, and a restarted actor cannot rebuild
    itself once they are gone (ray-project/ray#53727); a class carries them in its own definition.
    """

    class BoundStageActor(_StageActor):
        def __init__(self) -> None:
            super().__init__(fn, factory)

    return BoundStageActor


class RayEngine:
    """Maps stage functions with Ray Data actor pools; runs global stages as Ray tasks."""

    name = "ray"

    def __init__(self, settings: RaySettings | None = None, default_workers: int = 1) -> None:
        self.settings = settings or RaySettings()
        self.default_workers = default_workers
        self._started_cluster = False

    # ------------------------------------------------------------ cluster

    def connect(self) -> None:
        """Join the configured cluster, or start a local one, once per engine."""
        s = self.settings
        if s.address is None and s.node_ip_address in LOOPBACK:
            _keep_on_loopback()
        import ray

        if ray.is_initialized():
            return
        common: dict[str, Any] = {
            "namespace": s.namespace,
            "runtime_env": s.runtime_env or None,
            "logging_level": logging.WARNING,
            "log_to_driver": True,
        }
        if s.address is None:
            local = {"num_cpus": s.num_cpus, "num_gpus": s.num_gpus, "object_store_memory": s.object_store_memory,
                     "include_dashboard": False}  # fmt: skip
            if s.node_ip_address:
                local["_node_ip_address"] = s.node_ip_address
            ray.init(**common, **local)
            self._started_cluster = True
        else:
            ray.init(address=s.address, **common)
        from ray.data import DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False  # the pipeline draws its own, one per stage
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)

    def close(self) -> None:
        """Shut down the local cluster this engine started (clusters it joined stay up)."""
        import ray

        if self._started_cluster and self.settings.shutdown and ray.is_initialized():
            ray.shutdown()
        self._started_cluster = False

    # ------------------------------------------------------------ work

    def map_batches(
        self,
        fn: StageFn,
        batches: Sequence[Any],
        resource_factory: ResourceFactory | None = None,
        spec: WorkerSpec | None = None,
    ) -> Iterator[Any]:
        """Yield ``fn(batch, resource)`` per batch in input order, computed by an actor pool."""
        if not batches:
            return
        import ray.data

        self.connect()
        spec = spec or WorkerSpec()
        workers = min(spec.workers or self.default_workers, len(batches))
        rows = [{"index": i, "payload": _dumps(batch)} for i, batch in enumerate(batches)]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _bound_actor(fn, resource_factory),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=spec.num_cpus,
            num_gpus=spec.num_gpus or None,
        )
        yield from _in_order(
            ((row["index"], row["result"]) for row in dataset.iter_rows()), len(batches), pickle.loads
        )

    def run_task(self, fn: Callable[..., ResultT], *args: Any, spec: WorkerSpec | None = None) -> ResultT:
        """``fn(*args)`` as one Ray task reserving ``spec``'s CPUs and GPUs (retried if its worker dies)."""
        import ray

        self.connect()
        spec = spec or WorkerSpec()
        remote = ray.remote(fn).options(num_cpus=spec.num_cpus, num_gpus=spec.num_gpus, max_retries=3)
        return ray.get(remote.remote(*args))


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _keep_on_loopback() -> None:
    """Let a local cluster bind to 127.0.0.1: Ray otherwise swaps a loopback address for the LAN one."""
    # Ray's single-node mode (its switch for laptops) keeps every address on loopback; the
    # environment variable reaches the processes the cluster starts, the attribute this one.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if "ray" in sys.modules:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False


def _in_order(
    results: Iterator[tuple[int, bytes]], count: int, decode: Callable[[bytes], Any]
) -> Iterator[Any]:
    """Yield decoded results by index 0..count-1 as soon as each prefix is complete; a repeat is dropped."""
    pending: dict[int, bytes] = {}
    next_index = 0
    for index, payload in results:
        index = int(index)
        if index < next_index or index in pending:
            log.warning("ray engine: batch %d arrived twice (a retried task); keeping the first", index)
            continue
        pending[index] = payload
        while next_index in pending:
            yield decode(pending.pop(next_index))
            next_index += 1
    if next_index != count:
        missing = sorted(set(range(next_index, count)) - set(pending))
        raise RuntimeError(
            f"ray engine: {len(missing)} of {count} batches never came back (first: {missing[:5]})"
        )
