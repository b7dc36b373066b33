"""A self-contained HTML run report: a summary a person reads in a minute, then titled sections of text,
tables, images and collapsible details. Images are linked relative to the report, so a run folder can
be moved or zipped whole."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; line-height: 1.45;
       padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.2rem; }
h3 { margin-top: 1.4rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.92rem; }
td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; vertical-align: top; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #ddd; } figure { margin: 0.5rem 0 1rem; }
figcaption { color: #555; font-size: 0.9rem; } .note { color: #666; }
.summary { background: #f6f8fa; border: 1px solid #d8dee4; border-radius: 6px; padding: 0.8rem 1.2rem; }
.summary dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.3rem 1rem; margin: 0.5rem 0; }
.summary dt { font-weight: 600; } .summary dd { margin: 0; }
.warn { background: #fff8e1; border-left: 4px solid #f2b600; padding: 0.4rem 0.8rem; }
details { margin: 0.5rem 0 1rem; } summary { cursor: pointer; font-weight: 600; }
nav { margin: 1rem 0; font-size: 0.95rem; } nav a { margin-right: 1rem; }
code { background: #f3f3f3; padding: 0 0.2rem; border-radius: 3px; }
"""


def _fmt(value: object, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "–" if value is None else str(value)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and value.replace(".", "", 1).replace("−", "", 1).lstrip("+-").isdigit()


@dataclass
class Section:
    """One titled part of the report; ``blocks`` are HTML fragments made by the helpers below."""

    title: str
    blocks: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        """The section's id in the page (for the table of contents)."""
        return "".join(ch if ch.isalnum() else "-" for ch in self.title.lower()).strip("-")

    def text(self, text: str, note: bool = False, warn: bool = False) -> Section:
        """Append a paragraph (escaped); ``note`` greys it, ``warn`` marks it as a caveat."""
        css = ' class="note"' if note else ' class="warn"' if warn else ""
        self.blocks.append(f"<p{css}>{html.escape(text)}</p>")
        return self

    def heading(self, text: str) -> Section:
        """Append a sub-heading."""
        self.blocks.append(f"<h3>{html.escape(text)}</h3>")
        return self

    def table(
        self, header: Sequence[str], rows: Sequence[Sequence[object]], *, digits: int = 3, caption: str = ""
    ) -> Section:
        """Append a table: floats with ``digits`` decimals, numbers right-aligned; ``caption`` says what it shows."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td{' class=num' if _is_number(v) else ''}>{html.escape(_fmt(v, digits))}</td>" for v in row
            )
            + "</tr>"
            for row in rows
        )
        if caption:
            self.blocks.append(f"<p>{html.escape(caption)}</p>")
        self.blocks.append(f"<table><tr>{head}</tr>{body}</table>")
        return self

    def definitions(self, items: Sequence[tuple[str, str]]) -> Section:
        """Append a list of terms and their values (the summary's form)."""
        rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items)
        self.blocks.append(f"<dl>{rows}</dl>")
        return self

    def links(self, items: Sequence[tuple[str | Path, str]], report_dir: str | Path) -> Section:
        """Append a table of files (linked relative to the report) and what each holds."""
        rows = []
        for path, what in items:
            rel = os.path.relpath(Path(path), Path(report_dir))
            rows.append(
                f'<tr><td><a href="{html.escape(rel)}"><code>{html.escape(rel)}</code></a></td>'
                f"<td>{html.escape(what)}</td></tr>"
            )
        self.blocks.append(f"<table><tr><th>file</th><th>what it holds</th></tr>{''.join(rows)}</table>")
        return self

    def image(
        self, path: str | Path, report_dir: str | Path, caption: str = "", *, width: int | None = None
    ) -> Section:
        """Append an image linked relative to the report, so the run folder can be moved."""
        self.blocks.append(_figure(path, report_dir, caption, width))
        return self

    def details(self, label: str, inner: Section, *, open_: bool = False) -> Section:
        """Append ``inner``'s blocks inside a collapsible element titled ``label``."""
        state = " open" if open_ else ""
        self.blocks.append(
            f"<details{state}><summary>{html.escape(label)}</summary>{''.join(inner.blocks)}</details>"
        )
        return self


def _figure(path: str | Path, report_dir: str | Path, caption: str, width: int | None) -> str:
    rel = os.path.relpath(Path(path), Path(report_dir))
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    size = f' style="max-width: min(100%, {width}px)"' if width else ""
    return f'<figure><img src="{html.escape(rel)}" alt="{html.escape(caption)}" loading="lazy"{size}>{cap}</figure>'


def write_report(
    path: str | Path,
    title: str,
    sections: Sequence[Section],
    subtitle: str = "",
    summary: Section | None = None,
) -> Path:
    """Write the page: title, the ``summary`` box, a table of contents, then the sections."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
    ]
    parts.append("<meta name='viewport' content='width=device-width, initial-scale=1'>")
    parts.append(f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    if subtitle:
        parts.append(f'<p class="note">{html.escape(subtitle)}</p>')
    if summary is not None:
        parts.append(f'<div class="summary"><h2 id="summary">{html.escape(summary.title)}</h2>')
        parts.extend(summary.blocks)
        parts.append("</div>")
    if len(sections) > 1:
        toc = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
        parts.append(f"<nav>Sections: {toc}</nav>")
    for section in sections:
        parts.append(f'<h2 id="{section.anchor}">{html.escape(section.title)}</h2>')
        parts.extend(section.blocks)
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
