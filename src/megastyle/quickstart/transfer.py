"""Quickstart step 4: style transfer on a tiny random FLUX, so the whole MegaStyle-FLUX path runs offline.

The transformer, VAE and text encoders are random (built offline through the real diffusers and
transformers classes); the output shows the path works end to end, not what MegaStyle-FLUX looks
like. The report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from megastyle.data import ShardReader
from megastyle.progress import quiet_library_bars
from megastyle.report.html import Section
from megastyle.testing import build_tiny_flux_pipeline
from megastyle.transfer.commands import TransferConfig, run_transfer
from megastyle.transfer.generate import OFFICIAL_CONTENT_PROMPTS


def style_transfer_demo(
    dataset_dir: Path, out: Path, *, seed: int, references: int = 2
) -> tuple[dict[str, Any], Section]:
    """Save a few style references from the dataset, run ``megastyle transfer`` on a tiny FLUX."""
    with quiet_library_bars():
        return _demo(dataset_dir, out, seed=seed, references=references)


def _demo(dataset_dir: Path, out: Path, *, seed: int, references: int) -> tuple[dict[str, Any], Section]:
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
    section = Section("3. Style transfer").text(
        "MegaStyleFluxPipeline, the MegaStyle-FLUX design on diffusers: the reference image's VAE latents join the "
        "token sequence before the target's, with RoPE ids shifted by the token-grid width, and only the target "
        "is denoised. Here it runs on a tiny FLUX with random weights built offline.",
    )
    section.text(
        "These images are noise by design: the tiny model is untrained. They show that the whole path runs. "
        "For real style transfer, give FLUX.1-dev and the official LoRA: megastyle transfer --model DIR --lora "
        "megastyle_flux.safetensors --style ref.png --prompt 'A bench'.",
        warn=True,
    )
    section.image(
        out / "transfer" / manifest["sheet"],
        out,
        "References (left) × the official three prompts.",
        width=520,
    )
    return summary, section
