"""SSCL training on a tiny procedural dataset: the loss falls, only the image tower trains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from megastyle.curate.generate import plan_images, run_generate
from megastyle.encode import train as train_module
from megastyle.encode.data import StyleImageDataset, collate_style_batch
from megastyle.encode.losses import SSCLLoss
from megastyle.encode.model import StyleEncoder
from megastyle.encode.text_side import HFTextTower, build_text_bank, load_text_tower
from megastyle.encode.train import build_encoder, resolve_split, train_encoder
from megastyle.encode.train_config import TrainEncoderConfig
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.testing import TINY_TRAIN_TOWER, build_tiny_siglip

TINY = TINY_TRAIN_TOWER


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("loop-data") / "shards"
    plan = plan_images(sample_style_prompts(10, seed=7), sample_content_prompts(12, seed=8), 6, seed=1)
    run_generate(plan, out, size=32, show_progress=False)
    return out


def _fixed_batch_loss(cfg: TrainEncoderConfig, encoder: StyleEncoder, loss_state: dict[str, Any]) -> float:
    """SSCL loss of every training image (no augmentation) under ``encoder`` and loss parameters."""
    train_rows, _, _ = resolve_split(cfg)
    dataset = StyleImageDataset(train_rows, encoder.config.preprocess)
    pixels, labels = collate_style_batch([dataset[i] for i in range(len(dataset))])
    # Beside the run folder, not in it: the trainer claims an empty folder (the bank is the same either way).
    bank = build_text_bank(
        load_text_tower("sentence"), train_rows.styles, cache_dir=cfg.output_dir.parent / "bank"
    )
    loss_fn = SSCLLoss()
    loss_fn.load_state_dict(loss_state)
    with torch.no_grad():
        return loss_fn(encoder.eval()(pixels), labels, bank.lookup(labels)).loss.item()


def test_training_lowers_the_sscl_loss_with_the_offline_text_side(shards: Path, tmp_path: Path) -> None:
    cfg = TrainEncoderConfig(
        data_dirs=[shards],
        output_dir=tmp_path / "run",
        tiny=TINY,
        holdout_fraction=0.2,
        styles_per_batch=4,
        images_per_style=3,
        chunk_size=4,
        max_steps=12,
        progress=False,
    )
    before = _fixed_batch_loss(cfg, build_encoder(cfg), SSCLLoss().state_dict())
    result = train_encoder(cfg)
    after = _fixed_batch_loss(
        cfg,
        StyleEncoder.from_pretrained(result.encoder_dir),
        load_file(str(cfg.output_dir / "sscl_loss.safetensors")),
    )
    assert after < 0.8 * before
    log = [json.loads(line) for line in (cfg.output_dir / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in log if r["event"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 13))
    assert all(r["siglip"] > 0 and r["supcon"] > 0 for r in steps)
    assert [r["step"] for r in log if r["event"] == "eval"] == [0, 12]
    # Two of ten styles held out, written for the benchmark, and reported.
    heldout = json.loads((cfg.output_dir / "heldout_styles.json").read_text())["heldout_styles"]
    assert len(heldout) == 2 and heldout == result.heldout_styles


def test_only_the_image_tower_trains(shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text_folder = build_tiny_siglip(tmp_path / "siglip")
    towers: list[HFTextTower] = []
    original = train_module.load_text_tower

    def capture(*args: Any, **kwargs: Any) -> Any:
        tower = original(*args, **kwargs)
        towers.append(tower)
        return tower

    monkeypatch.setattr(train_module, "load_text_tower", capture)
    tiny = TINY | {"hidden_size": 24, "num_attention_heads": 2}
    cfg = TrainEncoderConfig(
        data_dirs=[shards],
        output_dir=tmp_path / "run",
        tiny=tiny,
        text_tower="hf",
        text_model_path=text_folder,
        styles_per_batch=4,
        images_per_style=2,
        max_steps=3,
        progress=False,
    )
    result = train_encoder(cfg)
    (tower,) = towers
    assert isinstance(tower, HFTextTower)
    reference = HFTextTower(text_folder)
    for (name, param), (_, original_param) in zip(
        tower.model.named_parameters(), reference.model.named_parameters(), strict=True
    ):
        assert not param.requires_grad and param.grad is None, name
        assert torch.equal(param, original_param), name
    trained = StyleEncoder.from_pretrained(result.encoder_dir).official_state_dict()
    initial = build_encoder(cfg).official_state_dict()
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)
    # Widths 24 (image) vs 32 (SigLIP text): the bridge lives in the loss, not the encoder.
    loss_state = load_file(str(cfg.output_dir / "sscl_loss.safetensors"))
    assert loss_state["text_projection.weight"].shape == (24, 32)
    assert StyleEncoder.from_pretrained(result.encoder_dir).dim == 24
