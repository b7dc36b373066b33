"""The frozen text side: SigLIP text features as transformers computes them, and the prompt bank cache."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from megastyle.encode.text_side import (
    HFTextTower,
    SentenceTextTower,
    build_text_bank,
    is_hf_text_folder,
    load_text_tower,
)
from megastyle.testing import build_tiny_siglip

PROMPTS = ["In the style of ukiyo-e, indigo with red accents", "In the style of pop art, yellow and cyan"]


@pytest.fixture(scope="module")
def siglip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("text-side") / "siglip")


def test_siglip_text_tower_matches_get_text_features(siglip_folder: Path) -> None:
    from transformers import AutoTokenizer, SiglipModel

    tower = HFTextTower(siglip_folder)
    got = tower.encode(PROMPTS)
    model = SiglipModel.from_pretrained(siglip_folder).eval()
    tokens = AutoTokenizer.from_pretrained(siglip_folder)(
        PROMPTS, padding="max_length", max_length=64, truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        output = model.get_text_features(input_ids=tokens["input_ids"])
    # transformers 5 returns an output object; the features are its pooler_output.
    expected = F.normalize(getattr(output, "pooler_output", output), dim=-1)
    torch.testing.assert_close(got, expected)
    assert tower.dim == got.shape[1] == 32
    assert all(not p.requires_grad for p in tower.model.parameters())


def test_load_text_tower_auto_and_errors(siglip_folder: Path, tmp_path: Path) -> None:
    assert is_hf_text_folder(siglip_folder) and not is_hf_text_folder(tmp_path)
    assert isinstance(load_text_tower("auto", init_path=siglip_folder), HFTextTower)
    assert isinstance(load_text_tower("auto", init_path=None), SentenceTextTower)
    with pytest.raises(ValueError, match="needs text_model_path"):
        load_text_tower("hf")
    vision_only = tmp_path / "vision"
    vision_only.mkdir()
    (vision_only / "config.json").write_text(json.dumps({"model_type": "siglip_vision_model"}))
    with pytest.raises(ValueError, match="no text tower"):
        HFTextTower(vision_only)


class CountingTower:
    """A fake tower that records how often it embeds."""

    name = "counting"
    dim = 3

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        self.calls += 1
        return F.normalize(torch.arange(3 * len(texts), dtype=torch.float32).view(-1, 3) + 1, dim=-1)


def test_bank_embeds_once_and_reuses_a_matching_cache(tmp_path: Path) -> None:
    tower = CountingTower()
    bank = build_text_bank(tower, PROMPTS, cache_dir=tmp_path)
    again = build_text_bank(tower, PROMPTS, cache_dir=tmp_path)
    assert tower.calls == 1
    torch.testing.assert_close(bank.embeddings, again.embeddings)
    build_text_bank(tower, [*PROMPTS, "another"], cache_dir=tmp_path)  # other prompts: other key
    assert tower.calls == 2
    labels = torch.tensor([1, 1, 0])
    torch.testing.assert_close(bank.lookup(labels), bank.embeddings[[1, 1, 0]])
