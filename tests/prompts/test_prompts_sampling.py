"""Seeded samplers: distinct, valid, reproducible, and spread over the vocabularies."""

from __future__ import annotations

import random
from collections import Counter

from megastyle.prompts import (
    content_style_leaks,
    find_content_words,
    find_vague_words,
    parse_content_prompt,
    parse_style_prompt,
    render_content_prompt,
    sample_content_prompts,
    sample_style_attributes,
    sample_style_prompts,
    validate_style_attributes,
)
from megastyle.prompts.vocabulary import MEDIA


def test_style_prompts_distinct_valid_and_clean() -> None:
    prompts = sample_style_prompts(120, seed=5)
    assert len(prompts) == 120
    assert len(set(prompts)) == 120
    for prompt in prompts:
        attrs = parse_style_prompt(prompt)
        assert validate_style_attributes(attrs) == [], prompt
        assert find_content_words(prompt) == []
        assert find_vague_words(prompt) == []


def test_style_prompts_cover_all_media_evenly() -> None:
    prompts = sample_style_prompts(4 * len(MEDIA), seed=11)
    media = Counter(parse_style_prompt(p).medium for p in prompts)
    assert set(media) == set(MEDIA)
    assert set(media.values()) == {4}


def test_style_prompts_reproducible_per_seed() -> None:
    assert sample_style_prompts(20, seed=2) == sample_style_prompts(20, seed=2)
    assert sample_style_prompts(20, seed=2) != sample_style_prompts(20, seed=3)


def test_sample_style_attributes_uses_given_rng() -> None:
    a = sample_style_attributes(random.Random(9))
    assert a == sample_style_attributes(random.Random(9))
    assert validate_style_attributes(a) == []
    assert sample_style_attributes(random.Random(9), medium="woodcut").medium == "woodcut"


def test_content_prompts_distinct_short_and_structured() -> None:
    prompts = sample_content_prompts(150, seed=4)
    assert len(set(prompts)) == 150
    sizes = Counter()
    for text in prompts:
        assert 25 <= len(text) <= 69, text
        parsed = parse_content_prompt(text)
        assert 1 <= len(parsed.objects) <= 3
        assert len(parsed.relations) == len(parsed.objects) - 1
        assert render_content_prompt(parsed) == text
        assert content_style_leaks(text) == []
        sizes[len(parsed.objects)] += 1
    assert sizes[2] > 0 and sizes[3] > 0


def test_content_prompts_reproducible_per_seed() -> None:
    assert sample_content_prompts(30, seed=1) == sample_content_prompts(30, seed=1)
    assert sample_content_prompts(30, seed=1) != sample_content_prompts(30, seed=2)
