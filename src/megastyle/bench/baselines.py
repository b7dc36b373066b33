"""Baseline embedders behind the benchmark's ``embed_images(images, batch_size)`` interface.

Training-free (no weights): ``ColorHistogramEmbedder`` (joint colour histogram), ``GramEmbedder``
(Gram matrices of a fixed, seeded random conv net: the classic training-free style descriptor)
and ``RandomEmbedder`` (a chance-level reference). With local weights: ``HFTowerEmbedder``
(CLIP/SigLIP towers through ``StyleEncoder``) and ``CSDEmbedder``.

CSD (Somepalli et al., "Measuring Style Similarity in Diffusion Models") as we understand its
released model: an OpenAI CLIP ViT-L/14 visual backbone with its projection removed, whose
``ln_post(CLS)`` feature is multiplied by a learned ``last_layer_style`` matrix (1024 × 768) and
L2-normalised; a ``last_layer_content`` head sits beside it. The checkpoint stores the model under
``model_state_dict`` with DDP ``module.`` prefixes. What is verified here: the key mapping from that
OpenAI layout into a transformers ``CLIPVisionModel`` reproduces a plain-torch OpenAI-layout ViT
(``nn.MultiheadAttention`` blocks) exactly, on a tiny synthetic checkpoint. What is *not* verified
(no download is possible here): loading the real CSD checkpoint and matching CSD's published numbers.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from megastyle.data import to_rgb


def _l2(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class ColorHistogramEmbedder:
    """Joint ``bins³`` colour histogram (RGB or HSV), square-rooted (Hellinger) and L2-normalised."""

    def __init__(self, bins: int = 8, space: str = "rgb", max_side: int = 128) -> None:
        if bins < 2 or bins > 64:
            raise ValueError(f"bins must be in 2..64, got {bins}")
        if space not in ("rgb", "hsv"):
            raise ValueError(f"space must be 'rgb' or 'hsv', got {space!r}")
        self.bins, self.space, self.max_side = bins, space, max_side

    @property
    def dim(self) -> int:
        """Embedding width: bins³."""
        return self.bins**3

    def _histogram(self, image: Image.Image) -> np.ndarray:
        image = to_rgb(image)
        if max(image.size) > self.max_side:  # a histogram needs no more pixels than this
            image = image.copy()
            image.thumbnail((self.max_side, self.max_side), Image.Resampling.BILINEAR)
        if self.space == "hsv":
            image = image.convert("HSV")
        pixels = np.asarray(image, dtype=np.int64).reshape(-1, 3)
        q = pixels * self.bins // 256
        codes = (q[:, 0] * self.bins + q[:, 1]) * self.bins + q[:, 2]
        counts = np.bincount(codes, minlength=self.dim).astype(np.float64)
        return np.sqrt(counts / max(1, len(codes)))

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """(n, bins³) float32; ``batch_size`` is accepted for the interface and unused."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _l2(np.stack([self._histogram(image) for image in images]))


class GramEmbedder:
    """Gram matrices of a fixed random conv net (seeded), upper triangles per layer, L2-normalised.

    Each layer is conv3×3 → ReLU → 2× average pool; its Gram matrix ``F Fᵀ / HW`` (channels ×
    channels) is flattened to its upper triangle and L2-normalised, so every layer weighs the same;
    the concatenation is L2-normalised again. No training: the weights come from the seed alone.
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64),
        image_size: int = 128,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        if not channels:
            raise ValueError("GramEmbedder needs at least one layer")
        self.image_size, self.device = image_size, torch.device(device)
        generator = torch.Generator().manual_seed(seed)
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        fan_in_channels = 3
        for width in channels:
            fan_in = fan_in_channels * 9
            # He-normal weights keep activations in range through the ReLUs; small random biases.
            weight = torch.randn(width, fan_in_channels, 3, 3, generator=generator) * (2.0 / fan_in) ** 0.5
            bias = torch.randn(width, generator=generator) * 0.1
            self.weights.append(weight.to(self.device))
            self.biases.append(bias.to(self.device))
            fan_in_channels = width
        self._triu = [torch.triu_indices(w, w).to(self.device) for w in channels]
        self.mean = torch.tensor([0.485, 0.456, 0.406], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225], device=self.device).view(1, 3, 1, 1)

    @property
    def dim(self) -> int:
        """Embedding width: Σ c(c+1)/2 over layers."""
        return sum(int(t.shape[1]) for t in self._triu)

    def _pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        size = (self.image_size, self.image_size)
        arrays = [
            np.asarray(to_rgb(image).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
            for image in images
        ]
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(self.device) / 255.0
        return (batch - self.mean) / self.std

    @torch.no_grad()
    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """(n, dim) float32 Gram features."""
        out: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            x = self._pixels(images[start : start + batch_size])
            layers = []
            for weight, bias, triu in zip(self.weights, self.biases, self._triu, strict=True):
                x = F.avg_pool2d(F.relu(F.conv2d(x, weight, bias, padding=1)), 2)
                flat = x.flatten(2)  # (n, c, hw)
                gram = flat @ flat.transpose(1, 2) / flat.shape[2]
                layers.append(F.normalize(gram[:, triu[0], triu[1]], dim=1))
            out.append(F.normalize(torch.cat(layers, dim=1), dim=1).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)


class RandomEmbedder:
    """Chance level: a fixed random unit vector per distinct image (seeded by the pixels' hash)."""

    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        self.dim, self.seed = dim, seed

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """(n, dim) float32 random directions, identical for identical images."""
        rows = []
        for image in images:
            digest = hashlib.sha256(to_rgb(image).tobytes()).digest()
            seed = int.from_bytes(digest[:8], "little") ^ self.seed
            rows.append(np.random.default_rng(seed).normal(size=self.dim))
        return _l2(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)


class HFTowerEmbedder:
    """A local CLIP/SigLIP folder (or our saved encoder) through ``StyleEncoder``: pooled output, L2."""

    def __init__(
        self, path: str | os.PathLike[str], *, device: str | None = None, dtype: torch.dtype | None = None
    ) -> None:
        from megastyle.encode.model import StyleEncoder

        self.path = str(path)
        self.encoder = StyleEncoder.from_pretrained(path, device=device, dtype=dtype)

    @property
    def dim(self) -> int:
        """Embedding width of the tower."""
        return self.encoder.dim

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """(n, d) float32 L2-normalised pooled outputs."""
        return self.encoder.embed_images(images, batch_size=batch_size)


# -- CSD ----------------------------------------------------------------------------------------
# CLIP ViT-L/14 at 224 px, as CSD uses it (OpenAI weights: QuickGELU, 64-wide heads).
CSD_VIT_L14: dict[str, Any] = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}
_BLOCK_KEYS = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
    "attn.out_proj": "self_attn.out_proj",
}
_TOP_KEYS = {
    "conv1.weight": "embeddings.patch_embedding.weight",
    "class_embedding": "embeddings.class_embedding",
    "positional_embedding": "embeddings.position_embedding.weight",
    "ln_pre.weight": "pre_layrnorm.weight",
    "ln_pre.bias": "pre_layrnorm.bias",
    "ln_post.weight": "post_layernorm.weight",
    "ln_post.bias": "post_layernorm.bias",
}
_BLOCK_RE = re.compile(r"^transformer\.resblocks\.(\d+)\.(.+)$")


@dataclass
class CSDWeights:
    """A CSD checkpoint mapped to ``CLIPVisionModel`` names, its heads, and what was left over."""

    vision: dict[str, torch.Tensor]
    style_head: torch.Tensor  # (hidden, out)
    content_head: torch.Tensor | None
    unexpected: list[str] = field(default_factory=list)


def convert_csd_state_dict(checkpoint: Mapping[str, Any]) -> CSDWeights:
    """Map a CSD checkpoint (``model_state_dict``/``state_dict``/bare, ``module.`` prefixes) to HF names."""
    state: Mapping[str, Any] = checkpoint
    for key in ("model_state_dict", "state_dict", "model"):
        if isinstance(state.get(key), Mapping):
            state = state[key]
            break
    vision: dict[str, torch.Tensor] = {}
    heads: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for raw_key, value in state.items():
        key = raw_key.removeprefix("module.")
        if key in ("last_layer_style", "last_layer_content"):
            heads[key] = value
            continue
        if not key.startswith("backbone.") or not isinstance(value, torch.Tensor):
            unexpected.append(raw_key)
            continue
        key = key.removeprefix("backbone.")
        if key in _TOP_KEYS:
            vision[_TOP_KEYS[key]] = value
            continue
        match = _BLOCK_RE.match(key)
        if match is None:
            unexpected.append(raw_key)  # e.g. a non-None backbone.proj: CSD removes it
            continue
        layer, rest = match.groups()
        prefix = f"encoder.layers.{layer}."
        if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
            # nn.MultiheadAttention stacks q, k, v along dim 0.
            kind = rest.rsplit("_", 1)[1]
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                vision[f"{prefix}self_attn.{name}.{kind}"] = part.clone()
            continue
        module, _, param = rest.rpartition(".")
        if module not in _BLOCK_KEYS:
            unexpected.append(raw_key)
            continue
        vision[f"{prefix}{_BLOCK_KEYS[module]}.{param}"] = value
    if "last_layer_style" not in heads:
        raise ValueError("not a CSD checkpoint: no 'last_layer_style' style head found")
    return CSDWeights(vision, heads["last_layer_style"], heads.get("last_layer_content"), unexpected)


def csd_vision_config(weights: CSDWeights, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Infer a ``CLIPVisionConfig`` dict from the weight shapes (heads = width / 64, as OpenAI CLIP)."""
    hidden = int(weights.vision["embeddings.class_embedding"].shape[0])
    patch = int(weights.vision["embeddings.patch_embedding.weight"].shape[-1])
    positions = int(weights.vision["embeddings.position_embedding.weight"].shape[0])
    layers = 1 + max(int(k.split(".")[2]) for k in weights.vision if k.startswith("encoder.layers."))
    grid = round((positions - 1) ** 0.5)
    config = dict(CSD_VIT_L14)
    config.update(
        hidden_size=hidden,
        intermediate_size=int(weights.vision["encoder.layers.0.mlp.fc1.weight"].shape[0]),
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        image_size=grid * patch,
        patch_size=patch,
    )
    config.update(overrides or {})
    return config


class CSDEmbedder:
    """CSD style embedding: ``normalize(CLIPVision(x).pooler_output @ last_layer_style)``."""

    def __init__(
        self, vision_model: torch.nn.Module, style_head: torch.Tensor, image_size: int = 224
    ) -> None:
        from megastyle.encode.images import ImagePreprocessor, PreprocessConfig

        self.vision_model = vision_model.eval()
        self.style_head = style_head.detach().float()
        # CSD's eval transform: resize the short side (bicubic), centre crop, CLIP normalisation.
        self.preprocessor = ImagePreprocessor(PreprocessConfig.for_tower("clip", image_size))
        self.unexpected: list[str] = []

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        *,
        vision_config: Mapping[str, Any] | None = None,
        device: str | None = None,
    ) -> CSDEmbedder:
        """Load a local CSD ``.pth`` safely (``weights_only=True``); missing backbone keys are an error."""
        from transformers import CLIPVisionConfig, CLIPVisionModel

        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, Mapping):
            raise ValueError(f"{path}: expected a state dict, got {type(checkpoint).__name__}")
        weights = convert_csd_state_dict(checkpoint)
        config = CLIPVisionConfig(**csd_vision_config(weights, vision_config))
        model = CLIPVisionModel(config)
        result = model.load_state_dict(weights.vision, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"{path}: CSD backbone does not fit CLIPVisionModel "
                f"(missing {result.missing_keys[:6]}, unexpected {result.unexpected_keys[:6]})"
            )
        if weights.style_head.shape[0] != config.hidden_size:
            raise ValueError(
                f"{path}: style head {tuple(weights.style_head.shape)} ≠ width {config.hidden_size}"
            )
        embedder = cls(model, weights.style_head, int(config.image_size))
        embedder.unexpected = weights.unexpected
        if device is not None:
            embedder.vision_model.to(device)
            embedder.style_head = embedder.style_head.to(device)
        return embedder

    @property
    def dim(self) -> int:
        """Style embedding width (768 for CSD ViT-L)."""
        return int(self.style_head.shape[1])

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(n, dim) L2-normalised style embeddings of preprocessed pixels."""
        device = self.style_head.device
        pooled = self.vision_model(pixel_values=pixel_values.to(device)).pooler_output
        return F.normalize(pooled.float() @ self.style_head, dim=-1)

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """(n, dim) float32 style embeddings of PIL images."""
        chunks = [
            self.forward(self.preprocessor.batch(images[i : i + batch_size])).cpu().numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, self.dim), np.float32)
