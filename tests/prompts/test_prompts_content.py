"""Content prompts: parsing counts, plurals, relations and unknown nouns; rendering; style leaks."""

from __future__ import annotations

import random

import pytest

from megastyle.prompts import (
    ContentObject,
    ContentPrompt,
    ContentPromptError,
    Relation,
    content_style_leaks,
    parse_content_prompt,
    pluralize,
    render_content_prompt,
    sample_content,
    singularize,
)


def _summary(text: str) -> tuple[list[tuple[str, int, tuple[str, ...]]], list[tuple[int, str, int]]]:
    prompt = parse_content_prompt(text)
    return (
        [(o.name, o.count, o.modifiers) for o in prompt.objects],
        [(r.subject, r.relation, r.object) for r in prompt.relations],
    )


def test_paper_example() -> None:
    assert _summary("A red apple beside a ceramic cup on a table") == (
        [("apple", 1, ("red",)), ("cup", 1, ("ceramic",)), ("table", 1, ())],
        [(0, "beside", 1), (1, "on", 2)],
    )


@pytest.mark.parametrize(
    ("text", "name", "count"),
    [
        ("two apples", "apple", 2),
        ("Three benches", "bench", 3),
        ("5 leaves", "leaf", 5),
        ("12 cats", "cat", 12),
        ("a pair of shoes", "shoe", 2),
        ("a few butterflies", "butterfly", 3),
        ("several boxes", "box", 4),
        ("an umbrella", "umbrella", 1),
        ("one fish", "fish", 1),
        ("two fish", "fish", 2),
        ("people", "person", 2),  # bare plural: more than one
        ("the moon", "moon", 1),
        ("houses", "house", 2),
    ],
)
def test_counts_and_plurals(text: str, name: str, count: int) -> None:
    objects, _ = _summary(text)
    assert objects == [(name, count, ())]


@pytest.mark.parametrize(
    ("text", "relation"),
    [
        ("a cat in front of a house", "in front of"),
        ("a lamp next to a chair", "next to"),
        ("a vase on top of a table", "on"),  # alias → canonical
        ("a bird above a boat", "above"),
        ("a dog beneath a tree", "under"),
        ("a kite between two towers", "between"),
    ],
)
def test_relations_including_multi_word(text: str, relation: str) -> None:
    objects, relations = _summary(text)
    assert len(objects) == 2
    assert relations == [(0, relation, 1)]


def test_conjunction_gives_objects_without_relation() -> None:
    objects, relations = _summary("A cat and a dog behind three tall trees")
    assert [o[0] for o in objects] == ["cat", "dog", "tree"]
    assert objects[2] == ("tree", 3, ("tall",))
    assert relations == [(1, "behind", 2)]


def test_unknown_nouns_are_kept_with_modifiers() -> None:
    objects, relations = _summary("two glowing zorblaxes beside a wobbly flurby sitting on a mat")
    assert objects == [("zorblax", 2, ("glowing",)), ("flurby", 1, ("wobbly",)), ("mat", 1, ())]
    assert relations == [(0, "beside", 1), (1, "on", 2)]


def test_multi_word_color_modifier_and_compound_noun() -> None:
    assert _summary("a sky blue kite over apple trees") == (
        [("kite", 1, ("sky blue",)), ("tree", 2, ("apple",))],
        [(0, "over", 1)],
    )


def test_commas_separate_objects() -> None:
    objects, relations = _summary("a cat, a dog")
    assert [o[0] for o in objects] == ["cat", "dog"]
    assert relations == []


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_raises(text: str) -> None:
    with pytest.raises(ContentPromptError, match="empty"):
        parse_content_prompt(text)


def test_text_without_objects_gives_empty_prompt() -> None:
    assert parse_content_prompt("...").objects == ()


def test_render_examples() -> None:
    prompt = ContentPrompt(
        objects=(ContentObject("apple", 2, ("red",)), ContentObject("cup"), ContentObject("umbrella")),
        relations=(Relation(0, "beside", 1),),
    )
    assert render_content_prompt(prompt) == "Two red apples beside a cup and an umbrella"
    assert render_content_prompt(ContentPrompt((ContentObject("bench", 9),))) == "9 benches"


def test_render_rejects_unexpressible_relations() -> None:
    objects = (ContentObject("cat"), ContentObject("dog"), ContentObject("tree"))
    with pytest.raises(ContentPromptError):
        render_content_prompt(ContentPrompt(objects, (Relation(0, "beside", 2),)))
    with pytest.raises(ContentPromptError):
        render_content_prompt(ContentPrompt(()))


def test_round_trip_on_sampled_content() -> None:
    rng = random.Random(7)
    for _ in range(300):
        prompt = sample_content(rng)
        text = render_content_prompt(prompt)
        assert parse_content_prompt(text) == prompt, text
        assert render_content_prompt(parse_content_prompt(text)) == text


@pytest.mark.parametrize(
    "noun",
    ["apple", "bench", "leaf", "butterfly", "key", "fish", "box", "person", "zorblax", "flurby", "glass"],
)
def test_pluralize_singularize_round_trip(noun: str) -> None:
    plural = pluralize(noun)
    assert singularize(plural) == (noun, plural != noun)
    assert singularize(noun) == (noun, False)


def test_style_leaks_detected_in_order() -> None:
    text = "A cat on a table, watercolor in warm golden hour lighting with a pastel palette"
    assert content_style_leaks(text) == ["watercolor", "warm golden hour", "lighting", "pastel", "palette"]
    assert content_style_leaks("A sailboat in the style of ukiyo-e") == ["in the style of", "ukiyo-e"]


def test_plain_content_has_no_leaks() -> None:
    assert content_style_leaks("A red apple beside a ceramic cup on a table") == []
    assert content_style_leaks("Two gold keys under a charcoal cloud") == []
