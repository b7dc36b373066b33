"""Style references × content prompts → images, in seeded batches: what ``megastyle transfer``, the
style-transfer benchmark, the quickstart and the app all run.

References come from an image, a folder of images (one style each) or megastyle shards (one seeded
row per style). A generator is any callable ``generator(prompt=[...], style_image=[PIL, ...],
generator=[torch.Generator, ...])`` (one style image and one generator per prompt; a batch may span
references) returning images, a list or an object with ``.images``; ``PipelineGenerator`` wraps
``MegaStyleFluxPipeline``. Item (reference r, prompt p) gets seed ``seed + r · len(prompts) + p`` and
its own ``torch.Generator``, so results do not depend on the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image

from megastyle.data import (
    Reject,
    ShardReader,
    build_style_index,
    decode_image,
    is_image_file,
    list_image_files,
)

if TYPE_CHECKING:
    import torch

OFFICIAL_CONTENT_PROMPTS: tuple[str, ...] = ("A bench", "A car", "A house with a tree beside")


class TransferGenerator(Protocol):
    """A style transfer model: prompts, one style image and one seeded generator per prompt → one image each."""

    def __call__(
        self, prompt: list[str], style_image: list[Image.Image], generator: list[torch.Generator]
    ) -> Any: ...


@dataclass
class StyleReference:
    """One reference style image; ``content`` is its own content prompt when known (shard rows)."""

    id: str
    image: Image.Image
    style: str | None = None
    content: str | None = None


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
    if is_image_file(path):
        return [StyleReference(path.stem, decode_image(path.read_bytes(), item=str(path)))], []
    files = list_image_files(path) if path.is_dir() else []
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
    on_step: Callable[[int], object] | None = None  # told the batch size after every denoising step

    def __call__(
        self, prompt: list[str], style_image: list[Image.Image], generator: list[Any]
    ) -> list[Image.Image]:
        """Run the pipeline; one image per prompt (style image ``i`` for prompt ``i``)."""
        on_step = self.on_step

        def step_done(pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if on_step is not None:
                on_step(len(prompt))
            return tensors

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
            callback_on_step_end=step_done if on_step is not None else None,
        )
        return list(output.images)


def _as_images(output: Any) -> list[Any]:
    return list(getattr(output, "images", output))


def generate(
    generator: TransferGenerator,
    references: Sequence[StyleReference],
    prompts: Sequence[str],
    seeds: Sequence[Sequence[int]],
    *,
    batch_size: int = 4,
) -> tuple[list[list[Image.Image | None]], list[Reject]]:
    """Run ``generator`` over references × prompts in batches (reference-major, one reference per prompt).

    A batch may span references: the pipeline takes one style image per prompt. A failing batch is
    recorded (one Reject per item) and the run goes on.
    """
    import torch

    images: list[list[Image.Image | None]] = [[None] * len(prompts) for _ in references]
    rejects: list[Reject] = []
    items = [(r, p) for r in range(len(references)) for p in range(len(prompts))]
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        try:
            out = _as_images(
                generator(
                    prompt=[prompts[p] for _, p in batch],
                    style_image=[references[r].image for r, _ in batch],
                    generator=[torch.Generator().manual_seed(seeds[r][p]) for r, p in batch],
                )
            )
            if len(out) != len(batch) or not all(isinstance(im, Image.Image) for im in out):
                raise ValueError(f"returned {len(out)} items, expected {len(batch)} PIL images")
        except Exception as err:  # a failing batch must not end a long benchmark
            cause = f"{type(err).__name__}: {err}"
            rejects.extend(Reject(f"{references[r].id} × {prompts[p]!r}", cause) for r, p in batch)
        else:
            for (r, p), image in zip(batch, out, strict=True):
                images[r][p] = image.convert("RGB")
    return images, rejects
