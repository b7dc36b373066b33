"""Pytest fixtures for the tiny models; enable with ``pytest_plugins = ["megastyle.testing.fixtures"]``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from megastyle.testing.cache import tiny_model_dir


@pytest.fixture(scope="session")
def tiny_models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory per test session that holds every tiny model built during it."""
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_model(tiny_models_root: Path) -> Callable[..., Path]:
    """``tiny_model("flux")`` → the session's tiny FLUX directory (built on first request)."""

    def get(kind: str, *, seed: int = 0) -> Path:
        """Build (once) and return the tiny ``kind`` model directory for ``seed``."""
        return tiny_model_dir(kind, tiny_models_root, seed=seed)

    return get
