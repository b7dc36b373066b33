"""Tiny Qwen-VL captioners load through ``AutoModelForImageTextToText`` + ``AutoProcessor`` and generate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from megastyle.testing import (
    assert_different_weights,
    assert_same_weights,
    build_tiny_qwen_vl,
    qwen_special_token_ids,
    random_images,
)

EXPECTED = {
    "qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor", 1176),
    "qwen3_vl": ("Qwen3VLForConditionalGeneration", "Qwen3VLProcessor", 1536),
}


def _messages(text: str) -> list[dict[str, object]]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_captioner_generates_for_an_image_batch(variant: str, tiny_model: Callable[..., Path]) -> None:
    model_class, processor_class, patch_dim = EXPECTED[variant]
    directory = tiny_model(variant)
    model = AutoModelForImageTextToText.from_pretrained(directory)
    processor = AutoProcessor.from_pretrained(directory)
    assert type(model).__name__ == model_class and type(processor).__name__ == processor_class
    assert not model.training

    prompt = processor.apply_chat_template(
        _messages("Describe the style of this image."), add_generation_prompt=True
    )
    assert prompt.count("<|image_pad|>") == 1 and prompt.endswith("<|im_start|>assistant\n")
    processor.tokenizer.padding_side = "left"
    images = random_images(2, (64, 48)) + random_images(1, (300, 200), seed=1)
    inputs = processor(text=[prompt] * 3, images=images, padding=True, return_tensors="pt")
    assert inputs["pixel_values"].shape[1] == patch_dim
    assert (inputs["input_ids"] == model.config.image_token_id).sum() == inputs["image_grid_thw"].prod(
        -1
    ).sum() // 4

    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        again = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert (
        out.shape[0] == 3 and inputs["input_ids"].shape[1] < out.shape[1] <= inputs["input_ids"].shape[1] + 8
    )
    torch.testing.assert_close(out, again, rtol=0, atol=0)
    captions = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_config_ids_match_the_tokenizer(variant: str, tiny_model: Callable[..., Path]) -> None:
    directory = tiny_model(variant)
    model = AutoModelForImageTextToText.from_pretrained(directory)
    tokenizer = AutoProcessor.from_pretrained(directory).tokenizer
    ids = qwen_special_token_ids()
    assert (
        model.config.image_token_id
        == tokenizer.convert_tokens_to_ids("<|image_pad|>")
        == ids["image_token_id"]
    )
    assert model.config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert model.config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert model.config.vision_end_token_id == tokenizer.convert_tokens_to_ids("<|vision_end|>")
    assert model.generation_config.eos_token_id == [tokenizer.eos_token_id, tokenizer.pad_token_id]
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert len(tokenizer) <= model.config.text_config.vocab_size


def test_apply_chat_template_can_tokenize_images_directly(tiny_model: Callable[..., Path]) -> None:
    processor = AutoProcessor.from_pretrained(tiny_model("qwen_vl"))
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": random_images(1)[0]}, {"type": "text", "text": "Hi"}],
        }
    ]
    encoded = processor.apply_chat_template(
        [messages], add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert {"input_ids", "attention_mask", "pixel_values", "image_grid_thw"} <= set(encoded)
    assert encoded["image_grid_thw"].tolist() == [[1, 2, 2]]  # 32×32 is resized up to 56×56 → 2×2 patches


def test_builds_are_deterministic_and_variant_checked(tmp_path: Path) -> None:
    a = build_tiny_qwen_vl(tmp_path / "a", seed=5)
    assert_same_weights(a, build_tiny_qwen_vl(tmp_path / "b", seed=5))
    assert_different_weights(a, build_tiny_qwen_vl(tmp_path / "c", seed=6))
    with pytest.raises(ValueError, match="variant"):
        build_tiny_qwen_vl(tmp_path / "d", variant="qwen9_vl")  # type: ignore[arg-type]
