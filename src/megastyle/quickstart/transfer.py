"""Quickstart step 4: style transfer on a tiny random FLUX, so the whole MegaStyle-FLUX path runs offline.

The transformer, VAE and text encoders are random (built offline through the real diffusers and
transformers classes); the output shows the path works end to end, not what MegaStyle-FLUX looks
like. The report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from megastyle.data import ShardReader
from megastyle.report.html import Section
from megastyle.testing import build_tiny_flux_pipeline
from megastyle.transfer.commands import TransferConfig, run_transfer
from megastyle.transfer.generate import OFFICIAL_CONTENT_PROMPTS


def style_transfer_demo(
    dataset_dir: Path, out: Path, *, seed: int, references: int = 2
) -> tuple[dict[str, Any], Section]:
    """Save a few style references from the dataset, run ``megastyle transfer`` on a tiny FLUX."""
    model_dir = out / "tiny_flux_untrained"
    if not (model_dir / "model_index.json").exists():
        build_tiny_flux_pipeline(model_dir, seed=seed)
    refs_dir = out / "transfer_references"
    refs_dir.mkdir(parents=True, exist_ok=True)
    seen: set[int | None] = set()
    paths = []
    for record in ShardReader(dataset_dir):
        if record.style_id in seen:
            continue
        seen.add(record.style_id)
        path = refs_dir / f"style_{record.style_id}.png"
        record.pil_image().save(path)
        paths.append(path)
        if len(paths) == references:
            break
    cfg = TransferConfig(
        style=paths,
        prompt=list(OFFICIAL_CONTENT_PROMPTS),
        model=model_dir,
        size=64,
        steps=4,
        seed=seed,
        max_sequence_length=32,
        device="cpu",
        dtype="fp32",
        output_dir=out / "transfer",
    )
    manifest = run_transfer(cfg)
    summary = {"images": sum("file" in e for e in manifest["images"]), "untrained": manifest["untrained"]}
    section = Section("4. Style transfer (MegaStyle-FLUX path, untrained tiny model)").text(
        "MegaStyleFluxPipeline on a tiny FLUX with RANDOM weights built offline: the reference's VAE latents join "
        "the sequence before the target with shifted RoPE ids, as in the official design. The images only show "
        "that the path runs; bring FLUX.1-dev and the official LoRA (megastyle transfer --model … --lora …) for "
        "real style transfer.",
        note=True,
    )
    section.image(
        out / "transfer" / manifest["sheet"], out, "References (left) × the official three prompts."
    )
    return summary, section
