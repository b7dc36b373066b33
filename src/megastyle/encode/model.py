"""StyleEncoder: a Hugging Face vision tower whose L2-normalised pooled output is the style embedding.

SigLIP: ``SiglipVisionModel.pooler_output`` (the attention-pooling head), exactly as the official
``style_score.py``. CLIP: ``CLIPVisionModel.pooler_output`` (post-layernorm CLS token) *without*
``visual_projection``: the issue asks for the pooled output, and the paper's encoder has no projection head.

Weights are stored under the tower's transformers-4 names (``vision_model.embeddings...``), the names
the official ``megastyle_encoder.pth`` and HF SigLIP/CLIP checkpoints use. transformers 5 flattened the
vision models (keys ``embeddings...``), so a plain ``load_state_dict(strict=False)`` of an official
state dict into a transformers-5 ``SiglipVisionModel`` silently loads nothing; loading here matches
keys on their canonical (prefix-free) names and reports everything it could not place.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from megastyle.encode.images import ImagePreprocessor, PreprocessConfig, read_hf_processor_config
from megastyle.encode.state_dict import (
    LoadReport,
    StateDictLoadError,
    canonical_key,
    read_state_dict,
    unwrap_state_dict,
)

Tower = Literal["siglip", "clip"]
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PROCESSOR_NAME = "preprocessor_config.json"
FORMAT_MARKER = "megastyle_style_encoder"
FORMAT_VERSION = 1
OFFICIAL_PREFIX = "vision_model."
_HF_MODEL_TYPES: dict[str, Tower] = {
    "siglip": "siglip",
    "siglip_vision_model": "siglip",
    "clip": "clip",
    "clip_vision_model": "clip",
}


class StyleEncoderConfig(BaseModel):
    """Everything needed to rebuild a StyleEncoder: tower kind, HF vision config and preprocessing."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    tower: Tower = Field(description="'siglip' or 'clip'.")
    vision_config: dict[str, Any] = Field(description="The HF SiglipVisionConfig/CLIPVisionConfig as a dict.")
    preprocess: PreprocessConfig = Field(description="Image preprocessing for this tower.")

    @field_validator("vision_config")
    @classmethod
    def _json_normal_form(cls, value: dict[str, Any]) -> dict[str, Any]:
        # JSON round trip (int dict keys become str) so a saved and reloaded config compares equal;
        # classification label maps mean nothing for a vision tower.
        data = json.loads(json.dumps(value, default=str))
        return {k: v for k, v in data.items() if k not in ("id2label", "label2id")}

    @property
    def image_size(self) -> int:
        """Side of the square model input."""
        return self.preprocess.image_size

    def hf_vision_config(self) -> Any:
        """The transformers vision config object."""
        from transformers import CLIPVisionConfig, SiglipVisionConfig

        config_cls = SiglipVisionConfig if self.tower == "siglip" else CLIPVisionConfig
        data = {
            k: v for k, v in self.vision_config.items() if k not in ("model_type", "transformers_version")
        }
        return config_cls(**data)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    # HF prints a load table for every full-model folder (text keys unused); we report misses ourselves.
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _vision_class(tower: Tower) -> Any:
    from transformers import CLIPVisionModel, SiglipVisionModel

    return SiglipVisionModel if tower == "siglip" else CLIPVisionModel


class StyleEncoder(torch.nn.Module):
    """Vision tower → pooled output → L2 normalisation; ``vision_model`` holds the trainable HF tower."""

    def __init__(self, config: StyleEncoderConfig, vision_model: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        if vision_model is None:
            vision_model = _vision_class(config.tower)(config.hf_vision_config())
        if config.tower == "siglip" and not getattr(vision_model.config, "vision_use_head", True):
            raise ValueError("SigLIP tower has vision_use_head=False: it has no pooled output to embed with")
        self.vision_model = vision_model
        self.preprocessor = ImagePreprocessor(config.preprocess)

    # ----- construction -------------------------------------------------------------------------
    @classmethod
    def from_vision_config(
        cls, tower: Tower, vision_config: Mapping[str, Any], image_size: int | None = None, seed: int = 0
    ) -> StyleEncoder:
        """A randomly initialised encoder (seeded; the caller's RNG state is left untouched)."""
        data = dict(vision_config)
        if image_size is not None:
            data["image_size"] = image_size
        probe = StyleEncoderConfig(
            tower=tower, vision_config=data, preprocess=PreprocessConfig.for_tower(tower, 1)
        )
        hf_config = probe.hf_vision_config()
        config = StyleEncoderConfig(
            tower=tower,
            vision_config=hf_config.to_dict(),
            preprocess=PreprocessConfig.for_tower(tower, int(hf_config.image_size)),
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vision_model = _vision_class(tower)(hf_config)
        return cls(config, vision_model).eval()

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> StyleEncoder:
        """Load our saved folder, or a local HF SigLIP/CLIP folder (full model or vision-only)."""
        folder = Path(path).expanduser()
        if not folder.exists():
            raise FileNotFoundError(
                f"encoder folder {folder} does not exist (only local folders are read; nothing is downloaded)"
            )
        if folder.is_file():
            raise ValueError(
                f"{folder} is a file; for an official .pth/.safetensors state dict use "
                "megastyle.encode.load_official_encoder(pth, base_model_path)"
            )
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}: not an encoder or HF model folder")
        data = json.loads(config_path.read_text(encoding="utf-8"))
        if data.get("format") == FORMAT_MARKER:
            encoder = cls._from_our_folder(folder, data)
        else:
            encoder = cls._from_hf_folder(folder, data)
        encoder.eval()
        if device is not None or dtype is not None:
            encoder.to(device=device, dtype=dtype)
        return encoder

    @classmethod
    def _from_our_folder(cls, folder: Path, data: dict[str, Any]) -> StyleEncoder:
        from safetensors.torch import load_file

        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"{folder}: unsupported encoder format version {version!r}")
        config = StyleEncoderConfig.model_validate(data["encoder"])
        encoder = cls(config)
        weights = folder / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{folder} has no {WEIGHTS_NAME}")
        encoder.load_official_state_dict(load_file(weights), strict=True, source=str(weights))
        return encoder

    @classmethod
    def _from_hf_folder(cls, folder: Path, data: dict[str, Any]) -> StyleEncoder:
        model_type = data.get("model_type")
        tower = _HF_MODEL_TYPES.get(str(model_type))
        if tower is None:
            raise ValueError(
                f"{folder}: model_type {model_type!r} is not a SigLIP or CLIP model "
                f"(expected one of {sorted(_HF_MODEL_TYPES)})"
            )
        with _quiet_transformers():
            # The vision class's from_pretrained also reads full-model folders (it takes vision_config).
            vision_model, info = _vision_class(tower).from_pretrained(
                folder, local_files_only=True, output_loading_info=True
            )
        if info.get("missing_keys") or info.get("mismatched_keys"):
            raise ValueError(
                f"{folder}: vision weights incomplete (missing {sorted(info.get('missing_keys', []))[:8]}, "
                f"mismatched {list(info.get('mismatched_keys', []))[:4]})"
            )
        image_size = int(vision_model.config.image_size)
        processor = read_hf_processor_config(folder)
        preprocess = (
            PreprocessConfig.from_hf_processor_config(processor, tower, image_size)
            if processor is not None
            else PreprocessConfig.for_tower(tower, image_size)
        )
        config = StyleEncoderConfig(
            tower=tower, vision_config=vision_model.config.to_dict(), preprocess=preprocess
        )
        return cls(config, vision_model)

    def set_preprocess(self, preprocess: PreprocessConfig) -> None:
        """Use other preprocessing (same input size); it is saved with the encoder."""
        if preprocess.image_size != self.config.preprocess.image_size:
            raise ValueError(
                f"image_size {preprocess.image_size} differs from the tower's {self.config.preprocess.image_size}"
            )
        self.config = self.config.model_copy(update={"preprocess": preprocess})
        self.preprocessor = ImagePreprocessor(preprocess)

    # ----- saving and state dicts ---------------------------------------------------------------
    def official_state_dict(self, *, prefix: str = OFFICIAL_PREFIX) -> dict[str, torch.Tensor]:
        """Tower weights under the official/HF names (``vision_model.`` + canonical key), on CPU."""
        out: dict[str, torch.Tensor] = {}
        for key, tensor in self.vision_model.state_dict().items():
            name, _ = canonical_key(key)
            out[prefix + name] = tensor.detach().to("cpu").contiguous()
        return out

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write ``config.json``, ``model.safetensors`` (official key names) and ``preprocessor_config.json``."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        config = self.config.model_copy(update={"vision_config": self.vision_model.config.to_dict()})
        payload = {
            "format": FORMAT_MARKER,
            "format_version": FORMAT_VERSION,
            "encoder": config.model_dump(mode="json"),
        }
        save_file(self.official_state_dict(), str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
        (folder / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
        processor = self.config.preprocess.to_hf_processor_config(self.config.tower)
        (folder / PROCESSOR_NAME).write_text(json.dumps(processor, indent=2), encoding="utf-8")

    def export_official(
        self,
        path: str | os.PathLike[str],
        *,
        layout: Literal["transformers4", "transformers5"] = "transformers4",
    ) -> Path:
        """``torch.save`` a plain state dict the official ``style_score.py`` loads.

        ``transformers4`` (default; the official script's environment) keeps the ``vision_model.`` prefix;
        ``transformers5`` writes the flattened names a transformers-5 ``SiglipVisionModel`` expects.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        prefix = OFFICIAL_PREFIX if layout == "transformers4" else ""
        torch.save(self.official_state_dict(prefix=prefix), out)
        return out

    def load_official_state_dict(
        self,
        path_or_dict: str | os.PathLike[str] | Mapping[str, Any],
        strict: bool = False,
        *,
        source: str | None = None,
    ) -> LoadReport:
        """Load ``megastyle_encoder.pth`` semantics: bare or ``{"model": sd}``, any wrapper prefixes."""
        if isinstance(path_or_dict, Mapping):
            state_dict = unwrap_state_dict(path_or_dict)
            source = source or "state dict"
        else:
            source = source or str(path_or_dict)
            state_dict = unwrap_state_dict(read_state_dict(path_or_dict))
        report = LoadReport(source=source)
        own = self.vision_model.state_dict()
        by_canonical = {canonical_key(k)[0]: k for k in own}
        matched: dict[str, torch.Tensor] = {}
        for key, value in state_dict.items():
            name, stripped = canonical_key(key)
            target = by_canonical.get(name)
            if target is None or not isinstance(value, torch.Tensor):
                report.unexpected.append(key)
                continue
            if tuple(value.shape) != tuple(own[target].shape):
                report.mismatched.append(f"{key}: {tuple(value.shape)} vs {tuple(own[target].shape)}")
                continue
            if target in matched:
                report.unexpected.append(f"{key} (duplicate of {target})")
                continue
            report.stripped_prefixes.extend(p for p in stripped if p not in report.stripped_prefixes)
            matched[target] = value
        report.missing = sorted(set(own) - set(matched))
        if strict and not report.ok:
            raise StateDictLoadError(report)
        self.vision_model.load_state_dict(matched, strict=False)
        report.loaded = len(matched)
        return report

    # ----- inference ----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Embedding width (the tower's hidden size: no projection)."""
        return int(self.vision_model.config.hidden_size)

    @property
    def image_size(self) -> int:
        """Side of the square model input."""
        return self.config.image_size

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """(n, 3, H, W) float32 pixel values per the tower's preprocessing (one view per image)."""
        return self.preprocessor.batch(images)

    def embed_views(self, views: Sequence[torch.Tensor]) -> torch.Tensor:
        """(n, d) embeddings of n images given as (v_i, 3, H, W) views: the normalised mean over views.

        With one view per image (the towers' standard preprocessing) this is exactly ``forward``.
        """
        if all(len(v) == 1 for v in views):
            return self(torch.cat(list(views)))
        counts = [len(v) for v in views]
        features = self(torch.cat(list(views)))
        return F.normalize(torch.stack([f.mean(0) for f in features.split(counts)]), dim=-1)

    def training_transform(
        self, augment: Callable[[Image.Image], Image.Image] | None = None
    ) -> ImagePreprocessor:
        """A picklable per-image transform for dataloaders: ``augment`` (PIL → PIL) then preprocessing."""
        return ImagePreprocessor(self.config.preprocess, augment)

    def pooled(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The tower's pooled output before normalisation."""
        weight = next(self.vision_model.parameters())
        pixel_values = pixel_values.to(device=weight.device, dtype=weight.dtype)
        return self.vision_model(pixel_values=pixel_values).pooler_output

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(n, d) L2-normalised pooled output."""
        return F.normalize(self.pooled(pixel_values), dim=-1)

    @torch.no_grad()
    def embed_images(
        self,
        images: Sequence[Image.Image],
        batch_size: int = 32,
        device: str | torch.device | None = None,
    ) -> np.ndarray:
        """Embed PIL images in eval mode without gradients → float32 (n, d)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        was_training = self.training
        if device is not None:
            self.to(device)
        self.eval()
        try:
            chunks = [
                self.embed_views([self.preprocessor.views(im) for im in images[i : i + batch_size]])
                .float()
                .cpu()
                .numpy()
                for i in range(0, len(images), batch_size)
            ]
        finally:
            self.train(was_training)
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)


def cosine_score(encoder: StyleEncoder, image_a: Image.Image, image_b: Image.Image) -> float:
    """Style similarity of two images: dot product of normalised pooled outputs (official score)."""
    embeddings = encoder.embed_images([image_a, image_b], batch_size=2)
    return float(np.dot(embeddings[0], embeddings[1]))
