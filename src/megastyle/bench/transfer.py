"""StyleBench-like evaluation of style transfer: reference styles × content prompts → three scores per image.

Every "generator" is any callable ``generator(prompt=[...], style_image=[PIL, ...], generator=[torch.Generator,
...])`` (one style image and one generator per prompt; batches may span references) returning images (a list,
or an object with ``.images`` like a diffusers pipeline output): the MegaStyle pipeline with or without a LoRA
(``transfer.generate.PipelineGenerator``), the reference itself (``CopyReferenceGenerator``), or a test double.
Each (reference r, prompt p) gets the seed ``seed + r · len(prompts) + p`` and its own ``torch.Generator``,
so every generator sees the same noise for the same item and results do not depend on the batch size.

Scores (means over all generated images, with the standard deviation):
- **style score** (↑): cosine of the style encoder's L2-normalised embeddings of output and reference — the
  official ``style_score.py`` measure (raw, in [-1, 1]); any object with ``embed_images(images, batch_size)``
  returning L2-normalised rows works (``megastyle.encode.StyleEncoder``, the baselines of ``bench``).
- **text score** (↑): ``100 · cos`` of CLIP's projected image embedding of the output and text embedding of
  the content prompt (CLIP-score scale ×100, no clamp at 0 and no 2.5 weight, unlike CLIPScore).
- **content leakage** (↓): ``100 · cos`` of CLIP image embeddings of output and reference. CLIP image features
  carry content (objects, layout) as well as style, so this rises when the reference's content is copied: a
  generator returning the reference scores 100 here (and 1.0 style score), while a true transfer raises the
  style score without raising leakage as much. Read it beside the style score, on the same references.
- **reference-content score** (diagnostic, only when references carry their own content prompt, e.g. shard
  rows): ``100 · cos`` of the output with CLIP's embedding of the *reference's* content prompt; compare it with
  the text score (the requested content).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image
from rich.console import Console

from megastyle.bench.clip import ClipScorer
from megastyle.data import Reject
from megastyle.transfer.generate import (
    OFFICIAL_CONTENT_PROMPTS,
    PipelineGenerator,
    StyleReference,
    TransferGenerator,
    generate,
    load_references,
)

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "OFFICIAL_CONTENT_PROMPTS",
    "ClipScorer",
    "CopyReferenceGenerator",
    "GeneratorRun",
    "PipelineGenerator",
    "StyleReference",
    "TransferBenchResult",
    "evaluate_transfer",
    "load_references",
    "transfer_markdown",
    "transfer_table",
    "write_transfer_report",
]

METRICS = ("style_score", "text_score", "content_leakage", "reference_content_score")


class ImageEmbedder(Protocol):
    """Anything with ``embed_images`` returning L2-normalised (n, d) rows."""

    def embed_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray: ...


class CopyReferenceGenerator:
    """Returns the reference itself for every prompt: the ceiling of content leakage (and of style score)."""

    def __call__(
        self, prompt: list[str], style_image: list[Image.Image], generator: list[Any]
    ) -> list[Image.Image]:
        """A copy of each prompt's style image."""
        return [image.copy() for image in style_image]


# ----- evaluation -------------------------------------------------------------------------------
@dataclass
class GeneratorRun:
    """One generator's images (``images[r][p]``, None where it failed), per-image scores and failures."""

    name: str
    images: list[list[Image.Image | None]]
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # metric → (refs, prompts), NaN = no value
    rejects: list[Reject] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Mean/std per metric over the images that exist, the image count and the failure count."""
        out: dict[str, Any] = {"images": int(sum(im is not None for row in self.images for im in row))}
        for metric, values in self.scores.items():
            valid = values[~np.isnan(values)]
            out[metric] = float(valid.mean()) if valid.size else None
            out[f"{metric}_std"] = float(valid.std()) if valid.size else None
        out["failed"] = len(self.rejects)
        return out


@dataclass
class TransferBenchResult:
    """All generators on the same references, prompts and seeds."""

    references: list[StyleReference]
    prompts: list[str]
    seeds: list[list[int]]
    runs: dict[str, GeneratorRun]
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary plus per-image scores."""
        per_image = {
            name: [
                {"reference": ref.id, "prompt": prompt, "seed": self.seeds[r][p]}
                | {m: _num(run.scores[m][r, p]) for m in run.scores}
                for r, ref in enumerate(self.references)
                for p, prompt in enumerate(self.prompts)
            ]
            for name, run in self.runs.items()
        }
        return {
            "settings": self.settings,
            "references": [{"id": r.id, "style": r.style, "content": r.content} for r in self.references],
            "prompts": self.prompts,
            "summary": {name: run.summary() for name, run in self.runs.items()},
            "per_image": per_image,
            "rejects": {
                name: [{"item": j.item, "cause": j.cause} for j in run.rejects]
                for name, run in self.runs.items()
            },
        }


def _num(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def score(
    images: Sequence[Sequence[Image.Image | None]],
    references: Sequence[StyleReference],
    prompts: Sequence[str],
    style_encoder: ImageEmbedder,
    clip: ClipScorer,
    *,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """Per-image metrics, each (references, prompts); NaN where there is no image (or no reference content)."""
    shape = (len(references), len(prompts))
    scores = {m: np.full(shape, np.nan) for m in METRICS}
    cells = [(r, p) for r in range(shape[0]) for p in range(shape[1]) if images[r][p] is not None]
    if not cells:
        return scores
    outputs = [images[r][p] for r, p in cells]
    ref_images = [ref.image for ref in references]
    style_out = style_encoder.embed_images(outputs, batch_size=batch_size)
    style_ref = style_encoder.embed_images(ref_images, batch_size=batch_size)
    clip_out = clip.embed_images(outputs, batch_size=batch_size)
    clip_ref = clip.embed_images(ref_images, batch_size=batch_size)
    clip_prompt = clip.embed_texts(list(prompts))
    contents = [ref.content for ref in references]
    known = [i for i, c in enumerate(contents) if c]
    clip_content = (
        dict(zip(known, clip.embed_texts([contents[i] for i in known]), strict=True)) if known else {}
    )
    for k, (r, p) in enumerate(cells):
        scores["style_score"][r, p] = float(style_out[k] @ style_ref[r])
        scores["text_score"][r, p] = 100.0 * float(clip_out[k] @ clip_prompt[p])
        scores["content_leakage"][r, p] = 100.0 * float(clip_out[k] @ clip_ref[r])
        if r in clip_content:
            scores["reference_content_score"][r, p] = 100.0 * float(clip_out[k] @ clip_content[r])
    return scores


def evaluate_transfer(
    generators: Mapping[str, TransferGenerator],
    references: Sequence[StyleReference],
    prompts: Sequence[str],
    style_encoder: ImageEmbedder,
    clip: ClipScorer,
    *,
    seed: int = 0,
    batch_size: int = 4,
    score_batch_size: int = 32,
    settings: Mapping[str, Any] | None = None,
) -> TransferBenchResult:
    """Generate with every generator on the same references, prompts and seeds, then score every image."""
    if not references:
        raise ValueError("no references to evaluate")
    if not prompts:
        raise ValueError("no content prompts to evaluate")
    seeds = [[seed + r * len(prompts) + p for p in range(len(prompts))] for r in range(len(references))]
    runs = {}
    for name, generator in generators.items():
        images, rejects = generate(generator, references, prompts, seeds, batch_size=batch_size)
        scores = score(images, references, prompts, style_encoder, clip, batch_size=score_batch_size)
        runs[name] = GeneratorRun(name, images, scores, rejects)
    return TransferBenchResult(list(references), list(prompts), seeds, runs, dict(settings or {}))


# ----- reports ----------------------------------------------------------------------------------
COLUMNS = (
    ("style_score", "style ↑", 3),
    ("text_score", "text ↑", 2),
    ("content_leakage", "leakage ↓", 2),
    ("reference_content_score", "ref-content", 2),
)


def summary_rows(result: TransferBenchResult) -> tuple[list[str], list[list[str]]]:
    """Header and one row of cells per generator (mean ± std); ref-content only when references have content."""
    columns = [
        c for c in COLUMNS if c[0] != "reference_content_score" or any(r.content for r in result.references)
    ]
    rows = []
    for name, run in result.runs.items():
        summary = run.summary()
        cells = [
            "–" if summary[m] is None else f"{summary[m]:.{d}f} ± {summary[m + '_std']:.{d}f}"
            for m, _, d in columns
        ]
        rows.append([name, str(summary["images"]), *cells, str(summary["failed"])])
    return ["generator", "images", *(h for _, h, _ in columns), "failed"], rows


def transfer_table(result: TransferBenchResult, console: Console | None = None) -> Table:
    """A rich table (printed when ``console`` is given): one row per generator."""
    from rich.table import Table

    header, rows = summary_rows(result)
    table = Table(
        title=f"style transfer: {len(result.references)} references × {len(result.prompts)} prompts"
    )
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    if console is not None:
        console.print(table)
    return table


def transfer_markdown(result: TransferBenchResult) -> str:
    """The same table as Markdown, with the metric definitions underneath."""
    header, rows = summary_rows(result)
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        "style = style-encoder cosine(output, reference); text = 100·CLIP cos(output, prompt); "
        "leakage = 100·CLIP cos(output image, reference image) — a copy of the reference scores 100; "
        "ref-content = 100·CLIP cos(output, the reference's own content prompt). Mean ± std over images.",
    ]
    return "\n".join(lines) + "\n"


def write_transfer_report(
    result: TransferBenchResult, output_dir: str | Path, *, save_images: bool = False, thumb: int = 128
) -> dict[str, Path]:
    """Write ``transfer.json``, ``transfer.md`` and one grid PNG per generator (and the images if asked)."""
    from megastyle.report.transfer_sheet import save_transfer_sheet

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "transfer.json", "markdown": out / "transfer.md"}
    files["json"].write_text(json.dumps(result.as_dict(), indent=2), encoding="utf-8")
    files["markdown"].write_text(transfer_markdown(result), encoding="utf-8")
    refs = [(ref.id, ref.image) for ref in result.references]
    for index, (name, run) in enumerate(result.runs.items()):
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or f"generator{index}"
        files[f"grid:{name}"] = save_transfer_sheet(
            out / f"grid_{slug}.png", refs, result.prompts, run.images, thumb=thumb, title=name
        )
        if save_images:
            for r, ref in enumerate(result.references):
                for p, image in enumerate(run.images[r]):
                    if image is not None:
                        (out / "images" / slug).mkdir(parents=True, exist_ok=True)
                        image.save(out / "images" / slug / f"{ref.id}_{p}.png")
    return files
