"""CLIP as a scorer for the style-transfer benchmark: projected image and text embeddings from a local folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch


class ClipScorer:
    """A local CLIP folder (``CLIPModel`` + ``CLIPProcessor``): L2-normalised projected image/text embeddings."""

    def __init__(self, path: str | Path, *, device: str = "cpu", dtype: torch.dtype | None = None) -> None:
        from transformers import CLIPModel, CLIPProcessor

        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"{folder} is not a local CLIP folder (no config.json); nothing is downloaded"
            )
        self.path = str(folder)
        self.device = device
        self.model = CLIPModel.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device).eval()
        self.processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)

    @staticmethod
    def _features(output: Any) -> torch.Tensor:
        import torch.nn.functional as F

        # transformers 5 returns an output object whose pooler_output is the projected embedding.
        tensor = output if hasattr(output, "dim") else output.pooler_output
        return F.normalize(tensor.float(), dim=-1)

    def _stack(self, chunks: list[np.ndarray]) -> np.ndarray:
        """The chunks as one (n, d) array; (0, d) when there were no inputs."""
        if not chunks:
            return np.zeros((0, self.model.config.projection_dim), np.float32)
        return np.concatenate(chunks)

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """(n, d) float32 rows."""
        import torch

        chunks = []
        with torch.inference_mode():
            for i in range(0, len(images), batch_size):
                batch = [im.convert("RGB") for im in images[i : i + batch_size]]
                pixels = self.processor(images=batch, return_tensors="pt")["pixel_values"]
                pixels = pixels.to(self.device, dtype=self.model.dtype)
                chunks.append(
                    self._features(self.model.get_image_features(pixel_values=pixels)).cpu().numpy()
                )
        return self._stack(chunks)

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """(n, d) float32 rows (prompts truncated to CLIP's 77 tokens)."""
        import torch

        chunks = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                tokens = self.processor(
                    text=list(texts[i : i + batch_size]), padding=True, truncation=True, return_tensors="pt"
                ).to(self.device)
                features = self.model.get_text_features(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                )
                chunks.append(self._features(features).cpu().numpy())
        return self._stack(chunks)
