"""Same builder + same seed → byte-identical tiny model folders, in any process (any ``PYTHONHASHSEED``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from megastyle.testing import (
    assert_different_weights,
    build_tiny_clip,
    build_tiny_flux_pipeline,
    build_tiny_qwen_image_pipeline,
    build_tiny_qwen_vl,
    build_tiny_siglip,
)

BUILDERS: dict[str, Callable[..., Path]] = {
    "flux": build_tiny_flux_pipeline,
    "clip": build_tiny_clip,
    "siglip": build_tiny_siglip,
    "qwen2_5_vl": lambda path, seed: build_tiny_qwen_vl(path, seed=seed, variant="qwen2_5_vl"),
    "qwen3_vl": lambda path, seed: build_tiny_qwen_vl(path, seed=seed, variant="qwen3_vl"),
    "qwen_image": build_tiny_qwen_image_pipeline,
}

# Run in a fresh interpreter: builds every kind with seed 0 under ``argv[1]/<kind>``.
_BUILD_ALL = """
import sys
from pathlib import Path
from megastyle.testing import (
    build_tiny_clip, build_tiny_flux_pipeline, build_tiny_qwen_image_pipeline, build_tiny_qwen_vl,
    build_tiny_siglip,
)
out = Path(sys.argv[1])
build_tiny_flux_pipeline(out / "flux", seed=0)
build_tiny_clip(out / "clip", seed=0)
build_tiny_siglip(out / "siglip", seed=0)
build_tiny_qwen_vl(out / "qwen2_5_vl", seed=0, variant="qwen2_5_vl")
build_tiny_qwen_vl(out / "qwen3_vl", seed=0, variant="qwen3_vl")
build_tiny_qwen_image_pipeline(out / "qwen_image", seed=0)
"""


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` keyed by its relative POSIX path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _differing_files(a: Path, b: Path) -> list[str]:
    """Relative paths that exist in only one folder or whose bytes differ, sorted."""
    fa, fb = _files(a), _files(b)
    assert fa, f"no files under {a}"
    return sorted(name for name in fa.keys() | fb.keys() if fa.get(name) != fb.get(name))


@pytest.fixture(scope="module")
def two_process_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """All kinds built with seed 0 in two concurrent interpreters with PYTHONHASHSEED 0 and 1."""
    root = tmp_path_factory.mktemp("determinism")
    outs = (root / "hashseed0", root / "hashseed1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD_ALL, str(out)],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for hash_seed, out in enumerate(outs)
    ]
    try:
        for proc in procs:
            _, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr[-4000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outs


@pytest.mark.slow  # builds every tiny model twice, in two processes
@pytest.mark.parametrize("kind", list(BUILDERS))
def test_same_seed_is_byte_identical_across_processes(
    kind: str, two_process_builds: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = (out / kind for out in two_process_builds)
    differing = _differing_files(a, b)
    assert not differing, f"first differing file: {differing[0]} (all: {differing})"
    # A third process (this one, hash seed as launched) agrees too, at another path.
    here = BUILDERS[kind](tmp_path / "here", seed=0)
    differing = _differing_files(a, here)
    assert not differing, f"first differing file vs this process: {differing[0]} (all: {differing})"
    # ... and another seed changes the weights, and only the weights.
    other = BUILDERS[kind](tmp_path / "seed1", seed=1)
    assert_different_weights(here, other)
    weights = sorted(name for name in _files(here) if name.endswith(".safetensors"))
    assert _differing_files(here, other) == weights
