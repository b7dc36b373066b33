"""Parsing VLM answers: JSON extraction, coercion, template validation, content-answer checks."""

from __future__ import annotations

import json

import pytest

from megastyle.curate.caption import (
    STYLE_FIELDS,
    CaptionFormatError,
    extract_json_object,
    instruction_for,
    parse_content_answer,
    parse_style_answer,
    strip_style_words,
    style_json_schema,
)
from megastyle.prompts import content_style_leaks, parse_style_prompt

GOOD = {
    "identity": "ukiyo-e",
    "dominant_colors": ["indigo", "cream"],
    "accent_colors": ["vermilion red"],
    "lighting": "flat even daylight",
    "pattern": "wavy ripples",
    "surface": "rough grainy paper",
    "edges": "sharp",
    "brushwork": "fine precise outlines",
    "medium": "woodblock print",
}
GOOD_PROMPT = (
    "In the style of ukiyo-e, indigo and cream with vermilion red accents, flat even daylight lighting, "
    "wavy ripples as repeating visual patterns, rough grainy paper surface, sharp edges, "
    "fine precise outlines, in woodblock print."
)


def test_plain_json_renders_the_template_prompt() -> None:
    parsed = parse_style_answer(json.dumps(GOOD))
    assert parsed.text == GOOD_PROMPT
    assert parse_style_prompt(parsed.text).medium == "woodblock print"
    assert json.loads(parsed.attributes_json or "") == GOOD
    assert list(json.loads(parsed.attributes_json or "")) == list(STYLE_FIELDS)


@pytest.mark.parametrize(
    "wrap",
    [
        "```json\n{}\n```",
        "Sure! Here is the description:\n```\n{}\n```\nLet me know if you need more.",
        "The style attributes are {} — hope this helps.",
        "<think>The image looks like a print {{maybe}}.</think>\n{}",
        "{{not json}} then the real one: {}",
    ],
    ids=["json-fence", "bare-fence-with-prose", "inline-prose", "think-block", "broken-then-good"],
)
def test_json_is_found_inside_chatty_answers(wrap: str) -> None:
    assert parse_style_answer(wrap.format(json.dumps(GOOD))).text == GOOD_PROMPT


def test_values_are_coerced_to_template_form() -> None:
    answer = {
        **GOOD,
        "Dominant Colours": "indigo, cream",  # string list, spaced/British key
        "accent_colors": [],
        "lighting": "Flat even daylight lighting.",  # repeated template word, case, period
        "surface": "rough grainy paper surface",
        "edges": "crisp edges",
        "pattern": None,
        "brushwork": "N/A",
        "medium": "in woodblock print",
    }
    del answer["dominant_colors"]
    parsed = parse_style_answer(json.dumps(answer))
    attrs = json.loads(parsed.attributes_json or "")
    assert attrs["dominant_colors"] == ["indigo", "cream"]
    assert attrs["lighting"] == "flat even daylight" and attrs["surface"] == "rough grainy paper"
    assert attrs["edges"] == "sharp" and attrs["medium"] == "woodblock print"
    assert attrs["pattern"] is None and attrs["brushwork"] is None
    assert "indigo and cream palette" in parsed.text  # no accents → the palette form of the template


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("I cannot describe this image.", "not JSON"),
        ("{'identity': 'pop art'}", "no valid JSON object"),
        ('["pop art", "red"]', "not JSON"),
        (
            json.dumps({k: v for k, v in GOOD.items() if k not in ("medium", "lighting")}),
            "lacks required keys",
        ),
        (json.dumps({**GOOD, "dominant_colors": []}), "empty: dominant_colors"),
        (json.dumps({**GOOD, "identity": "  "}), "empty: identity"),
        (json.dumps({**GOOD, "identity": "late japanese edo period print"}), "identity has 5 words"),
        (
            json.dumps({**GOOD, "lighting": "soft warm light coming in from the upper left window"}),
            "lighting",
        ),
        (json.dumps({**GOOD, "dominant_colors": ["deep ocean blue", "pale cream"]}), "dominant_colors use 5"),
        (json.dumps({**GOOD, "surface": "smooth, glossy"}), "contains a comma"),
        (json.dumps({**GOOD, "pattern": "repeating cats"}), "pattern names content: cats"),
        (json.dumps({**GOOD, "brushwork": "beautiful strokes"}), "vague words: beautiful"),
        (json.dumps({**GOOD, "edges": "wobbly"}), "edges must be 'soft' or 'sharp'"),
        (json.dumps({**GOOD, "medium": 3}), "medium must be a string"),
        (json.dumps({**GOOD, "accent_colors": {"a": 1}}), "list of colour names"),
    ],
)
def test_bad_style_answers_are_rejected_with_a_clear_message(answer: str, message: str) -> None:
    with pytest.raises(CaptionFormatError, match=message):
        parse_style_answer(answer)


def test_extract_json_object_prefers_the_fenced_block() -> None:
    text = 'Example: {"a": 1}\n```json\n{"b": 2}\n```'
    assert extract_json_object(text) == {"b": 2}
    assert isinstance(CaptionFormatError("x"), ValueError)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Two cups beside a vase on a table.", "Two cups beside a vase on a table"),
        ('"A cat under a chair"', "A cat under a chair"),
        ("Content: a red barn behind three trees", "A barn behind three trees"),
        ('```\n{"content": "a dog next to a bicycle"}\n```', "A dog next to a bicycle"),
        ("<think>hmm</think>\nan orange on a plate", "An orange on a plate"),
        ("The image shows two cats on a sofa.", "Two cats on a sofa"),
        ("There are three boats under a bridge", "Three boats under a bridge"),
    ],
)
def test_content_answers_are_cleaned(answer: str, expected: str) -> None:
    assert parse_content_answer(answer).text == expected


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "empty"),
        ("  ...  ", "empty"),
        ("A watercolor painting of a barn", "names style, not content .*watercolor"),
        ("A moonlit harbour with two boats", "moonlit"),
        ("A cat on a mat.\nThe style is flat.", "2 lines"),
        ("A " + "very " * 30 + "long sentence about a cat", r"characters \(limit 100\)"),
        ('{"style": "pop art"}', "JSON without a sentence"),
    ],
)
def test_bad_content_answers_are_rejected(answer: str, message: str) -> None:
    with pytest.raises(CaptionFormatError, match=message):
        parse_content_answer(answer)


def test_content_length_limit_is_configurable() -> None:
    assert parse_content_answer("A cat beside a dog", max_chars=18).text == "A cat beside a dog"
    with pytest.raises(CaptionFormatError, match="limit 17"):
        parse_content_answer("A cat beside a dog", max_chars=17)


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("a watercolor painting of a red barn", "A barn"),
        ("Impressionist oil painting of two boats on a lake", "Two boats on a lake"),
        ("A cat sitting on a chair, digital art, trending on artstation, 4k", "A cat sitting on a chair"),
        ("An orange on a plate beside a red cup", "An orange on a plate beside a cup"),
        ("a photo of a lighthouse in the style of van gogh", "A lighthouse"),
        ("A moonlit castle on a hill, dramatic lighting", "A castle on a hill"),
        ("pixel art of a knight with a sword", "A knight with a sword"),
        ("woodcut artwork: Three chairs over two bicycles", "Three chairs over two bicycles"),
        ("Note: a cat on a mat", "A cat on a mat"),
    ],
)
def test_strip_style_words_keeps_objects_and_relations(caption: str, expected: str) -> None:
    stripped = strip_style_words(caption)
    assert stripped == expected
    assert content_style_leaks(stripped) == []


def test_instructions_name_every_field_and_carry_the_previous_error() -> None:
    style = instruction_for("style")
    assert all(f'"{field}"' in style for field in STYLE_FIELDS)
    assert "at most 3 words" in style and "at most 8 words" in style  # identity and lighting limits
    content = instruction_for("content")
    assert "objects" in content and "colours" in content
    retry = instruction_for("content", previous_error="content answer names style")
    assert retry.startswith(content) and "rejected (content answer names style)" in retry
    with pytest.raises(ValueError, match="caption kind"):
        instruction_for("mood")
    schema = style_json_schema()
    assert schema["required"] == list(STYLE_FIELDS) and set(schema["properties"]) == set(STYLE_FIELDS)
