"""``neighbour_share``: the trainer builds its batches around the style prompts' nearest neighbours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from megastyle.curate.generate import plan_images, run_generate
from megastyle.data.styles import scan_styles
from megastyle.encode import train as train_module
from megastyle.encode.text_side import build_text_bank, load_text_tower
from megastyle.encode.train import train_encoder
from megastyle.encode.train_config import TrainEncoderConfig
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.testing import TINY_TRAIN_TOWER

TINY = TINY_TRAIN_TOWER


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("neighbour-data") / "shards"
    plan = plan_images(sample_style_prompts(6, seed=11), sample_content_prompts(8, seed=12), 4, seed=3)
    run_generate(plan, out, size=32, shard_size=12, show_progress=False)
    return out


def _nearness_order(shards: Path) -> np.ndarray:
    """Each style label's other styles, nearest first, by the MiniLM embedding of its prompt."""
    data = scan_styles([shards])
    table = build_text_bank(load_text_tower("sentence"), data.styles).embeddings.numpy()
    table = table / np.linalg.norm(table, axis=1, keepdims=True)
    similarity = table @ table.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :-1]


@pytest.mark.parametrize("siglip_weight", [0.1, 0.0])  # with the text bank, and without one
def test_full_share_pairs_each_first_style_with_its_nearest(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, siglip_weight: float
) -> None:
    seen: list[torch.Tensor] = []
    real_loss = train_module.SSCLLoss.forward

    def spy(self: Any, features: torch.Tensor, labels: torch.Tensor, text: torch.Tensor | None) -> Any:
        seen.append(labels.clone())
        return real_loss(self, features, labels, text)

    monkeypatch.setattr(train_module.SSCLLoss, "forward", spy)
    cfg = TrainEncoderConfig(data_dirs=[shards], output_dir=tmp_path / "run", tiny=TINY, holdout_fraction=0.0,
                             styles_per_batch=2, images_per_style=2, epochs=1, neighbour_share=1.0,
                             siglip_weight=siglip_weight, progress=False)  # fmt: skip
    train_encoder(cfg)
    order = _nearness_order(shards)
    groups_left = np.full(len(order), 2)  # 4 images per style in groups of K = 2
    assert len(seen) == 6
    for labels in seen:
        first, second = labels[0].item(), labels[2].item()
        # The second style is the first one's nearest that still had a group left.
        available = [s for s in order[first].tolist() if groups_left[s] > 0]
        assert second == available[0]
        groups_left[[first, second]] -= 1
    assert cfg.resume_key()["neighbour_share"] == 1.0
    assert "neighbour_share" not in TrainEncoderConfig().resume_key()
