"""The MegaStyle++ style-prompt template: render, strict parse and validation.

``In the style of <identity>, <dominant colors> with <accent colors> accents, <lighting> lighting,
[<pattern> as repeating visual patterns,] <surface> surface, [<soft|sharp> edges,] [<brushwork>,]
in <medium>.``

Without accent colours the colour clause reads ``<dominant colors> palette`` (our extension, so
every ``StyleAttributes`` with at least one dominant colour has a template form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from megastyle.prompts.attributes import StyleAttributes
from megastyle.prompts.lexicon import (
    CONTENT_NOUNS,
    STYLE_VOCABULARY_PHRASES,
    VAGUE_PHRASES,
    VAGUE_WORDS,
    find_phrases,
    mask_phrases,
    singularize,
    word_count,
)
from megastyle.prompts.vocabulary import EDGES

# Paper limits in words. "identity < 4" becomes 3; colour limits count the words of the colour
# names themselves, not the "and"/commas that join them.
WORD_LIMITS: dict[str, int] = {
    "identity": 3,
    "dominant_colors": 4,
    "accent_colors": 4,
    "lighting": 8,
    "pattern": 4,
    "surface": 4,
    "medium": 4,
    "brushwork": 4,
}

_PREFIX = "in the style of "
_PATTERN_SUFFIX = " as repeating visual patterns"
_EDGES_RE = re.compile(r"^(soft|sharp) edges$", re.IGNORECASE)


class StylePromptError(ValueError):
    """A text is not a template style prompt, or attributes cannot be rendered as one."""


@dataclass(frozen=True)
class LimitViolation:
    """One broken rule: ``field`` breaks ``limit`` with ``actual`` (words, or offending items)."""

    field: str
    limit: int
    actual: int
    message: str
    kind: str = "words"  # words | required | format | edges | content | vague


class StyleLimitError(StylePromptError):
    """Raised by ``render_style_prompt(strict=True)``; carries the violations found."""

    def __init__(self, violations: list[LimitViolation]) -> None:
        self.violations = violations
        super().__init__(
            "style attributes break the template rules: " + "; ".join(v.message for v in violations)
        )


# --- colour lists -----------------------------------------------------------------------------


def join_colors(colors: tuple[str, ...] | list[str]) -> str:
    """Join colour names naturally: "a", "a and b", "a, b and c"."""
    items = list(colors)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def split_colors(text: str) -> tuple[str, ...]:
    """Inverse of ``join_colors`` (case-insensitive "and", Oxford comma and whitespace tolerant)."""
    text = text.strip()
    if not text:
        return ()
    # Greedy ".*" makes the split happen at the last " and "; earlier items are a comma list.
    match = re.match(r"^(.*)\s+and\s+([^,]+)$", text, re.IGNORECASE | re.DOTALL)
    if match is None:
        return tuple(c.strip() for c in text.split(","))
    before, last = match.group(1).rstrip().rstrip(","), match.group(2)
    return (*(c.strip() for c in before.split(",")), last.strip())


# --- rendering --------------------------------------------------------------------------------


def render_style_prompt(attrs: StyleAttributes, strict: bool = False) -> str:
    """Render attributes with the MegaStyle++ template; ``strict`` raises on any rule violation."""
    if strict:
        violations = validate_style_attributes(attrs)
        if violations:
            raise StyleLimitError(violations)
    missing = [
        name for name in ("identity", "lighting", "surface", "medium") if not getattr(attrs, name).strip()
    ]
    if not attrs.dominant_colors:
        missing.append("dominant_colors")
    if missing:
        raise StylePromptError(f"cannot render a style prompt without {', '.join(missing)}")
    colors = join_colors(attrs.dominant_colors)
    colors += f" with {join_colors(attrs.accent_colors)} accents" if attrs.accent_colors else " palette"
    parts = [f"In the style of {attrs.identity}", colors, f"{attrs.lighting} lighting"]
    if attrs.pattern:
        parts.append(attrs.pattern + _PATTERN_SUFFIX)
    parts.append(f"{attrs.surface} surface")
    if attrs.edges:
        parts.append(f"{attrs.edges} edges")
    if attrs.brushwork:
        parts.append(attrs.brushwork)
    parts.append(f"in {attrs.medium}")
    return ", ".join(parts) + "."


# --- strict parsing ---------------------------------------------------------------------------


def _normalize_prompt(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s*,\s*", ", ", text)
    return re.sub(r"[\s.]+$", "", text)


def _strip_suffix(part: str, suffix: str) -> str | None:
    if part.lower().endswith(suffix) and len(part) > len(suffix):
        return part[: -len(suffix)].strip() or None
    return None


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_style_prompt(text: str) -> StyleAttributes:
    """Parse a template style prompt into attributes; raise ``StylePromptError`` naming the mismatch."""
    s = _normalize_prompt(text)
    if not s.lower().startswith(_PREFIX):
        raise StylePromptError(f"style prompt must start with 'In the style of': {_shorten(s)!r}")
    identity, sep, rest = s[len(_PREFIX) :].partition(", ")
    if not sep or not identity.strip():
        raise StylePromptError(f"expected '<identity>, ' after 'In the style of': {_shorten(s)!r}")

    # The colour clause is the only one with inner commas: it ends at " accents, " or " palette, ".
    lower = rest.lower()
    ends = {key: lower.find(f" {key}, ") for key in ("accents", "palette")}
    found = {key: pos for key, pos in ends.items() if pos >= 0}
    if not found:
        raise StylePromptError(
            f"expected '<dominant colors> with <accent colors> accents, ' after the identity: {_shorten(rest)!r}"
        )
    key = min(found, key=found.__getitem__)
    clause, rest = rest[: found[key]], rest[found[key] + len(key) + 3 :]
    if key == "accents":
        match = re.match(r"^(.+?)\s+with\s+(.+)$", clause, re.IGNORECASE)
        if match is None:
            raise StylePromptError(
                f"colour clause lacks 'with' between dominant and accent colours: {clause!r}"
            )
        dominant, accent = split_colors(match.group(1)), split_colors(match.group(2))
    else:
        dominant, accent = split_colors(clause), ()
    if not dominant or not all(dominant) or not all(accent):
        raise StylePromptError(f"empty colour name in colour clause: {clause!r}")

    parts = rest.split(", ")
    lighting = _strip_suffix(parts[0], " lighting")
    if lighting is None:
        raise StylePromptError(f"expected '<lighting> lighting' after the colours, got {parts[0]!r}")
    i = 1
    pattern = _strip_suffix(parts[i], _PATTERN_SUFFIX) if i < len(parts) else None
    i += pattern is not None
    surface = _strip_suffix(parts[i], " surface") if i < len(parts) else None
    if surface is None:
        got = parts[i] if i < len(parts) else "end of text"
        raise StylePromptError(f"expected '<surface> surface' after the lighting/pattern, got {got!r}")
    i += 1
    edges = None
    if i < len(parts) and (edge_match := _EDGES_RE.match(parts[i])):
        edges = edge_match.group(1).lower()
        i += 1
    last = parts[-1]
    if i >= len(parts) or not last.lower().startswith("in ") or not last[3:].strip():
        raise StylePromptError(f"expected the prompt to end with 'in <medium>', got {last!r}")
    middle = parts[i:-1]
    if len(middle) > 1:
        raise StylePromptError(f"unexpected extra segments before the medium: {', '.join(middle)!r}")
    brushwork = middle[0] if middle else None
    if brushwork is not None and not brushwork.strip():
        raise StylePromptError("empty brushwork segment before the medium")
    return StyleAttributes(
        identity=identity.strip(),
        dominant_colors=dominant,
        accent_colors=accent,
        lighting=lighting,
        surface=surface,
        medium=last[3:].strip(),
        pattern=pattern,
        edges=edges,
        brushwork=brushwork,
    )


# --- validation -------------------------------------------------------------------------------


def find_content_words(text: str) -> list[str]:
    """Content nouns (objects, people, places...) in ``text``, ignoring known style-vocabulary phrases."""
    masked = mask_phrases(text, STYLE_VOCABULARY_PHRASES)
    found: list[str] = []
    for token in re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", masked):
        if token in CONTENT_NOUNS or singularize(token)[0] in CONTENT_NOUNS:
            found.append(token)
    return list(dict.fromkeys(found))


def find_vague_words(text: str) -> list[str]:
    """Vague, non-visual words ("beautiful", "various", "some"...) in ``text``."""
    masked = mask_phrases(text, STYLE_VOCABULARY_PHRASES)
    found = [m.phrase for m in find_phrases(masked, VAGUE_PHRASES)]
    found += [token for token in re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", masked) if token in VAGUE_WORDS]
    return list(dict.fromkeys(found))


def _format_problem(value: str, is_color: bool) -> str | None:
    if not value.strip():
        return "is empty"
    if value != value.strip() or "  " in value:
        return "has leading/trailing or doubled spaces"
    if re.search(r"[,.\n]", value):
        return "contains a comma, period or newline (template separators)"
    if is_color and re.search(r"\b(and|with)\b", value, re.IGNORECASE):
        return "contains 'and'/'with', which join colour lists"
    return None


def validate_style_attributes(attrs: StyleAttributes) -> list[LimitViolation]:
    """Every template rule ``attrs`` breaks: word limits, format, edges, content and vague words."""
    out: list[LimitViolation] = []
    texts: dict[str, str | None] = {
        "identity": attrs.identity,
        "lighting": attrs.lighting,
        "pattern": attrs.pattern,
        "surface": attrs.surface,
        "medium": attrs.medium,
        "brushwork": attrs.brushwork,
    }
    for field, value in texts.items():
        if value is None:
            continue
        if (problem := _format_problem(value, is_color=False)) is not None:
            out.append(LimitViolation(field, 0, 1, f"{field} {problem}: {value!r}", "format"))
        elif (n := word_count(value)) > WORD_LIMITS[field]:
            limit = WORD_LIMITS[field]
            out.append(LimitViolation(field, limit, n, f"{field} has {n} words (limit {limit}): {value!r}"))
    if attrs.brushwork and _EDGES_RE.match(attrs.brushwork):
        out.append(LimitViolation("brushwork", 0, 1, "brushwork reads as an edges clause", "format"))
    for field, colors in (("dominant_colors", attrs.dominant_colors), ("accent_colors", attrs.accent_colors)):
        if field == "dominant_colors" and not colors:
            out.append(LimitViolation(field, 1, 0, "at least one dominant colour is required", "required"))
        for color in colors:
            if (problem := _format_problem(color, is_color=True)) is not None:
                out.append(LimitViolation(field, 0, 1, f"{field} entry {problem}: {color!r}", "format"))
        n = sum(word_count(c) for c in colors)
        if n > WORD_LIMITS[field]:
            limit = WORD_LIMITS[field]
            out.append(LimitViolation(field, limit, n, f"{field} use {n} words (limit {limit}): {colors!r}"))
    if attrs.edges is not None and attrs.edges not in EDGES:
        out.append(
            LimitViolation("edges", 0, 1, f"edges must be one of {EDGES}, got {attrs.edges!r}", "edges")
        )
    fields: dict[str, str | None] = {
        **texts,
        "dominant_colors": " | ".join(attrs.dominant_colors),
        "accent_colors": " | ".join(attrs.accent_colors),
    }
    for field, value in fields.items():
        if not value:
            continue
        if content := find_content_words(value):
            out.append(
                LimitViolation(
                    field, 0, len(content), f"{field} names content: {', '.join(content)}", "content"
                )
            )
        if vague := find_vague_words(value):
            out.append(
                LimitViolation(field, 0, len(vague), f"{field} uses vague words: {', '.join(vague)}", "vague")
            )
    return out
