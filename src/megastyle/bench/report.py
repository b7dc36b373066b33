"""Benchmark output: a results table (terminal, JSON, Markdown), a bar plot and a query grid."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rich.console import Console
from rich.table import Table

from megastyle.bench.compare import PairedDifference, compare_encoders
from megastyle.bench.dataset_quality import DatasetQuality
from megastyle.bench.leakage import LeakageDifference
from megastyle.bench.retrieval import LEAVE_ONE_OUT, RetrievalBenchmark, RetrievalResult, safe_name

HIT = (30, 170, 60)
MISS = (210, 40, 40)
QUERY = (40, 90, 220)
CONTENT_METRIC = "content_recall@1"  # content-retrieval Recall@1: the leakage readout beside the table


@dataclass
class SummaryRow:
    """One encoder's metrics over one or more benchmark seeds: mean and standard deviation."""

    encoder: str
    mean: dict[str, float]
    std: dict[str, float]
    seeds: int
    dim: int
    seconds: float


def metric_names(ks: Sequence[int]) -> list[str]:
    """Column names in table order: recall@k…, map@k…, mAP."""
    return [f"recall@{k}" for k in ks] + [f"map@{k}" for k in ks] + ["mAP"]


def summarise(results: Sequence[RetrievalResult]) -> list[SummaryRow]:
    """Average every encoder's metrics over results (one per seed), in first-seen encoder order."""
    if not results:
        raise ValueError("no retrieval results to summarise")
    names = metric_names(results[0].ks)
    rows = []
    for encoder in results[0].runs:
        runs = [result.runs[encoder] for result in results if encoder in result.runs]
        values: dict[str, list[float]] = {name: [] for name in [*names, CONTENT_METRIC]}
        for run in runs:
            flat = run.scores.as_dict()
            for name in names:
                if flat.get(name) is not None:
                    values[name].append(float(flat[name]))  # type: ignore[arg-type]
            if run.content_recall is not None:
                values[CONTENT_METRIC].append(run.content_recall)
        rows.append(
            SummaryRow(
                encoder=encoder,
                mean={n: float(np.mean(v)) for n, v in values.items() if v},
                std={n: float(np.std(v)) for n, v in values.items() if v},
                seeds=len(runs),
                dim=runs[0].dim,
                seconds=float(sum(run.seconds for run in runs)),
            )
        )
    return rows


def _cell(row: SummaryRow, name: str, separator: str = " ± ") -> str:
    if name not in row.mean:
        return "-"
    text = f"{row.mean[name]:.3f}"
    return text + f"{separator}{row.std[name]:.3f}" if row.seeds > 1 else text


def _columns(rows: Sequence[SummaryRow], ks: Sequence[int]) -> list[str]:
    """The table's metric columns: the retrieval metrics, then content Recall@1 where it was read."""
    return metric_names(ks) + ([CONTENT_METRIC] if any(CONTENT_METRIC in r.mean for r in rows) else [])


def print_table(
    rows: Sequence[SummaryRow], ks: Sequence[int], console: Console | None = None, title: str | None = None
) -> Table:
    """Print (and return) the retrieval table: one row per encoder."""
    table = Table(title=title or "StyleRetrieval (held-out styles; mAP@k as CSD, mAP = standard)")
    table.add_column("encoder", overflow="fold")  # long names wrap; numbers never lose digits
    columns = _columns(rows, ks)
    for name in columns:
        # Short headers so the table fits a terminal: R@k, mAP@k, mAP, content R@1.
        header = name.replace(CONTENT_METRIC, "content R@1").replace("recall@", "R@").replace("map@", "mAP@")
        table.add_column(header, justify="right", no_wrap=True, min_width=5)
    table.add_column("dim", justify="right", min_width=3)
    for row in rows:
        # Over several seeds the std goes on a second line, so the table stays narrow.
        table.add_row(row.encoder, *[_cell(row, n, "\n±") for n in columns], str(row.dim))
    (console or Console()).print(table)
    return table


def markdown_table(rows: Sequence[SummaryRow], ks: Sequence[int]) -> str:
    """The retrieval table as GitHub Markdown."""
    names = _columns(rows, ks)
    lines = ["| encoder | " + " | ".join(names) + " | dim |", "|---" * (len(names) + 2) + "|"]
    lines += [f"| {r.encoder} | " + " | ".join(_cell(r, n) for n in names) + f" | {r.dim} |" for r in rows]
    return "\n".join(lines) + "\n"


def scope(result: RetrievalResult) -> dict[str, Any]:
    """What one benchmark scored: mode, styles, queries, gallery images, skipped styles, duplicates, rejects."""
    params = result.benchmark.get("params", {})
    counts = result.benchmark.get("counts", {})
    mode = params.get("mode", "heldout")
    styles = len({item.label for item in [*result.queries, *result.gallery]})
    content = [run.content_queries for run in result.runs.values() if run.content_queries]
    return {
        "mode": mode,
        "queries_per_style": params.get("queries", params.get("queries_per_style")),
        "styles": styles,
        "source_styles": counts.get("source_styles"),
        "queries": len(result.queries),
        "gallery": len(result.gallery),
        "skipped_styles": result.skipped_styles,
        "min_images_per_style": params.get("min_images_per_style"),
        "duplicates": [d.as_dict() for d in result.duplicates],
        "rejects": len(result.rejects),
        "content_labels": bool(content),
        "content_queries": max(content, default=0),
    }


def scope_lines(result: RetrievalResult, limit: int = 8) -> list[str]:
    """The scope of one benchmark in sentences, for the terminal and results.md."""
    info = scope(result)
    if info["mode"] == "all_styles":
        how = (
            "leave-one-out: every image a query against all the others"
            if info["queries_per_style"] == LEAVE_ONE_OUT
            else f"{info['queries_per_style']:g} of each style's images as queries, the rest as gallery"
        )
        lines = [
            f"All styles scored ({how}): {info['styles']} of {info['source_styles']} styles, "
            f"{info['queries']} queries, {info['gallery']} gallery images."
        ]
    else:
        lines = [
            f"Held-out styles: {info['styles']} styles, {info['queries']} queries, {info['gallery']} gallery images."
        ]
    skipped = info["skipped_styles"]
    if skipped:
        names = ", ".join(f"{s['style'][:40]} ({s['images']})" for s in skipped[:limit])
        more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
        lines.append(
            f"Skipped {len(skipped)} styles with fewer than {info['min_images_per_style']} images: {names}{more}."
        )
    duplicates = result.duplicates
    if duplicates:
        pairs = ", ".join(f"{d.id} = {d.duplicate_of}" for d in duplicates[:limit])
        more = f" and {len(duplicates) - limit} more" if len(duplicates) > limit else ""
        lines.append(
            f"Left out {len(duplicates)} exact duplicates of a query (same image bytes): {pairs}{more}."
        )
    else:
        lines.append("No exact duplicates between queries and gallery.")
    if result.rejects:
        lines.append(f"{len(result.rejects)} undecodable images skipped.")
    if info["content_labels"]:
        lines.append(
            f"Content labels present: content R@1 asks the same embeddings to find an image of the query's "
            f"content ({info['content_queries']} queries have one); high means the embedding carries content."
        )
    else:
        lines.append("No content labels: content R@1 not read.")
    return lines


def results_json(
    results: Sequence[RetrievalResult],
    rows: Sequence[SummaryRow],
    paired: Sequence[Sequence[PairedDifference]] = (),
) -> dict[str, Any]:
    """Everything needed to reproduce the table: per-seed scores, benchmark params, the summary."""
    return {
        "ks": results[0].ks,
        "summary": [row.__dict__ for row in rows],
        "paired": [[d.as_dict() for d in diffs] for diffs in paired],
        "runs": [
            {
                "benchmark": result.benchmark,
                "queries": len(result.queries),
                "gallery": len(result.gallery),
                "scope": scope(result),
                "rejects": [{"item": r.item, "cause": r.cause} for r in result.rejects],
                "encoders": {
                    name: {
                        **run.scores.as_dict(),
                        CONTENT_METRIC: run.content_recall,
                        "content_queries": run.content_queries,
                        "effective_k": run.scores.effective_k,
                        "dim": run.dim,
                        "seconds": run.seconds,
                    }
                    for name, run in result.runs.items()
                },
            }
            for result in results
        ],
    }


def plot_results(rows: Sequence[SummaryRow], ks: Sequence[int], path: str | Path) -> Path:
    """Grouped bars (one group per metric, one bar per encoder, std as error bars) saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # headless: never open a window
    import matplotlib.pyplot as plt

    names = metric_names(ks)
    width = 0.8 / max(1, len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(names)), 4.0))
    x = np.arange(len(names))
    for i, row in enumerate(rows):
        heights = [row.mean.get(n, 0.0) for n in names]
        errors = [row.std.get(n, 0.0) for n in names] if row.seeds > 1 else None
        ax.bar(x + i * width - 0.4 + width / 2, heights, width, yerr=errors, label=row.encoder)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("score")
    ax.set_title("StyleRetrieval: Recall@k, CSD mAP@k and mAP")
    ax.legend(fontsize="small", ncol=min(4, len(rows)), loc="upper center")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _framed(image: Image.Image, thumb: int, color: tuple[int, int, int], border: int) -> Image.Image:
    tile = Image.new("RGB", (thumb, thumb), color)
    inner = image.convert("RGB").resize((thumb - 2 * border, thumb - 2 * border), Image.Resampling.BILINEAR)
    tile.paste(inner, (border, border))
    return tile


def query_grid(
    benchmark: RetrievalBenchmark,
    result: RetrievalResult,
    encoder: str,
    path: str | Path,
    *,
    num_queries: int = 8,
    top: int = 5,
    thumb: int = 80,
    seed: int = 0,
) -> Path:
    """Contact sheet: each row = a query (blue) then its top results, green border = same style, red = not."""
    run = result.runs[encoder]
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(result.queries), size=min(num_queries, len(result.queries)), replace=False))
    top = min(top, run.top.indices.shape[1])
    border, gap, label_h = max(2, thumb // 20), 4, 14
    sheet = Image.new(
        "RGB", ((top + 1) * (thumb + gap) + gap, len(picks) * (thumb + gap + label_h) + gap), (250, 250, 250)
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, q in enumerate(picks):
        query = result.queries[int(q)]
        hits = [result.gallery[int(g)] for g in run.top.indices[q, :top]]
        images = benchmark.load_images([query, *hits])
        y = gap + r * (thumb + gap + label_h)
        draw.text((gap, y), f"{query.id}  (style {query.label})", fill=(30, 30, 30), font=font)
        y += label_h
        sheet.paste(_framed(images[0], thumb, QUERY, border), (gap, y))
        for c, (item, image) in enumerate(zip(hits, images[1:], strict=True), start=1):
            color = HIT if item.label == query.label else MISS
            sheet.paste(_framed(image, thumb, color, border), (gap + c * (thumb + gap), y))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG")
    return path


def write_retrieval_report(
    results: Sequence[RetrievalResult],
    benchmarks: Sequence[RetrievalBenchmark],
    out_dir: str | Path,
    *,
    grid_queries: int = 8,
    grid_top: int = 5,
    console: Console | None = None,
    paired_encoder: str | None = None,
) -> dict[str, Path]:
    """Print the tables and write results.json, results.md, results.png and one grid per encoder.

    With several encoders, ``paired_encoder`` (default: the first) is compared with each other one.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summarise(results)
    ks = results[0].ks
    show = console or Console()
    for line in scope_lines(results[0]):
        show.print(line, highlight=False)
    all_styles = results[0].benchmark.get("params", {}).get("mode") == "all_styles"
    title = "StyleRetrieval (all styles; mAP@k as CSD, mAP = standard)" if all_styles else None
    print_table(rows, ks, console, title=title)
    # One encoder against each other one, query by query, on every benchmark seed.
    paired = [compare_encoders(r, paired_encoder) for r in results] if len(results[0].runs) > 1 else []
    labels = [_seed_label(r) if len(results) > 1 else "" for r in results]
    for diffs, label in zip(paired, labels, strict=False):
        paired_table(diffs, console, label)
    files = {
        "json": out / "results.json",
        "markdown": out / "results.md",
        "plot": plot_results(rows, ks, out / "results.png"),
    }
    files["json"].write_text(json.dumps(results_json(results, rows, paired), indent=2), encoding="utf-8")
    counts = results[0].benchmark["counts"]
    what = "styles (all scored)" if all_styles else "held-out styles"
    header = (
        f"StyleRetrieval on {counts['heldout_styles']} {what}: {len(results[0].queries)} queries, "
        f"{len(results[0].gallery)} gallery images, {len(results)} seed(s). "
        "mAP@k is CSD's (mean precision@1..k); mAP is standard average precision.\n\n"
        + "".join(f"- {line}\n" for line in scope_lines(results[0], limit=50))
        + "\n"
    )
    sections = [paired_markdown(diffs, label) for diffs, label in zip(paired, labels, strict=False)]
    files["markdown"].write_text("\n".join([header + markdown_table(rows, ks), *sections]), encoding="utf-8")
    for name in results[0].runs:
        safe = safe_name(name)
        files[f"grid:{name}"] = query_grid(
            benchmarks[0], results[0], name, out / f"grid_{safe}.png", num_queries=grid_queries, top=grid_top
        )
    return files


def _seed_label(result: RetrievalResult) -> str:
    seed = result.benchmark.get("params", {}).get("seed")
    return "" if seed is None else f"benchmark seed {seed}"


def _paired_title(diffs: Sequence[PairedDifference], label: str = "") -> str:
    first = diffs[0]
    return (
        f"{first.encoder} minus each encoder, paired over the same {first.queries} queries "
        f"(95% interval: bootstrap over the {first.styles} styles; mAP@1 = Recall@1; better/worse: "
        "queries where it scores higher/lower)" + (f", {label}" if label else "")
    )


def paired_cells(d: PairedDifference) -> tuple[str, str, str, str, str]:
    """One row of the paired table, formatted: against, metric, difference, interval, better/worse."""
    metric = d.metric.replace("map@", "mAP@").replace("recall@", "R@")
    return (
        d.other,
        metric,
        f"{d.difference:+.3f}",
        format_interval(d.ci95, signed=True),
        f"{d.better} / {d.worse}",
    )


PAIRED_COLUMNS = ("against", "metric", "difference", "95% interval", "better/worse")


def _print_rows(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], console: Console | None
) -> Table:
    table = Table(title=title)
    table.add_column(columns[0], overflow="fold", min_width=18)  # names wrap, numbers never do
    for column in columns[1:]:
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    (console or Console()).print(table)
    return table


def _markdown_rows(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [f"{title}:", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def paired_table(diffs: Sequence[PairedDifference], console: Console | None = None, label: str = "") -> Table:
    """Print (and return) the paired differences of one encoder against the others."""
    return _print_rows(_paired_title(diffs, label), PAIRED_COLUMNS, [paired_cells(d) for d in diffs], console)


def paired_markdown(diffs: Sequence[PairedDifference], label: str = "") -> str:
    """The paired differences as Markdown, under their title."""
    return _markdown_rows(_paired_title(diffs, label), PAIRED_COLUMNS, [paired_cells(d) for d in diffs])


def _leakage_title(diffs: Sequence[LeakageDifference]) -> str:
    first = diffs[0]
    return (
        f"Matched content leakage, {first.encoder} minus each encoder over the same {first.pairs} same-content "
        f"pairs (negative: it leaks less; 95% interval: bootstrap over the {first.contents} contents and "
        f"{first.styles} styles together; "
        "less/more: pairs where it scores lower/higher)"
    )


LEAKAGE_COLUMNS = ("against", "difference", "95% interval", "less/more")


def leakage_cells(d: LeakageDifference) -> tuple[str, str, str, str]:
    """One row of the paired leakage table, formatted."""
    return d.other, f"{d.difference:+.3f}", format_interval(d.ci95, signed=True), f"{d.less} / {d.more}"


def leakage_paired_table(diffs: Sequence[LeakageDifference], console: Console | None = None) -> Table:
    """Print (and return) one encoder's matched leakage minus each other encoder's."""
    return _print_rows(_leakage_title(diffs), LEAKAGE_COLUMNS, [leakage_cells(d) for d in diffs], console)


def leakage_paired_markdown(diffs: Sequence[LeakageDifference]) -> str:
    """The paired leakage differences as Markdown, under their title."""
    return _markdown_rows(_leakage_title(diffs), LEAKAGE_COLUMNS, [leakage_cells(d) for d in diffs])


def quality_table(qualities: Mapping[str, DatasetQuality], console: Console | None = None) -> Table:
    """Print the dataset-quality table: one row per embedder."""
    sizes = sorted({(q.styles, q.images) for q in qualities.values()})
    table = Table(
        title="Dataset quality (" + "; ".join(f"{n} styles, {m} images" for n, m in sizes) + ")",
        caption="intra: intra-style consistency; inter: inter-style diversity; leak AUC: how same-content "
        "pairs of different styles score against other pairs (0.5 = no leakage; 95% interval); matched: "
        "against pairs of the same two styles only. The raw leak gap is in the JSON and Markdown.",
    )
    # (header, width of its widest value): numbers never lose digits, long embedder names wrap. Eight
    # columns do not fit 80 characters, so each AUC shares a cell with its interval.
    columns = [("intra ↑", 6), ("inter ↑", 6), ("leak AUC", 19), ("matched AUC", 19)]
    table.add_column("embedder", overflow="fold", min_width=12)
    for column, width in columns:
        table.add_column(column, justify="right", no_wrap=True, min_width=width)

    for name, q in qualities.items():
        table.add_row(
            name,
            format_with_interval(q.intra_style_consistency, None),
            format_with_interval(q.inter_style_diversity, None),
            format_with_interval(q.leakage_auc, q.leakage_auc_ci95),
            format_with_interval(q.leakage_matched_auc, q.leakage_matched_auc_ci95),
        )
    (console or Console()).print(table)
    return table


def quality_markdown(qualities: Mapping[str, DatasetQuality]) -> str:
    """The dataset-quality table as Markdown."""
    keys = [
        "intra_style_consistency",
        "inter_style_diversity",
        "leakage_gap",
        "leakage_auc",
        "leakage_auc_ci95",
        "leakage_matched_auc",
        "leakage_matched_auc_ci95",
        "styles",
        "images",
    ]
    lines = ["| embedder | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, q in qualities.items():
        data = q.as_dict()
        cells = [
            format_interval(data[k], 4)
            if k.endswith("_ci95")
            else f"{data[k]:.4f}"
            if isinstance(data[k], float)
            else str(data[k])
            for k in keys
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def format_with_interval(value: float | None, interval: Sequence[float] | None) -> str:
    """``0.506 (0.498–0.514)``; the value alone without an interval; "-" without a value."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.3f}" if interval is None else f"{value:.3f} ({format_interval(interval)})"


def format_interval(interval: Sequence[float] | None, digits: int = 3, *, signed: bool = False) -> str:
    """``low–high`` at ``digits`` decimals, or ``[−low, +high]`` for a difference (``signed``); "-" when absent."""
    if interval is None:
        return "-"
    low, high = interval
    if signed:
        return f"[{low:+.{digits}f}, {high:+.{digits}f}]"
    return f"{low:.{digits}f}–{high:.{digits}f}"
