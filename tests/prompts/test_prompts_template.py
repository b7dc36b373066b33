"""Template style prompts: render ↔ parse round trip, strict-parse errors, rule validation."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from megastyle.prompts import (
    WORD_LIMITS,
    StyleAttributes,
    StyleLimitError,
    StylePromptError,
    find_content_words,
    find_vague_words,
    join_colors,
    parse_style_prompt,
    render_style_prompt,
    sample_style_attributes,
    split_colors,
    validate_style_attributes,
)

FULL = StyleAttributes(
    identity="art nouveau",
    dominant_colors=("crimson", "navy", "gold"),
    accent_colors=("amber",),
    lighting="warm golden hour",
    surface="rough grainy",
    medium="watercolor",
    pattern="diagonal stripes",
    edges="soft",
    brushwork="loose expressive strokes",
)
MINIMAL = StyleAttributes("cubism", ("red",), ("gold",), "candlelit", "glossy", "mosaic")


def test_render_full_prompt_exact_text() -> None:
    assert render_style_prompt(FULL) == (
        "In the style of art nouveau, crimson, navy and gold with amber accents, warm golden hour lighting, "
        "diagonal stripes as repeating visual patterns, rough grainy surface, soft edges, "
        "loose expressive strokes, in watercolor."
    )


def test_render_minimal_prompt_omits_optional_parts() -> None:
    text = render_style_prompt(MINIMAL)
    assert (
        text
        == "In the style of cubism, red with gold accents, candlelit lighting, glossy surface, in mosaic."
    )


@pytest.mark.parametrize(
    ("colors", "text"),
    [
        (("crimson",), "crimson"),
        (("crimson", "navy"), "crimson and navy"),
        (("crimson", "navy", "gold"), "crimson, navy and gold"),
        (("sky blue", "slate gray", "red", "tan"), "sky blue, slate gray, red and tan"),
    ],
)
def test_join_and_split_colors(colors: tuple[str, ...], text: str) -> None:
    assert join_colors(colors) == text
    assert split_colors(text) == colors


def test_split_colors_tolerates_oxford_comma_and_case() -> None:
    assert split_colors("crimson,  navy, AND gold") == ("crimson", "navy", "gold")


def test_round_trip_on_many_sampled_attribute_sets() -> None:
    rng = random.Random(1234)
    seen_optional = {"pattern": 0, "edges": 0, "brushwork": 0}
    for _ in range(400):
        attrs = sample_style_attributes(rng)
        assert parse_style_prompt(render_style_prompt(attrs)) == attrs
        for name in seen_optional:
            seen_optional[name] += getattr(attrs, name) is None
    # The optional parts were both present and absent, so every branch was exercised.
    assert all(0 < n < 400 for n in seen_optional.values())


@pytest.mark.parametrize(
    "attrs",
    [
        MINIMAL,
        replace(MINIMAL, accent_colors=()),  # "<colors> palette" form
        replace(FULL, identity="Zorblax Revival", medium="wet plaster fresco", edges="sharp"),
        replace(FULL, brushwork="in thin layers", pattern=None),  # brushwork that starts with "in"
        replace(FULL, lighting="studio lighting", surface="surface sheen"),  # keywords inside values
        replace(FULL, dominant_colors=("deep teal", "dusty mauve"), accent_colors=("pale lime", "ochre")),
    ],
)
def test_round_trip_on_unusual_valid_attributes(attrs: StyleAttributes) -> None:
    assert validate_style_attributes(attrs) == []
    assert parse_style_prompt(render_style_prompt(attrs)) == attrs


def test_parse_tolerates_case_whitespace_and_trailing_period() -> None:
    text = render_style_prompt(FULL)
    messy = (
        "  " + text.replace("In the style of", "IN THE STYLE OF").replace(", ", " ,\n  ").rstrip(".") + " .. "
    )
    messy = messy.replace("soft edges", "SOFT Edges").replace(" lighting", " Lighting")
    assert parse_style_prompt(messy) == FULL
    assert parse_style_prompt(text.rstrip(".")) == FULL


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A red apple beside a cup", "must start with 'In the style of'"),
        ("In the style of cubism", "<identity>"),
        ("In the style of cubism, red, candlelit lighting, glossy surface, in mosaic.", "accent colors"),
        (
            "In the style of cubism, red and gold accents, candlelit lighting, glossy surface, in mosaic.",
            "'with'",
        ),
        ("In the style of cubism, red with gold accents, candlelit, glossy surface, in mosaic.", "lighting"),
        ("In the style of cubism, red with gold accents, candlelit lighting, glossy, in mosaic.", "surface"),
        (
            "In the style of cubism, red with gold accents, candlelit lighting, glossy surface, mosaic.",
            "in <medium>",
        ),
        (
            "In the style of cubism, red with gold accents, candlelit lighting, glossy surface, a, b, in mosaic.",
            "extra segments",
        ),
    ],
)
def test_non_template_text_raises_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(StylePromptError) as info:
        parse_style_prompt(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def _over_limit(field: str) -> StyleAttributes:
    limit = WORD_LIMITS[field]
    if field in ("dominant_colors", "accent_colors"):
        # Two-word colours: limit + 1 words in total.
        colors = ("sky blue", "slate gray", "cobalt blue")[: (limit + 2) // 2]
        if limit % 2 == 0:
            colors = (*colors[: limit // 2], "tan")
        return replace(FULL, **{field: colors})
    return replace(FULL, **{field: " ".join(["flat"] * (limit + 1))})


@pytest.mark.parametrize("field", sorted(WORD_LIMITS))
def test_word_limit_violation_detected_per_field(field: str) -> None:
    violations = validate_style_attributes(_over_limit(field))
    word_violations = [v for v in violations if v.kind == "words"]
    assert [(v.field, v.limit, v.actual) for v in word_violations] == [
        (field, WORD_LIMITS[field], WORD_LIMITS[field] + 1)
    ]
    assert field in word_violations[0].message


@pytest.mark.parametrize("field", ["identity", "lighting", "pattern", "surface", "medium", "brushwork"])
def test_word_limit_is_inclusive(field: str) -> None:
    attrs = replace(FULL, **{field: " ".join(["flat"] * WORD_LIMITS[field])})
    assert validate_style_attributes(attrs) == []


def test_identity_limit_is_below_four_words() -> None:
    assert validate_style_attributes(replace(FULL, identity="late gothic revival")) == []
    assert [
        v.field for v in validate_style_attributes(replace(FULL, identity="very late gothic revival"))
    ] == ["identity"]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("identity", "woman portrait", ["woman", "portrait"]),
        ("lighting", "street lamp", ["street", "lamp"]),
        ("pattern", "repeated apples", ["apples"]),
        ("surface", "castle wall", ["castle", "wall"]),
        ("medium", "oil on horses", ["horses"]),
    ],
)
def test_content_words_flagged(field: str, value: str, words: list[str]) -> None:
    violations = [
        v for v in validate_style_attributes(replace(FULL, **{field: value})) if v.kind == "content"
    ]
    assert [(v.field, v.actual) for v in violations] == [(field, len(words))]
    assert find_content_words(value) == words


def test_content_word_in_color_flagged() -> None:
    violations = validate_style_attributes(replace(FULL, accent_colors=("apple red",)))
    assert [(v.field, v.kind) for v in violations] == [("accent_colors", "content")]


def test_style_vocabulary_phrases_are_not_content() -> None:
    # "stars" and "book" are content nouns, but these vocabulary phrases are legitimate style.
    attrs = replace(
        FULL, identity="children's book", pattern="scattered stars", dominant_colors=("rose", "olive")
    )
    assert validate_style_attributes(attrs) == []
    assert find_content_words("scattered stars") == []
    assert find_content_words("stars") == ["stars"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("beautiful impressionism", ["beautiful"]),
        ("various unique tones", ["various", "unique"]),
        ("some stunning glow", ["some", "stunning"]),
        ("kind of hazy", ["kind of"]),
    ],
)
def test_vague_words_flagged(value: str, words: list[str]) -> None:
    violations = [v for v in validate_style_attributes(replace(FULL, lighting=value)) if v.kind == "vague"]
    assert [(v.field, v.actual) for v in violations] == [("lighting", len(words))]
    assert find_vague_words(value) == words


@pytest.mark.parametrize(
    ("changes", "field", "kind"),
    [
        ({"identity": "cubism, baroque"}, "identity", "format"),
        ({"identity": " cubism"}, "identity", "format"),
        ({"medium": ""}, "medium", "format"),
        ({"dominant_colors": ("black and white",)}, "dominant_colors", "format"),
        ({"dominant_colors": ()}, "dominant_colors", "required"),
        ({"edges": "blurry"}, "edges", "edges"),
        ({"brushwork": "soft edges", "edges": None}, "brushwork", "format"),
    ],
)
def test_format_violations(changes: dict[str, object], field: str, kind: str) -> None:
    violations = validate_style_attributes(replace(FULL, **changes))
    assert (field, kind) in [(v.field, v.kind) for v in violations]


def test_valid_attributes_have_no_violations() -> None:
    assert validate_style_attributes(FULL) == []
    assert validate_style_attributes(MINIMAL) == []


def test_strict_render_raises_on_violations() -> None:
    bad = replace(FULL, identity="a beautiful woman with a hat")
    assert render_style_prompt(bad).startswith("In the style of a beautiful woman")
    with pytest.raises(StyleLimitError) as info:
        render_style_prompt(bad, strict=True)
    assert {v.kind for v in info.value.violations} == {"words", "content", "vague"}
    assert "identity" in str(info.value)
    assert render_style_prompt(FULL, strict=True) == render_style_prompt(FULL)


def test_render_without_dominant_colors_raises() -> None:
    with pytest.raises(StylePromptError, match="dominant_colors"):
        render_style_prompt(replace(FULL, dominant_colors=()))
