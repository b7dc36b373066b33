"""``compile = true`` trains the same encoder as eager mode, with the plain tower's parameter names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from megastyle.curate.generate import plan_images, run_generate
from megastyle.encode import train as train_module
from megastyle.encode.compiling import compile_layers, transformer_layers
from megastyle.encode.model import StyleEncoder
from megastyle.encode.train import train_encoder
from megastyle.encode.train_config import TrainEncoderConfig
from megastyle.prompts import sample_content_prompts, sample_style_prompts

pytestmark = pytest.mark.slow  # see docs/testing.md: plain `pytest` skips it, `make test` runs it

TINY = {
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 384,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 6,
}


def test_compile_layers_finds_siglip_and_clip_layers_and_refuses_other_modules() -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    siglip = StyleEncoder.from_vision_config("siglip", TINY, image_size=32, seed=0).vision_model
    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=3,
                                            num_attention_heads=4, image_size=32, patch_size=8))  # fmt: skip
    assert len(transformer_layers(siglip)) == 2
    assert len(transformer_layers(clip)) == 3
    with pytest.raises(ValueError, match=r"Linear has no 'encoder\.layers'"):
        compile_layers(torch.nn.Linear(2, 2))


def test_compiled_training_matches_eager_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shards = tmp_path / "shards"
    plan = plan_images(sample_style_prompts(6, seed=7), sample_content_prompts(8, seed=8), 4, seed=1)
    run_generate(plan, shards, size=32, show_progress=False)
    compiled_towers: list[int] = []
    real = train_module.compile_layers
    monkeypatch.setattr(train_module, "compile_layers", lambda tower: compiled_towers.append(real(tower)))

    def run(name: str, compile_tower: bool) -> tuple[list[float], dict[str, torch.Tensor]]:
        cfg = TrainEncoderConfig(data_dirs=[shards], output_dir=tmp_path / name, tiny=TINY, holdout_fraction=0.0,
                                 styles_per_batch=3, images_per_style=2, chunk_size=2, max_steps=3,
                                 augment=False, progress=False, compile=compile_tower)  # fmt: skip
        result = train_encoder(cfg)
        log = [json.loads(line) for line in (cfg.output_dir / "train_log.jsonl").read_text().splitlines()]
        weights = load_file(str(Path(result.encoder_dir) / "model.safetensors"))
        return [r["loss"] for r in log if r["event"] == "step"], weights

    eager_losses, eager_weights = run("eager", False)
    assert compiled_towers == []
    compiled_losses, compiled_weights = run("compiled", True)
    assert compiled_towers == [2]  # both layers of the tiny tower, gradcache chunks and all
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-4)
    assert compiled_weights.keys() == eager_weights.keys()  # no "_orig_mod" in saved names
    for key, value in eager_weights.items():
        torch.testing.assert_close(compiled_weights[key], value, atol=1e-4, rtol=1e-3)
