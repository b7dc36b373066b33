"""``tiny_model_dir`` builds once per root and kind; ``random_images`` is deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import megastyle.testing
from megastyle.testing import TINY_MODEL_KINDS, random_images, tiny_model_dir
from megastyle.testing import cache as cache_module


def test_builds_once_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tiny_model_dir("siglip", tmp_path)
    assert (first / "config.json").is_file() and (first / "model.safetensors").is_file()
    stamp = (first / "model.safetensors").stat().st_mtime_ns

    def fail(*_: object) -> dict[str, object]:
        raise AssertionError("rebuilt an already cached model")

    monkeypatch.setattr(cache_module, "_builders", lambda: dict.fromkeys(TINY_MODEL_KINDS, fail))
    assert tiny_model_dir("siglip", tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch left behind


def test_seeds_get_separate_directories(tmp_path: Path) -> None:
    assert tiny_model_dir("clip", tmp_path, seed=0) != tiny_model_dir("clip", tmp_path, seed=1)


def test_unknown_kind_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tiny model kind"):
        tiny_model_dir("stable-diffusion", tmp_path)


def test_env_var_sets_default_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGASTYLE_TINY_MODELS_DIR", str(tmp_path / "cache"))
    assert tiny_model_dir("clip").parent == tmp_path / "cache"


def test_random_images_are_deterministic() -> None:
    a, b = random_images(2, (40, 24), seed=3), random_images(2, (40, 24), seed=3)
    assert [im.size for im in a] == [(40, 24), (40, 24)] and a[0].mode == "RGB"
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(a[1]))


def test_lazy_exports_resolve() -> None:
    for name in megastyle.testing.__all__:
        assert getattr(megastyle.testing, name) is not None
    with pytest.raises(AttributeError):
        _ = megastyle.testing.no_such_builder  # type: ignore[attr-defined]
