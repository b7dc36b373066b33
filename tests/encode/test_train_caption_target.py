"""``text_target = "caption"``: the CLIP-style comparator matches each image with its own full prompt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from megastyle.curate.generate import plan_images, run_generate
from megastyle.data import ShardReader
from megastyle.data.styles import scan_styles
from megastyle.encode import train as train_module
from megastyle.encode.data import StyleImageDataset, row_captions
from megastyle.encode.train import train_encoder
from megastyle.encode.train_config import TrainEncoderConfig
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.testing import TINY_TRAIN_TOWER

TINY = TINY_TRAIN_TOWER


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("caption-data") / "shards"
    plan = plan_images(sample_style_prompts(6, seed=5), sample_content_prompts(10, seed=6), 4, seed=2)
    run_generate(plan, out, size=32, shard_size=10, show_progress=False)  # several shards
    return out


def test_row_captions_pair_each_rows_content_with_its_style(shards: Path) -> None:
    data = scan_styles([shards])
    captions = row_captions(data)
    records = {r["id"]: r for r in ShardReader(shards).iter_rows(columns=["id", "style", "content"])}
    by_position = list(records.values())
    assert len(captions) == len(data) == len(records)
    for caption, (_, row), label in zip(captions, data.rows.tolist(), data.labels.tolist(), strict=True):
        record = by_position[row]
        assert caption == f"{record['content'].rstrip('.')}. {record['style']}"
        assert record["style"] == data.styles[label]
    assert len(set(captions)) == len(captions)  # every row its own text


def test_caption_target_trains_against_one_text_per_row(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_loss = train_module.SSCLLoss.forward

    def spy(self: Any, features: torch.Tensor, labels: torch.Tensor, text: torch.Tensor | None) -> Any:
        seen.append((labels.clone(), text.clone()))
        return real_loss(self, features, labels, text)

    monkeypatch.setattr(train_module.SSCLLoss, "forward", spy)
    cfg = TrainEncoderConfig(data_dirs=[shards], output_dir=tmp_path / "run", tiny=TINY, holdout_fraction=0.0,
                             styles_per_batch=3, images_per_style=2, max_steps=4, text_target="caption",
                             supcon_weight=0.0, siglip_weight=1.0, progress=False)  # fmt: skip
    train_encoder(cfg)
    data = scan_styles([shards])
    bank = train_module.build_text_bank(train_module.load_text_tower("sentence"), row_captions(data))
    for labels, text in seen:
        assert len(set(data.labels[labels.numpy()].tolist())) == 3  # P styles, sampled by style
        torch.testing.assert_close(text, bank.lookup(labels))  # each image's own caption
    log = [json.loads(line) for line in (cfg.output_dir / "train_log.jsonl").read_text().splitlines()]
    losses = [r["siglip"] for r in log if r["event"] == "step"]
    assert len(losses) == 4 and all(r["supcon"] == 0 for r in log if r["event"] == "step")
    assert (
        StyleImageDataset(data, train_module.build_encoder(cfg).config.preprocess, label_rows=True)[5][1] == 5
    )


def test_caption_target_needs_siglip_alone() -> None:
    with pytest.raises(ValueError, match="supcon_weight = 0"):
        TrainEncoderConfig(text_target="caption")
    assert (
        TrainEncoderConfig(text_target="caption", supcon_weight=0.0).resume_key()["text_target"] == "caption"
    )
