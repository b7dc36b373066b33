"""The workspace the documentation's examples run in: the paths the docs name, built from tiny offline models.

The docs use the paths a user would have (``models/siglip-so400m-patch14-384``, ``models/FLUX.1-dev``,
``style.png``, ``runs/my-dataset/dataset``, ...). ``ARTEFACTS`` maps each of those exact strings to a
builder that puts a tiny stand-in at that path, relative to one temporary folder that every example
runs in. Nothing is downloaded: the models come from ``megastyle.testing``.
"""

from __future__ import annotations

import functools
import inspect
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

# FLUX runs in the examples at the official 512 × 512, 30 steps and T5 length 512; on the tiny model
# that is minutes of CPU. The examples run at this size and step count instead (every other argument
# as written).
TINY_SIDE, TINY_STEPS, TINY_T5_LENGTH = 32, 2, 16


def _link(target: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target, target_is_directory=target.is_dir())


def _tiny(kind: str, seed: int = 0) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        from megastyle.testing import tiny_model_dir

        _link(tiny_model_dir(kind, seed=seed), path)

    return build


def _official_encoder(path: Path) -> None:
    """A SigLIP vision state dict in the official ``megastyle_encoder.pth`` layout (another seed than the base)."""
    from megastyle.encode import StyleEncoder
    from megastyle.testing import tiny_model_dir

    StyleEncoder.from_pretrained(tiny_model_dir("siglip", seed=1)).export_official(path)


def _trained_encoder(path: Path) -> None:
    """A megastyle encoder folder, as ``train-encoder`` leaves in ``output_dir/encoder``."""
    from megastyle.encode import StyleEncoder
    from megastyle.testing import tiny_model_dir

    StyleEncoder.from_pretrained(tiny_model_dir("siglip", seed=2)).save_pretrained(path)


def _official_lora(path: Path) -> None:
    """A kohya-format LoRA (the official file's layout) on the tiny FLUX transformer, non-zero weights."""
    from megastyle.testing.flux import tiny_flux_transformer
    from megastyle.transfer.lora import save_lora
    from megastyle.transfer.train import add_lora
    from megastyle.transfer.train_config import TrainTransferConfig

    transformer = tiny_flux_transformer().eval()
    add_lora(transformer, TrainTransferConfig(rank=4, init_lora_weights="gaussian"))
    save_lora(transformer, path, format="kohya")


def _image(seed: int) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        from megastyle.testing import random_images

        path.parent.mkdir(parents=True, exist_ok=True)
        random_images(1, (48, 40), seed=seed)[0].save(path)

    return build


def _references(path: Path) -> None:
    from megastyle.testing import random_images

    path.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(random_images(3, (40, 40), seed=20)):
        image.save(path / f"style_{i}.png")


def _pools(path: Path) -> None:
    """``pools/style`` and ``pools/content``: offline pools (the content images carry .txt captions)."""
    from megastyle.quickstart.pools import make_procedural_pools

    pools = make_procedural_pools(path / ".build", 10, 16, seed=5, size=64)
    pools.style_dir.rename(path / "style")
    pools.content_dir.rename(path / "content")
    shutil.rmtree(path / ".build")


def _dataset(path: Path) -> None:
    """``runs/my-dataset``: ``megastyle curate --config my.toml`` run for real (the README's recipe)."""
    from megastyle.config import load_config
    from megastyle.curate.config import CurateConfig
    from megastyle.curate.pipeline import run_curate

    cfg = load_config(CurateConfig, "my.toml", ["--progress", "false"])
    assert cfg.run_dir.resolve() == path.resolve(), f"my.toml writes {cfg.run_dir}, the examples read {path}"
    run_curate(cfg)


# Each path the docs name → what stands in for it. Order matters: the dataset needs the pools.
ARTEFACTS: dict[str, Callable[[Path], None]] = {
    "models/siglip-so400m-patch14-384": _tiny("siglip"),
    "models/megastyle_encoder.pth": _official_encoder,
    "models/FLUX.1-dev": _tiny("flux"),
    "models/megastyle_flux.safetensors": _official_lora,
    "models/clip-vit-large-patch14": _tiny("clip"),
    "runs/train_encoder/encoder": _trained_encoder,
    "style.png": _image(1),
    "a.png": _image(2),
    "b.png": _image(3),
    "references": _references,
    "configs": lambda path: _link(REPO / "configs", path),
    "pools": _pools,
    "runs/my-dataset": _dataset,
}


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory, doc_files: dict[str, str]) -> Iterator[Path]:
    """One folder holding every path the docs name; examples run with it as the working directory.

    ``doc_files`` (the test module's fixture) are the files the docs themselves define, e.g. ``my.toml``.
    """
    root = tmp_path_factory.mktemp("docs-workspace")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for name, text in doc_files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text, encoding="utf-8")
        for name, build in ARTEFACTS.items():
            build(root / name)
    yield root


@pytest.fixture
def in_workspace(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in the workspace, with MegaStyle-FLUX shrunk to the tiny size (every other argument as written)."""
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline

    monkeypatch.chdir(workspace)
    original = MegaStyleFluxPipeline.__call__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def tiny_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        bound.arguments.update(height=TINY_SIDE, width=TINY_SIDE)
        steps = bound.arguments.get("num_inference_steps")
        bound.arguments["num_inference_steps"] = min(steps or TINY_STEPS, TINY_STEPS)
        length = bound.arguments.get("max_sequence_length", TINY_T5_LENGTH)
        bound.arguments["max_sequence_length"] = min(length, TINY_T5_LENGTH)
        return original(*bound.args, **bound.kwargs)

    monkeypatch.setattr(MegaStyleFluxPipeline, "__call__", tiny_call)
    return workspace
