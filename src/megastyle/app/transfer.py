"""Style transfer behind the app's first tab: one reference, prompts one per line, several images each.

The pipeline is loaded once, on first use. The LoRA is loaded at strength 1 and its strength is then
set on the loaded adapter, so changing it never stacks a second copy. Every batch is written under
the app's work folder with a manifest, and offered as one zip.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from megastyle.config import ConfigError

MAX_IMAGES = 64  # per request: one request must not hold the GPU for hours


@dataclass(frozen=True)
class TransferRequest:
    """What the user asked for."""

    prompts: list[str]
    images_per_prompt: int = 1
    seed: int = 42
    random_seed: bool = False
    steps: int = 30
    guidance: float = 3.5
    size: int = 512
    schedule: str = "official"
    lora_scale: float = 1.0
    reference_resize_mode: str = "crop"
    max_sequence_length: int = 512


@dataclass
class TransferResult:
    """The images with their captions, the settings of each, and where they were written."""

    images: list[Image.Image] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    folder: Path | None = None
    archive: Path | None = None
    failures: list[str] = field(default_factory=list)


def parse_prompts(text: str) -> list[str]:
    """One prompt per non-empty line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


class StyleTransfer:
    """A MegaStyle-FLUX pipeline loaded from local files, run request by request."""

    def __init__(self, flux: Path | None, lora: Path | None, device: str, work_dir: Path) -> None:
        self.flux, self.lora, self.device, self.work_dir = flux, lora, device, work_dir
        self._pipe: Any = None
        self._scale: float | None = None
        self._lock = threading.Lock()

    def pipeline(self) -> Any:
        """The loaded pipeline (loaded on first use)."""
        from megastyle.devices import resolve_device
        from megastyle.transfer.loading import load_pipeline, resolve_dtype

        with self._lock:
            if self._pipe is None:
                if self.flux is None:
                    raise ConfigError(
                        "no FLUX pipeline: start the app with --flux DIR (a local FLUX.1-dev folder)"
                    )
                device = resolve_device(self.device)
                self._pipe, report = load_pipeline(
                    self.flux, self.lora, 1.0, resolve_dtype("auto", device), device
                )
                self._scale = 1.0 if report is not None else None
            return self._pipe

    def set_lora_scale(self, scale: float) -> None:
        """Set the loaded LoRA's strength (no second copy is ever added)."""
        from megastyle.transfer.lora import DEFAULT_ADAPTER, set_lora_scale

        if self._scale is not None and scale != self._scale:
            set_lora_scale(self.pipeline(), DEFAULT_ADAPTER, scale)
            self._scale = scale

    def run(
        self,
        reference: Image.Image,
        request: TransferRequest,
        *,
        on_step: Callable[[int], object] | None = None,
        scorer: Any = None,
    ) -> TransferResult:
        """Generate ``images_per_prompt`` images for every prompt in the reference's style."""
        from megastyle.transfer.generate import PipelineGenerator, StyleReference, generate
        from megastyle.transfer.loading import check_size

        prompts = [p for p in request.prompts if p.strip()]
        if not prompts:
            raise ConfigError("prompts: write at least one content prompt (one per line)")
        total = len(prompts) * request.images_per_prompt
        if total > MAX_IMAGES:
            raise ConfigError(f"{total} images asked for; one request makes at most {MAX_IMAGES}")
        pipe = self.pipeline()
        check_size(pipe, request.size)
        self.set_lora_scale(request.lora_scale)
        base_seed = secrets.randbelow(2**31) if request.random_seed else request.seed
        generator = PipelineGenerator(
            pipe, height=request.size, width=request.size, num_inference_steps=request.steps,
            guidance_scale=request.guidance, schedule=request.schedule,
            reference_resize_mode=request.reference_resize_mode, on_step=on_step,
            max_sequence_length=request.max_sequence_length,
        )  # fmt: skip
        # Each image is one item of the grid: a reference per prompt copy, seeds base_seed + i.
        items = [(p, n) for p in prompts for n in range(request.images_per_prompt)]
        references = [StyleReference("reference", reference.convert("RGB"))]
        seeds = [[base_seed + i for i in range(len(items))]]
        images, rejects = generate(generator, references, [p for p, _ in items], seeds, batch_size=1)
        result = TransferResult(failures=[f"{r.item}: {r.cause}" for r in rejects])
        scores = _scores(scorer, reference, images[0]) if scorer is not None else [None] * len(items)
        for i, ((prompt, _), image) in enumerate(zip(items, images[0], strict=True)):
            if image is None:
                continue
            settings = {
                k: v for k, v in asdict(request).items() if k not in ("prompts", "seed", "random_seed")
            }
            record = {"prompt": prompt, "seed": seeds[0][i], "style_score": scores[i], **settings}
            score = f", style score {scores[i]:.3f}" if scores[i] is not None else ""
            result.images.append(image)
            result.captions.append(f"{prompt} · seed {seeds[0][i]}{score}")
            result.records.append(record)
        result.folder, result.archive = self._save(reference, result)
        return result

    def _save(self, reference: Image.Image, result: TransferResult) -> tuple[Path, Path]:
        folder = self.work_dir / "transfer" / time.strftime("%Y%m%d-%H%M%S")
        suffix = 1
        while folder.exists():
            folder = folder.with_name(f"{folder.name.split('_')[0]}_{suffix}")
            suffix += 1
        folder.mkdir(parents=True)
        reference.convert("RGB").save(folder / "reference.png")
        for i, (image, record) in enumerate(zip(result.images, result.records, strict=True)):
            record["file"] = f"{i:03d}_seed{record['seed']}.png"
            image.save(folder / record["file"])
        manifest = {
            "flux": str(self.flux), "lora": str(self.lora) if self.lora else None, "images": result.records,
            "failures": result.failures,
        }  # fmt: skip
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        archive = folder.with_suffix(".zip")
        with zipfile.ZipFile(archive, "w") as handle:
            for file in sorted(folder.iterdir()):
                handle.write(file, f"{folder.name}/{file.name}")
        return folder, archive


def _scores(encoder: Any, reference: Image.Image, images: list[Image.Image | None]) -> list[float | None]:
    """Each image's style score against the reference under ``encoder`` (None where no image)."""
    import numpy as np

    present = [im for im in images if im is not None]
    if not present:
        return [None] * len(images)
    vectors = np.asarray(
        encoder.embed_images([reference.convert("RGB"), *present], batch_size=16), np.float32
    )
    it = iter(vectors[1:] @ vectors[0])
    return [float(next(it)) if im is not None else None for im in images]
