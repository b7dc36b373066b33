"""Build each tiny model directory once per cache root and hand back the same path afterwards."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from megastyle.testing._common import output_dir

_COMPLETE = ".megastyle-tiny-complete"
_LOCK = threading.Lock()
_DEFAULT_ROOT: Path | None = None


def _builders() -> dict[str, Callable[[Path, int], Path]]:
    """Map each kind name to a ``(path, seed) -> path`` builder."""
    from megastyle.testing.clip import build_tiny_clip
    from megastyle.testing.flux import build_tiny_flux_pipeline
    from megastyle.testing.qwen_image import build_tiny_qwen_image_pipeline
    from megastyle.testing.qwen_vl import build_tiny_qwen_vl
    from megastyle.testing.siglip import build_tiny_siglip

    return {
        "siglip": lambda p, s: build_tiny_siglip(p, seed=s),
        "clip": lambda p, s: build_tiny_clip(p, seed=s),
        "flux": lambda p, s: build_tiny_flux_pipeline(p, seed=s),
        "qwen_vl": lambda p, s: build_tiny_qwen_vl(p, seed=s, variant="qwen2_5_vl"),
        "qwen2_5_vl": lambda p, s: build_tiny_qwen_vl(p, seed=s, variant="qwen2_5_vl"),
        "qwen3_vl": lambda p, s: build_tiny_qwen_vl(p, seed=s, variant="qwen3_vl"),
        "qwen_image": lambda p, s: build_tiny_qwen_image_pipeline(p, seed=s),
    }


TINY_MODEL_KINDS: tuple[str, ...] = (
    "siglip",
    "clip",
    "flux",
    "qwen_vl",
    "qwen2_5_vl",
    "qwen3_vl",
    "qwen_image",
)


def default_cache_root() -> Path:
    """``$MEGASTYLE_TINY_MODELS_DIR`` if set, else one temporary directory per process (removed at exit)."""
    global _DEFAULT_ROOT
    env = os.environ.get("MEGASTYLE_TINY_MODELS_DIR")
    if env:
        return output_dir(env)
    with _LOCK:
        if _DEFAULT_ROOT is None:
            _DEFAULT_ROOT = Path(tempfile.mkdtemp(prefix="megastyle-tiny-"))
            atexit.register(shutil.rmtree, _DEFAULT_ROOT, ignore_errors=True)
        return _DEFAULT_ROOT


def tiny_model_dir(kind: str, root: str | os.PathLike[str] | None = None, *, seed: int = 0) -> Path:
    """Path of the tiny ``kind`` model under ``root`` (default: ``default_cache_root()``), built on first use.

    ``kind`` is one of ``TINY_MODEL_KINDS``. Safe across threads and processes sharing ``root``: each
    build goes to a scratch folder and is renamed into place. Treat the returned directory as read-only.
    """
    builders = _builders()
    if kind not in builders:
        raise ValueError(f"unknown tiny model kind {kind!r}; expected one of {TINY_MODEL_KINDS}")
    base = output_dir(root) if root is not None else default_cache_root()
    target = base / f"{kind}-seed{seed}"
    with _LOCK:
        if (target / _COMPLETE).is_file():
            return target
        scratch = Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=base))
        try:
            builders[kind](scratch, seed)
            (scratch / _COMPLETE).touch()
            try:
                scratch.rename(target)
            except OSError:  # another process finished first (or a stale partial dir exists)
                if not (target / _COMPLETE).is_file():
                    shutil.rmtree(target, ignore_errors=True)
                    scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target
