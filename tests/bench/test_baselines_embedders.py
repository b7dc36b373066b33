"""Baseline embedders: colour histogram by hand, Gram determinism, HF towers, and CSD loading.

The CSD check builds a plain-torch ViT in OpenAI CLIP's layout (``conv1``, ``class_embedding``,
``nn.MultiheadAttention`` resblocks with ``in_proj_weight``, ``ln_post``) inside a CSD-shaped module
(``backbone`` + ``last_layer_style``), saves it the way CSD does (``model_state_dict`` with DDP
``module.`` prefixes), and requires ``CSDEmbedder`` to reproduce its style output exactly.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from megastyle.bench.baselines import (
    ColorHistogramEmbedder,
    CSDEmbedder,
    GramEmbedder,
    HFTowerEmbedder,
    RandomEmbedder,
    convert_csd_state_dict,
)
from megastyle.testing import random_images, tiny_model_dir


def test_color_histogram_by_hand() -> None:
    # Left half pure red, right half pure blue: two bins of weight 1/2 → sqrt → L2 = 1/√2 each.
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    pixels[:, :2] = (255, 0, 0)
    pixels[:, 2:] = (0, 0, 255)
    embedding = ColorHistogramEmbedder(bins=4).embed_images([Image.fromarray(pixels)])[0]
    red, blue = (3 * 4 + 0) * 4 + 0, (0 * 4 + 0) * 4 + 3
    assert embedding[red] == pytest.approx(2**-0.5) and embedding[blue] == pytest.approx(2**-0.5)
    assert np.count_nonzero(embedding) == 2
    # Spatially invariant: flipping the image changes nothing.
    flipped = ColorHistogramEmbedder(bins=4).embed_images([Image.fromarray(pixels[:, ::-1].copy())])[0]
    np.testing.assert_array_equal(embedding, flipped)


def test_gram_and_random_embedders_are_seeded() -> None:
    images = random_images(3, size=(40, 40), seed=1)
    a = GramEmbedder(image_size=32, seed=0).embed_images(images, batch_size=2)
    b = GramEmbedder(image_size=32, seed=0).embed_images(images)
    c = GramEmbedder(image_size=32, seed=1).embed_images(images)
    assert a.shape == (3, GramEmbedder().dim) == (3, 136 + 528 + 2080)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    r = RandomEmbedder(dim=16)
    np.testing.assert_array_equal(r.embed_images(images[:1]), r.embed_images(images[:1]))
    pair = r.embed_images(images[:2])
    assert abs(float(pair[0] @ pair[1])) < 0.9  # distinct images, unrelated directions


def test_hf_tower_embedder_wraps_style_encoder() -> None:
    from megastyle.encode.model import StyleEncoder

    folder = tiny_model_dir("clip")
    images = random_images(2, size=(40, 40), seed=2)
    got = HFTowerEmbedder(folder).embed_images(images)
    expected = StyleEncoder.from_pretrained(folder).embed_images(images)
    np.testing.assert_allclose(got, expected, atol=1e-6)


# -- CSD -------------------------------------------------------------------------------------
class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(width, 4 * width), gelu=QuickGELU(), c_proj=nn.Linear(4 * width, width)
            )
        )
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])


class OpenAIVisual(nn.Module):
    """OpenAI CLIP's VisionTransformer layout with ``proj`` removed, as CSD keeps it."""

    def __init__(
        self, image: int = 32, patch: int = 8, width: int = 32, layers: int = 2, heads: int = 4
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width))
        self.positional_embedding = nn.Parameter(torch.randn((image // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        x = self.transformer.resblocks(x.transpose(0, 1)).transpose(0, 1)  # sequence-first attention
        return self.ln_post(x[:, 0])


class CSDLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = OpenAIVisual()
        self.last_layer_style = nn.Parameter(torch.randn(32, 24))
        self.last_layer_content = nn.Parameter(torch.randn(32, 24))


@pytest.fixture
def csd_checkpoint(tmp_path: Path) -> tuple[Path, CSDLike]:
    torch.manual_seed(0)
    model = CSDLike().eval()
    with torch.no_grad():  # non-trivial norms and biases so a mis-mapped key cannot hide
        for name, param in model.named_parameters():
            if "ln" in name or name.endswith("bias"):
                param.add_(0.3 * torch.randn_like(param))
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / "checkpoint.pth"
    torch.save({"model_state_dict": state, "epoch": 3}, path)
    return path, model


def test_csd_checkpoint_reproduces_the_openai_layout_forward(csd_checkpoint: tuple[Path, CSDLike]) -> None:
    path, reference = csd_checkpoint
    # Heads cannot be read from weight shapes (OpenAI CLIP uses width / 64; this tiny one has 4).
    embedder = CSDEmbedder.from_checkpoint(path, vision_config={"num_attention_heads": 4})
    assert embedder.dim == 24 and embedder.unexpected == []
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(
            reference.backbone(pixels) @ reference.last_layer_style, dim=-1
        )
    torch.testing.assert_close(embedder.forward(pixels), expected, atol=1e-5, rtol=1e-5)
    # PIL path: CSD's eval preprocessing (bicubic short-side resize, centre crop, CLIP normalisation).
    config = embedder.preprocessor.config
    assert (config.resize_mode, config.resample, config.image_size) == ("shortest_edge_crop", "bicubic", 32)
    assert config.image_mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    out = embedder.embed_images(random_images(2, size=(48, 40), seed=0))
    assert out.shape == (2, 24)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_csd_conversion_reports_leftovers_and_rejects_non_csd(csd_checkpoint: tuple[Path, CSDLike]) -> None:
    path, _ = csd_checkpoint
    state = torch.load(path, weights_only=True)["model_state_dict"]
    state["module.backbone.proj"] = torch.zeros(32, 24)
    weights = convert_csd_state_dict(state)
    assert weights.unexpected == ["module.backbone.proj"]
    assert weights.content_head is not None and weights.content_head.shape == (32, 24)
    q, k, v = (weights.vision[f"encoder.layers.0.self_attn.{n}_proj.weight"] for n in "qkv")
    torch.testing.assert_close(
        torch.cat([q, k, v]), state["module.backbone.transformer.resblocks.0.attn.in_proj_weight"]
    )
    with pytest.raises(ValueError, match="no 'last_layer_style'"):
        convert_csd_state_dict({"backbone.conv1.weight": torch.zeros(1)})
