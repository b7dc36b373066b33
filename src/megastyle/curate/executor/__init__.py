"""Execution engines of ``megastyle curate``: the same stage functions on a local process pool or on Ray."""

from __future__ import annotations

from typing import Any

from megastyle.curate.executor.base import Engine, ResourceFactory, StageFn, WorkerSpec, map_parts
from megastyle.curate.executor.local import LocalEngine


def make_engine(name: str, workers: int = 1, ray: Any = None) -> Engine:
    """The engine called ``name``: ``local`` (process pool) or ``ray`` (``ray`` holds its settings)."""
    if name == "local":
        return LocalEngine(workers)
    if name == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ValueError("engine 'ray' needs Ray: pip install 'megastyle[ray]' (ray[data]) on every node")
        from megastyle.curate.executor.ray import RayEngine, RaySettings

        return RayEngine(ray if ray is not None else RaySettings(), default_workers=workers)
    raise ValueError(f"unknown engine {name!r}; known: local, ray")


__all__ = ["Engine", "LocalEngine", "ResourceFactory", "StageFn", "WorkerSpec", "make_engine", "map_parts"]
