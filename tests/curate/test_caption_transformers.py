"""The ``transformers`` captioner on tiny random Qwen-VL checkpoints (built offline through the real classes).

Random weights write garbage, so these tests show that (a) the real loading, chat templating, left-padded
batched generation and decoding run end to end on pool items, and (b) garbage is rejected and recorded
after the retry budget with the raw answer in the error. The success path of the same retry loop is
covered with scripted answers in ``test_caption_retry.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from megastyle.curate.caption import CaptionPrompt, load_captioner
from megastyle.curate.caption.hf_transformers import TransformersCaptioner
from megastyle.curate.items import PoolItem
from megastyle.data import encode_png
from megastyle.testing import random_images
from megastyle.testing.fixtures import tiny_model, tiny_models_root  # noqa: F401  (pytest fixtures)

MODEL_CLASSES = {
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}


def _items() -> list[PoolItem]:
    # Different sizes give different numbers of image tokens, so left padding is really exercised.
    images = random_images(2, (64, 48)) + random_images(1, (120, 90), seed=1)
    return [PoolItem(f"img{i}", "pool", image_bytes=encode_png(image)) for i, image in enumerate(images)]


@pytest.mark.parametrize("variant", sorted(MODEL_CLASSES))
def test_garbage_from_a_random_model_is_rejected_and_recorded(
    variant: str,
    tiny_model: Callable[..., Path],  # noqa: F811
) -> None:
    # qwen2.5: two chunks per attempt (batch 2 < 3 items); qwen3: one batch of three.
    batch_size = 2 if variant == "qwen2_5_vl" else 3
    captioner = load_captioner(
        "transformers",
        model_path=tiny_model(variant),
        max_new_tokens=6,
        batch_size=batch_size,
        max_attempts=2,
    )
    assert isinstance(captioner, TransformersCaptioner)
    assert type(captioner.model).__name__ == MODEL_CLASSES[variant] and not captioner.model.training
    assert captioner.processor.tokenizer.padding_side == "left"
    items = [*_items(), PoolItem("broken", "pool", image_bytes=b"not an image")]
    captions = captioner.caption(items, "style")
    assert [c.item_id for c in captions] == ["img0", "img1", "img2", "broken"]
    for caption in captions[:3]:
        assert not caption.ok and caption.attempts == 2 and caption.backend == f"transformers:{variant}-seed0"
        assert caption.error is not None and caption.error.startswith(
            "style caption rejected after 2 attempts"
        )
        assert "answer is not JSON: '" in caption.error  # the raw answer preview
    assert captions[3].attempts == 0 and "cannot read the image" in (captions[3].error or "")


def test_batched_generation_is_greedy_and_matches_one_by_one(tiny_model: Callable[..., Path]) -> None:  # noqa: F811
    captioner = TransformersCaptioner(
        tiny_model("qwen2_5_vl"), max_new_tokens=8, batch_size=3, dtype="float32"
    )
    assert captioner.model.dtype == torch.float32 and captioner.device == "cpu"
    prompts = [CaptionPrompt(item, item.load_image(), "Describe the style.", "style", 1) for item in _items()]
    batched = captioner.generate_answers(prompts)
    assert len(batched) == 3 and all(isinstance(a, str) and a for a in batched)
    assert captioner.generate_answers(prompts) == batched  # greedy: deterministic
    singles = [captioner.generate_answers([p])[0] for p in prompts]
    # Left padding must not change what each prompt generates (same tokens as unbatched greedy decoding).
    assert singles == batched


def test_content_answers_go_through_the_same_validation(tiny_model: Callable[..., Path]) -> None:  # noqa: F811
    captioner = TransformersCaptioner(
        tiny_model("qwen3_vl"), max_new_tokens=12, batch_size=4, max_attempts=1, content_max_chars=20
    )
    captions = captioner.caption(_items(), "content")
    for caption in captions:
        # 12 random tokens are longer than the 20-character limit set here: rejected, answer quoted.
        assert caption.attempts == 1 and not caption.ok
        assert caption.error is not None and "content caption rejected after 1 attempts" in caption.error


def test_bad_options_fail_fast(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TransformersCaptioner(tmp_path / "missing")
    with pytest.raises(ValueError, match="dtype"):
        TransformersCaptioner(tmp_path, dtype="float8")
