"""Lenient reading of free style text: exact for template prompts, stable and valid otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from megastyle.prompts import (
    StyleAttributes,
    StylePromptError,
    canonical_style_attributes,
    parse_style_prompt,
    read_style_text,
    render_style_prompt,
    sample_style_prompts,
    validate_style_attributes,
)
from megastyle.prompts.vocabulary import (
    BRUSHWORK,
    COLORS,
    EDGES,
    IDENTITIES,
    LIGHTING,
    MEDIA,
    PATTERNS,
    SURFACES,
)

NONSENSE = [f"zorblax {i} quux" for i in range(60)]


def _in_vocabulary(attrs: StyleAttributes) -> bool:
    return (
        attrs.identity in IDENTITIES
        and all(c in COLORS for c in (*attrs.dominant_colors, *attrs.accent_colors))
        and attrs.lighting in LIGHTING
        and attrs.surface in SURFACES
        and attrs.medium in MEDIA
        and attrs.pattern in (None, *PATTERNS)
        and attrs.edges in (None, *EDGES)
        and attrs.brushwork in (None, *BRUSHWORK)
    )


def test_template_prompts_are_read_exactly() -> None:
    for prompt in sample_style_prompts(30, seed=3):
        assert read_style_text(prompt) == parse_style_prompt(prompt)
    custom = "In the style of Zorblax Revival, teal with gold accents, candlelit lighting, glossy surface, in fresco."
    assert read_style_text(custom).identity == "Zorblax Revival"
    assert read_style_text(custom).medium == "fresco"


def test_unknown_text_fails_strict_parse_but_reads_leniently() -> None:
    with pytest.raises(StylePromptError):
        parse_style_prompt("zorblax")
    attrs = read_style_text("zorblax")
    assert _in_vocabulary(attrs)
    assert validate_style_attributes(attrs) == []
    assert parse_style_prompt(render_style_prompt(attrs, strict=True)) == attrs


def test_same_text_same_attributes_and_normalisation() -> None:
    assert read_style_text("zorblax") == read_style_text("zorblax")
    assert read_style_text("Zorblax  Quux") == read_style_text("  zorblax quux\n")


def test_different_unknown_texts_usually_differ() -> None:
    results = [read_style_text(text) for text in NONSENSE]
    assert len(set(results)) >= 55
    # Every field is actually driven by the hash, not constant.
    for field in ("identity", "medium", "lighting", "surface", "dominant_colors", "accent_colors", "pattern"):
        assert len({getattr(r, field) for r in results}) > 3, field
    assert all(_in_vocabulary(r) and validate_style_attributes(r) == [] for r in results)


def test_stable_across_processes() -> None:
    # Python's own hash() is salted per process; the reading must not depend on it.
    code = "from megastyle.prompts import read_style_text as r; print(repr(r('zorblax quux 17')))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {repr(read_style_text("zorblax quux 17")) + "\n"}


def test_known_phrases_are_found() -> None:
    attrs = read_style_text(
        "A moody charcoal sketch, crimson and navy with gold accents, candlelit, crumpled paper, "
        "crisp outlines, cross-hatching, art deco, zigzag"
    )
    assert attrs.medium == "charcoal sketch"
    assert attrs.dominant_colors == ("crimson", "navy")
    assert attrs.accent_colors == ("gold",)
    assert attrs.lighting == "candlelit"
    assert attrs.surface == "crumpled paper"
    assert attrs.edges == "sharp"
    assert attrs.brushwork == "cross hatched lines"
    assert attrs.identity == "art deco"
    assert attrs.pattern == "zigzag lines"


def test_colours_keep_order_of_appearance_and_limits() -> None:
    attrs = read_style_text("watercolour wash of teal, coral, ivory, plum and sky blue")
    assert attrs.medium == "watercolor"
    assert attrs.dominant_colors == ("teal", "coral", "ivory")
    assert attrs.accent_colors == ("plum", "sky blue")
    assert validate_style_attributes(attrs) == []


def test_colour_only_in_accent_clause_keeps_accent_role() -> None:
    attrs = read_style_text("oil painting with emerald highlights")
    assert attrs.medium == "oil impasto"
    assert attrs.accent_colors == ("emerald",)
    assert "emerald" not in attrs.dominant_colors
    assert attrs.dominant_colors  # filled from the hash


def test_empty_text_still_reads() -> None:
    assert _in_vocabulary(read_style_text(""))


def test_canonical_attributes_map_into_vocabulary() -> None:
    free = StyleAttributes(
        identity="Van Gogh",
        dominant_colors=("deep crimson", "dusty mauve"),
        accent_colors=("golden",),
        lighting="window light",
        surface="rough plaster",
        medium="oil on canvas",
        edges="crisp",
        brushwork="thick strokes",
    )
    canon = canonical_style_attributes(free)
    assert _in_vocabulary(canon)
    assert canon.dominant_colors[0] == "crimson"
    assert canon.accent_colors == ("gold",)
    assert canon.medium == "oil impasto"
    assert canon.surface == "rough grainy"
    assert canon.edges == "sharp"
    assert canon.brushwork == "bold thick strokes"
    assert canon.pattern is None
    assert canonical_style_attributes(free) == canon


def test_canonical_keeps_vocabulary_values() -> None:
    attrs = read_style_text("zorblax")
    assert canonical_style_attributes(attrs) == attrs
