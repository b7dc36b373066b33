"""Turn a VLM's raw answer into a validated caption, or raise ``CaptionFormatError`` saying why not.

Style answers are JSON objects (found inside fences, prose or ``<think>`` blocks), coerced field by
field into ``StyleAttributes``, checked with ``validate_style_attributes`` and rendered with the
MegaStyle++ template. Content answers are one short sentence with no style words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from megastyle.curate.caption.content_clean import strip_color_modifiers, tidy_sentence
from megastyle.curate.caption.instructions import CONTENT_MAX_CHARS, REQUIRED_STYLE_FIELDS, STYLE_FIELDS
from megastyle.prompts import (
    StyleAttributes,
    content_style_leaks,
    render_style_prompt,
    split_colors,
    validate_style_attributes,
)


class CaptionFormatError(ValueError):
    """A captioner's answer cannot be used: malformed, incomplete, over the limits or off-topic."""


@dataclass(frozen=True)
class ParsedCaption:
    """A validated caption: the prompt text, plus the attributes as JSON for style captions."""

    text: str
    attributes_json: str | None = None


_THINK_RE = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE_RE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
_NULLS = frozenset({"", "null", "none", "n/a", "na", "-", "no", "not applicable"})
# Template words a model tends to repeat inside values ("soft lighting", "matte surface", "in oil").
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "lighting": (" lighting", " light"),
    "surface": (" surface", " texture"),
    "pattern": (" as repeating visual patterns", " pattern", " patterns"),
    "edges": (" edges", " edge"),
}
_PREFIXES: dict[str, tuple[str, ...]] = {
    "medium": ("in ",),
    "identity": ("in the style of ", "the style of "),
}
_EDGE_WORDS = {"soft": "soft", "sharp": "sharp", "crisp": "sharp", "hard": "sharp", "blurred": "soft"}


def preview(text: str, limit: int = 160) -> str:
    """One-line preview of an answer for error messages."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def strip_reasoning(answer: str) -> str:
    """The answer without ``<think>…</think>`` blocks (reasoning models) and surrounding whitespace."""
    return _THINK_RE.sub("", answer).strip()


def extract_json_object(answer: str) -> dict[str, Any]:
    """The first JSON object in a chatty answer: fenced blocks first, then anywhere in the text."""
    text = strip_reasoning(answer)
    decoder = json.JSONDecoder()
    candidates = [m.group(1) for m in _FENCE_RE.finditer(text)] + [text]
    for candidate in candidates:
        for start in (i for i, ch in enumerate(candidate) if ch == "{"):
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    if "{" in text:
        raise CaptionFormatError(f"answer holds no valid JSON object: {preview(text)!r}")
    raise CaptionFormatError(f"answer is not JSON: {preview(text)!r}")


def _normalize_key(key: str) -> str:
    key = re.sub(r"[\s\-]+", "_", str(key).strip().lower()).replace("colour", "color")
    return {
        "accents": "accent_colors",
        "accent_color": "accent_colors",
        "dominant_color": "dominant_colors",
    }.get(key, key)


def _clean_text(value: str, field: str) -> str:
    text = re.sub(r"\s+", " ", value).strip().strip("\"'").rstrip(".").strip().lower()
    for prefix in _PREFIXES.get(field, ()):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
    for suffix in _SUFFIXES.get(field, ()):
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)].strip()
    return text


def coerce_text(value: Any, field: str) -> str | None:
    """A text attribute from a JSON value: strings cleaned, nulls → None, anything else rejected."""
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise CaptionFormatError(f"{field} must be a string, got {type(value).__name__}: {value!r}")
    text = _clean_text(value, field)
    return None if text in _NULLS else text


def coerce_colors(value: Any, field: str) -> tuple[str, ...]:
    """A colour list from a JSON value: a list of names or one "a, b and c" string; null → ()."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [] if value.strip().lower() in _NULLS else list(split_colors(value))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaptionFormatError(f"{field} must be a list of colour names, got {value!r}")
    names = [_clean_text(v, field) for v in value]
    return tuple(dict.fromkeys(n for n in names if n and n not in _NULLS))


def _coerce_edges(value: Any) -> str | None:
    text = coerce_text(value, "edges")
    if text is None:
        return None
    first = text.split()[0]
    if first not in _EDGE_WORDS:
        raise CaptionFormatError(f"edges must be 'soft' or 'sharp', got {text!r}")
    return _EDGE_WORDS[first]


def style_attributes_from_json(data: dict[str, Any]) -> StyleAttributes:
    """Coerce a parsed JSON answer into attributes; missing required keys raise ``CaptionFormatError``."""
    fields = {_normalize_key(k): v for k, v in data.items()}
    missing = [name for name in REQUIRED_STYLE_FIELDS if name not in fields]
    if missing:
        raise CaptionFormatError(
            f"answer JSON lacks required keys {', '.join(missing)} (has {', '.join(sorted(fields)) or 'none'})"
        )
    texts = {name: coerce_text(fields.get(name), name) for name in ("identity", "lighting", "pattern")}
    texts |= {name: coerce_text(fields.get(name), name) for name in ("surface", "brushwork", "medium")}
    empty = [name for name in ("identity", "lighting", "surface", "medium") if not texts[name]]
    dominant = coerce_colors(fields.get("dominant_colors"), "dominant_colors")
    if not dominant:
        empty.append("dominant_colors")
    if empty:
        raise CaptionFormatError(f"answer JSON leaves required fields empty: {', '.join(empty)}")
    return StyleAttributes(
        identity=texts["identity"] or "",
        dominant_colors=dominant,
        accent_colors=tuple(
            c for c in coerce_colors(fields.get("accent_colors"), "accent_colors") if c not in dominant
        ),
        lighting=texts["lighting"] or "",
        surface=texts["surface"] or "",
        medium=texts["medium"] or "",
        pattern=texts["pattern"],
        edges=_coerce_edges(fields.get("edges")),
        brushwork=texts["brushwork"],
    )


def attributes_to_json(attrs: StyleAttributes) -> str:
    """The attributes as a JSON object in template order (what ``Caption.attributes_json`` stores)."""
    data = {name: getattr(attrs, name) for name in STYLE_FIELDS}
    data["dominant_colors"] = list(attrs.dominant_colors)
    data["accent_colors"] = list(attrs.accent_colors)
    return json.dumps(data, ensure_ascii=False)


def style_caption_from_attributes(attrs: StyleAttributes) -> ParsedCaption:
    """Validate attributes against the template rules and render the style prompt."""
    violations = validate_style_attributes(attrs)
    if violations:
        raise CaptionFormatError(
            "style attributes break the rules: " + "; ".join(v.message for v in violations)
        )
    return ParsedCaption(render_style_prompt(attrs, strict=True), attributes_to_json(attrs))


def parse_style_answer(answer: str) -> ParsedCaption:
    """A style answer → validated template prompt + attributes JSON; ``CaptionFormatError`` otherwise."""
    return style_caption_from_attributes(style_attributes_from_json(extract_json_object(answer)))


_LABEL_RE = re.compile(r"^(?:content|caption|description|answer|sentence)\s*:\s*", re.IGNORECASE)
# Lead-ins that describe the picture instead of its content ("The image shows two cats" → "two cats").
_LEAD_IN_RE = re.compile(
    r"^(?:(?:the|this)\s+(?:image|picture|photo|photograph|scene|artwork|illustration)\s+"
    r"(?:shows|depicts|contains|features|is of)\s+|there\s+(?:is|are)\s+|"
    r"(?:an?\s+)?(?:image|picture|photo|photograph)\s+(?:of|showing)\s+)",
    re.IGNORECASE,
)
_CONTENT_KEYS = ("content", "caption", "description", "sentence", "text")


def parse_content_answer(answer: str, max_chars: int = CONTENT_MAX_CHARS) -> ParsedCaption:
    """A content answer → one clean sentence; rejects empty, multi-line, too long and style-leaking text."""
    text = strip_reasoning(answer)
    fenced = _FENCE_RE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    if text.startswith("{"):
        try:
            data = extract_json_object(text)
        except CaptionFormatError:
            data = {}
        found = next((data[k] for k in _CONTENT_KEYS if isinstance(data.get(k), str)), None)
        if found is None:
            raise CaptionFormatError(f"content answer is JSON without a sentence: {preview(text)!r}")
        text = found
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        raise CaptionFormatError(
            f"content answer has {len(lines)} lines, expected one sentence: {preview(text)!r}"
        )
    text = _LABEL_RE.sub("", lines[0] if lines else "").strip().strip("\"'").strip()
    text = _LEAD_IN_RE.sub("", text)
    if not re.search(r"[A-Za-z]{2,}", text):
        raise CaptionFormatError(f"content answer is empty: {preview(answer)!r}")
    if len(text) > max_chars:
        raise CaptionFormatError(
            f"content answer has {len(text)} characters (limit {max_chars}): {preview(text)!r}"
        )
    leaks = content_style_leaks(text)
    if leaks:
        raise CaptionFormatError(
            f"content answer names style, not content ({', '.join(leaks)}): {preview(text)!r}"
        )
    cleaned = tidy_sentence(strip_color_modifiers(text))
    if not cleaned:
        raise CaptionFormatError(f"content answer has no words left after cleaning: {preview(text)!r}")
    return ParsedCaption(cleaned)


def parse_answer(kind: str, answer: str, content_max_chars: int = CONTENT_MAX_CHARS) -> ParsedCaption:
    """Dispatch on ``kind`` ("style" or "content")."""
    if kind == "style":
        return parse_style_answer(answer)
    if kind == "content":
        return parse_content_answer(answer, content_max_chars)
    raise ValueError(f"unknown caption kind {kind!r}; expected 'style' or 'content'")
