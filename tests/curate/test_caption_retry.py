"""The shared retry loop, driven by scripted ``generate`` callables (the success path of every VLM backend)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from megastyle.curate.caption import CaptionPrompt, GenerationError, caption_with_retries
from megastyle.curate.items import PoolItem
from megastyle.data import encode_png
from megastyle.prompts import parse_style_prompt
from megastyle.testing import random_images

VALID = json.dumps(
    {
        "identity": "pop art",
        "dominant_colors": ["yellow", "cyan"],
        "accent_colors": ["magenta"],
        "lighting": "harsh midday",
        "pattern": "polka dots",
        "surface": "glossy",
        "edges": "sharp",
        "brushwork": None,
        "medium": "halftone print",
    }
)


def _items(n: int) -> list[PoolItem]:
    return [
        PoolItem(f"item{i}", "pool", image_bytes=encode_png(image))
        for i, image in enumerate(random_images(n, (24, 16)))
    ]


class Script:
    """A ``generate`` callable answering each item from its own list of replies, recording every call."""

    def __init__(self, replies: dict[str, list[str | BaseException]]) -> None:
        self.replies = {key: list(value) for key, value in replies.items()}
        self.calls: list[list[CaptionPrompt]] = []

    def __call__(self, prompts: list[CaptionPrompt]) -> Sequence[str | BaseException]:
        self.calls.append(prompts)
        return [self.replies[p.item.id].pop(0) for p in prompts]


def test_valid_answers_succeed_on_the_first_attempt() -> None:
    items = _items(3)
    script = Script({item.id: [VALID] for item in items})
    captions = caption_with_retries(items, "style", script, backend="scripted")
    assert [c.item_id for c in captions] == ["item0", "item1", "item2"]
    assert all(c.ok and c.attempts == 1 and c.backend == "scripted" and c.kind == "style" for c in captions)
    assert parse_style_prompt(captions[0].text or "").medium == "halftone print"
    assert json.loads(captions[0].attributes_json or "")["pattern"] == "polka dots"
    assert len(script.calls) == 1 and all(p.image.size == (24, 16) for p in script.calls[0])


def test_only_rejected_items_are_asked_again_with_the_reason() -> None:
    items = _items(3)
    script = Script(
        {
            "item0": [VALID],
            "item1": ["Sure, it's a pop art print!", "```json\n" + VALID + "\n```"],
            "item2": ['{"identity": "pop art"}', "still no", "nope"],
        }
    )
    captions = caption_with_retries(items, "style", script, backend="scripted", max_attempts=3)
    assert [len(call) for call in script.calls] == [3, 2, 1]
    retry_prompt = script.calls[1][0]
    assert retry_prompt.item.id == "item1" and retry_prompt.attempt == 2
    assert "previous answer was rejected (answer is not JSON" in retry_prompt.instruction
    assert captions[0].ok and captions[0].attempts == 1
    assert captions[1].ok and captions[1].attempts == 2
    failed = captions[2]
    assert not failed.ok and failed.text is None and failed.attempts == 3
    assert failed.error is not None and failed.error.startswith("style caption rejected after 3 attempts")
    assert "'nope'" in failed.error  # the raw answer preview


def test_the_attempt_budget_is_configurable() -> None:
    items = _items(1)
    script = Script({"item0": ["garbage"] * 5})
    (caption,) = caption_with_retries(items, "style", script, backend="scripted", max_attempts=1)
    assert len(script.calls) == 1 and caption.attempts == 1 and "after 1 attempts" in (caption.error or "")
    with pytest.raises(ValueError, match="max_attempts"):
        caption_with_retries(items, "style", script, backend="scripted", max_attempts=0)
    with pytest.raises(ValueError, match="caption kind"):
        caption_with_retries(items, "mood", script, backend="scripted")  # type: ignore[arg-type]


def test_content_captions_are_validated_too() -> None:
    items = _items(2)
    script = Script(
        {
            "item0": ["A watercolor of a boat", "A boat beside a small pier"],
            "item1": ["Three birds over a house."],
        }
    )
    captions = caption_with_retries(items, "content", script, backend="scripted")
    assert [c.text for c in captions] == ["A boat beside a small pier", "Three birds over a house"]
    assert [c.attempts for c in captions] == [2, 1] and all(c.attributes_json is None for c in captions)
    assert "watercolor" in script.calls[1][0].instruction  # the rejection reason names the leak


def test_backend_failures_are_recorded_per_item_and_not_retried() -> None:
    items = _items(2)
    script = Script({"item0": [GenerationError("timed out after 3 tries")], "item1": [VALID]})
    captions = caption_with_retries(items, "style", script, backend="scripted")
    assert len(script.calls) == 1
    assert captions[0].error == "style caption failed: GenerationError: timed out after 3 tries"
    assert captions[1].ok


def test_a_crashing_batch_is_split_to_isolate_the_bad_item() -> None:
    items = _items(3)
    calls: list[list[str]] = []

    def generate(prompts: list[CaptionPrompt]) -> list[str]:
        calls.append([p.item.id for p in prompts])
        if any(p.item.id == "item1" for p in prompts):
            raise RuntimeError("processor choked on item1")
        return [VALID] * len(prompts)

    captions = caption_with_retries(items, "style", generate, backend="scripted")
    assert calls == [["item0", "item1", "item2"], ["item0"], ["item1"], ["item2"]]
    assert captions[0].ok and captions[2].ok
    assert captions[1].error == "style caption failed: RuntimeError: processor choked on item1"


def test_a_wrong_answer_count_is_recorded_not_raised() -> None:
    items = _items(2)
    captions = caption_with_retries(items, "style", lambda prompts: [VALID], backend="scripted")
    # Split one by one, each single call gets its one answer.
    assert all(c.ok for c in captions)
    captions = caption_with_retries(items, "style", lambda prompts: [], backend="scripted")
    assert all(c.error is not None and "returned no answer" in c.error for c in captions)


def test_unreadable_images_are_recorded_without_asking_the_model() -> None:
    items = [*_items(1), PoolItem("broken", "pool", image_bytes=b"not an image"), PoolItem("nothing", "pool")]
    script = Script({"item0": [VALID]})
    captions = caption_with_retries(items, "style", script, backend="scripted")
    assert [len(call) for call in script.calls] == [1]
    assert captions[0].ok
    assert captions[1].attempts == 0 and "cannot read the image" in (captions[1].error or "")
    assert "broken" in (captions[1].error or "")
    assert "neither image bytes nor a path" in (captions[2].error or "")
