"""Shared by the benchmark tests: a small procedural style dataset (built once per session), an embedder that
leaks content on purpose, the FLUX GPU script."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from megastyle.curate.generate import PlannedImage, plan_images, run_generate
from megastyle.prompts import sample_content_prompts, sample_style_prompts

NUM_STYLES = 16
PER_STYLE = 6


def render_procedural(out: Path, *, num_styles: int = NUM_STYLES, per_style: int = PER_STYLE) -> Path:
    """16 styles × 6 contents at 48 px; one seed per content so a content keeps its layout across styles."""
    styles = sample_style_prompts(num_styles, seed=0)
    contents = sample_content_prompts(12, seed=1)
    plan = [
        PlannedImage(p.style_id, p.content_id, p.style, p.content, 1000 + p.content_id)
        for p in plan_images(styles, contents, per_style, seed=0)
    ]
    # Several shards, so shard/row references are exercised.
    run_generate(plan, out, size=48, shard_size=40, row_group_size=10, show_progress=False)
    return out


@pytest.fixture(scope="session")
def procedural_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of shards: 96 rows, 16 styles, contents shared across styles."""
    return render_procedural(tmp_path_factory.mktemp("procedural") / "shards")


class ForegroundLayoutEmbedder:
    """Content-sensitive on purpose: where pixels depart from the image's median grey (the objects)."""

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        rows = []
        for image in images:
            grey = np.asarray(image.convert("L").resize((12, 12), Image.Resampling.BOX), dtype=np.float64)
            mask = np.abs(grey - np.median(grey)).ravel()
            mask -= mask.mean()
            rows.append(mask / (np.linalg.norm(mask) + 1e-9))
        return np.stack(rows).astype(np.float32)


@pytest.fixture
def layout_embedder() -> ForegroundLayoutEmbedder:
    """An embedder that leaks content by construction (where the objects are)."""
    return ForegroundLayoutEmbedder()


FLUX_BENCH_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "bench_flux_transfer.py"


@pytest.fixture
def flux_bench_script() -> ModuleType:
    """``benchmarks/gpu/bench_flux_transfer.py`` loaded afresh, so a test may patch it freely."""
    spec = importlib.util.spec_from_file_location("bench_flux_transfer", FLUX_BENCH_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
