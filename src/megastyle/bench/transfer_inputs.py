"""Inputs of the style-transfer benchmark: reference styles, the generators under test and the CLIP scorer.

References come from a folder of images (one style each) or megastyle shards (one seeded row per style);
generators follow ``TransferGenerator`` (``PipelineGenerator`` wraps the MegaStyle pipeline,
``CopyReferenceGenerator`` is the leakage ceiling); ``ClipScorer`` embeds images and prompts with a
local CLIP folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image

from megastyle.data import Reject, ShardReader, build_style_index, decode_image

if TYPE_CHECKING:
    import torch

OFFICIAL_CONTENT_PROMPTS: tuple[str, ...] = ("A bench", "A car", "A house with a tree beside")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class TransferGenerator(Protocol):
    """A style transfer model: prompts, one style image and one seeded generator per prompt → one image each."""

    def __call__(
        self, prompt: list[str], style_image: list[Image.Image], generator: list[torch.Generator]
    ) -> Any: ...


class ImageEmbedder(Protocol):
    """Anything with ``embed_images`` returning L2-normalised (n, d) rows."""

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray: ...


@dataclass
class StyleReference:
    """One reference style image; ``content`` is its own content prompt when known (shard rows)."""

    id: str
    image: Image.Image
    style: str | None = None
    content: str | None = None


# ----- references -------------------------------------------------------------------------------
def _pick(items: list[Any], max_items: int | None, seed: int) -> list[Any]:
    if max_items is None or max_items >= len(items):
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=max_items, replace=False))
    return [items[i] for i in keep]


def load_references(
    source: str | Path, *, max_styles: int | None = None, seed: int = 0
) -> tuple[list[StyleReference], list[Reject]]:
    """References from a folder of images (one style each) or megastyle shards (one seeded row per style)."""
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"reference source {path} does not exist")
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return [StyleReference(path.stem, decode_image(path.read_bytes(), item=str(path)))], []
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if path.is_dir() else []
    if files:
        references, rejects = [], []
        for file in _pick(files, max_styles, seed):
            name = (
                file.relative_to(path).with_suffix("").as_posix().replace("/", "_")
            )  # unique across subfolders
            try:
                references.append(StyleReference(name, decode_image(file.read_bytes(), item=str(file))))
            except ValueError as err:
                rejects.append(Reject(str(file), str(err)))
        return references, rejects
    return _shard_references(path, max_styles, seed)


def _shard_references(
    path: Path, max_styles: int | None, seed: int
) -> tuple[list[StyleReference], list[Reject]]:
    reader = ShardReader(path)
    index = build_style_index(reader)
    if len(index) == 0:
        raise ValueError(f"{path} holds no images and no shard rows")
    rng = np.random.default_rng(seed)
    references, rejects = [], []
    for label in _pick(list(range(len(index))), max_styles, seed):
        rows = index.rows_for_label(label)
        record = reader[int(rows[rng.integers(len(rows))])]
        try:
            image = record.pil_image()
        except ValueError as err:
            rejects.append(Reject(record.id, str(err)))
            continue
        style_id = index.style_ids[label]
        name = f"s{style_id}" if style_id is not None else record.id
        references.append(StyleReference(name, image, style=record.style, content=record.content))
    return references, rejects


# ----- generators -------------------------------------------------------------------------------
@dataclass
class PipelineGenerator:
    """Adapter: a ``MegaStyleFluxPipeline`` with fixed settings; ``use_reference=False`` = plain FLUX."""

    pipeline: Any
    height: int = 512
    width: int = 512
    num_inference_steps: int | None = None
    guidance_scale: float = 3.5
    schedule: str = "official"
    max_sequence_length: int = 512
    reference_resize_mode: str = "crop"
    use_reference: bool = True

    def __call__(
        self, prompt: list[str], style_image: list[Image.Image], generator: list[Any]
    ) -> list[Image.Image]:
        """Run the pipeline; one image per prompt (style image ``i`` for prompt ``i``)."""
        output = self.pipeline(
            prompt=list(prompt),
            style_image=style_image if self.use_reference else None,
            height=self.height,
            width=self.width,
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            schedule=self.schedule,
            generator=generator,
            max_sequence_length=self.max_sequence_length,
            reference_resize_mode=self.reference_resize_mode,
            output_type="pil",
        )
        return list(output.images)


class CopyReferenceGenerator:
    """Returns the reference itself for every prompt: the ceiling of content leakage (and of style score)."""

    def __call__(
        self, prompt: list[str], style_image: list[Image.Image], generator: list[Any]
    ) -> list[Image.Image]:
        """A copy of each prompt's style image."""
        return [image.copy() for image in style_image]


# ----- CLIP -------------------------------------------------------------------------------------
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
