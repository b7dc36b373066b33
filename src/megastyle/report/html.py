"""A self-contained HTML run report: titled sections of text, tables and images."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.8rem 0; } td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; }
th { background: #f3f3f3; } img { max-width: 100%; border: 1px solid #ddd; } .note { color: #666; }
"""


@dataclass
class Section:
    """One titled part of the report; ``blocks`` are HTML fragments made by the helpers below."""

    title: str
    blocks: list[str] = field(default_factory=list)

    def text(self, text: str, note: bool = False) -> Section:
        """Append a paragraph (escaped)."""
        css = ' class="note"' if note else ""
        self.blocks.append(f"<p{css}>{html.escape(text)}</p>")
        return self

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Section:
        """Append a table; floats are shown with four decimals."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
        )
        self.blocks.append(f"<table><tr>{head}</tr>{body}</table>")
        return self

    def image(self, path: str | Path, report_dir: str | Path, caption: str = "") -> Section:
        """Append an image linked relative to the report, so the run folder can be moved."""
        rel = os.path.relpath(Path(path), Path(report_dir))
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(
            f'<figure><img src="{html.escape(rel)}" alt="{html.escape(caption)}">{cap}</figure>'
        )
        return self


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_report(path: str | Path, title: str, sections: Sequence[Section], subtitle: str = "") -> Path:
    """Write the sections as one HTML page at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    parts.append(f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    if subtitle:
        parts.append(f'<p class="note">{html.escape(subtitle)}</p>')
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(section.blocks)
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
