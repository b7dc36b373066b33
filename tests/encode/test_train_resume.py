"""A run resumed from its mid-way checkpoint ends with exactly the parameters of an unbroken run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from megastyle.config import ConfigError
from megastyle.curate.generate import plan_images, run_generate
from megastyle.encode.train import latest_checkpoint, train_encoder
from megastyle.encode.train_config import TrainEncoderConfig
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.testing import build_tiny_siglip


@pytest.fixture(scope="module")
def text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("resume-text") / "siglip")


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resume-data") / "shards"
    plan = plan_images(sample_style_prompts(8, seed=3), sample_content_prompts(12, seed=4), 6, seed=0)
    run_generate(plan, out, size=32, show_progress=False)
    return out


def _config(shards: Path, text: Path, out: Path, **overrides: object) -> TrainEncoderConfig:
    tiny = {"image_size": 32, "patch_size": 8, "hidden_size": 24, "intermediate_size": 32}
    tiny |= {"num_hidden_layers": 1, "num_attention_heads": 2}
    fields = {
        "data_dirs": [shards],
        "output_dir": out,
        "tiny": tiny,
        # The tiny SigLIP's text tower is 32 wide, the image tower 24: the loss' text bridge trains too.
        "text_tower": "hf",
        "text_model_path": text,
        "styles_per_batch": 4,
        "images_per_style": 3,
        "chunk_size": 5,
        "max_steps": 6,
        "save_every": 3,
        "keep_checkpoints": 3,
        "progress": False,
        "seed": 5,
    }
    return TrainEncoderConfig(**(fields | overrides))


def test_resume_from_a_mid_run_checkpoint_matches_the_unbroken_run(
    shards: Path, text_model: Path, tmp_path: Path
) -> None:
    # 6 steps over 2 epochs of 3 batches: the checkpoint at step 3 sits at an epoch boundary,
    # the one at step 4 (second config) in the middle of an epoch.
    for save_every in (3, 4):
        unbroken = tmp_path / f"unbroken-{save_every}"
        train_encoder(_config(shards, text_model, unbroken, save_every=save_every))
        resumed = tmp_path / f"resumed-{save_every}"
        mid = unbroken / "checkpoints" / f"step-{save_every:07d}"
        shutil.copytree(mid, resumed / "checkpoints" / mid.name)
        result = train_encoder(_config(shards, text_model, resumed, save_every=save_every))
        assert result.steps == 6
        final = load_file(str(unbroken / "encoder" / "model.safetensors"))
        again = load_file(str(resumed / "encoder" / "model.safetensors"))
        assert final.keys() == again.keys()
        for key in final:
            assert (final[key] - again[key]).abs().max().item() <= 1e-6, key
        first = load_file(str(unbroken / "sscl_loss.safetensors"))
        second = load_file(str(resumed / "sscl_loss.safetensors"))
        assert all((first[k] - second[k]).abs().max().item() <= 1e-6 for k in first)
        # The resumed run logged only the steps after its checkpoint.
        steps = [json.loads(x)["step"] for x in (resumed / "train_log.jsonl").read_text().splitlines()]
        assert next(s for s in steps if s > 0) == save_every + 1


def test_training_from_scratch_differs_and_checkpoints_are_safe(
    shards: Path, text_model: Path, tmp_path: Path
) -> None:
    # Guard against a vacuous resume test: other seeds give other weights.
    a = train_encoder(_config(shards, text_model, tmp_path / "a", max_steps=2, save_every=0))
    b = train_encoder(_config(shards, text_model, tmp_path / "b", max_steps=2, save_every=0, seed=6))
    wa = load_file(str(a.encoder_dir / "model.safetensors"))
    wb = load_file(str(b.encoder_dir / "model.safetensors"))
    assert any((wa[k] - wb[k]).abs().max().item() > 1e-4 for k in wa)
    checkpoint = latest_checkpoint(tmp_path / "a")
    assert checkpoint is not None
    import torch

    torch.load(checkpoint / "optimizer.pt", weights_only=True)  # no pickled objects
    with pytest.raises(ConfigError, match="styles_per_batch"):
        train_encoder(_config(shards, text_model, tmp_path / "a", max_steps=2, styles_per_batch=2))
