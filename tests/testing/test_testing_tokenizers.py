"""The in-memory tokenizers: real classes, useful splits, identical after save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from megastyle.testing import tokenizers as tk

QWEN_IMAGE_TEMPLATE = (
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, "
    "spatial relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
PROMPT = "A watercolor painting of two red apples on a wooden table, soft light"

BUILDERS = {
    "clip": (tk.build_clip_tokenizer, "CLIPTokenizer"),
    "t5": (tk.build_t5_tokenizer, "T5Tokenizer"),
    "siglip": (tk.build_siglip_tokenizer, "TokenizersBackend"),
    "qwen2": (tk.build_qwen2_tokenizer, "Qwen2Tokenizer"),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_round_trip_through_auto_tokenizer(name: str, tmp_path: Path) -> None:
    build, class_name = BUILDERS[name]
    tokenizer = build()
    assert type(tokenizer).__name__ == class_name
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded).__name__ == class_name
    assert loaded(PROMPT).input_ids == tokenizer(PROMPT).input_ids
    assert len(loaded) == len(tokenizer)
    assert loaded.model_max_length == tokenizer.model_max_length


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_prompt_words_are_whole_known_tokens(name: str) -> None:
    tokenizer = BUILDERS[name][0]()
    ids = tokenizer(PROMPT, add_special_tokens=False).input_ids
    words = PROMPT.replace(",", " ,").split()
    assert len(ids) == len(words), tokenizer.convert_ids_to_tokens(ids)
    assert tokenizer.unk_token_id not in ids


def test_clip_pads_to_77_with_bos_and_eos() -> None:
    tokenizer = tk.build_clip_tokenizer()
    ids = tokenizer("a cat", padding="max_length").input_ids
    assert len(ids) == 77
    assert ids[0] == tokenizer.bos_token_id == 0
    assert ids[3] == tokenizer.eos_token_id == tokenizer.pad_token_id == 1
    assert tokenizer("A CAT").input_ids == tokenizer("a cat").input_ids  # CLIP lower-cases


def test_t5_and_siglip_append_eos() -> None:
    t5 = tk.build_t5_tokenizer()
    assert t5("a cat").input_ids[-1] == t5.eos_token_id == 1
    assert t5.pad_token_id == 0
    siglip = tk.build_siglip_tokenizer()
    ids = siglip("A Cat", padding="max_length").input_ids
    assert len(ids) == 64
    assert ids[:3] == siglip("a cat").input_ids
    assert siglip.pad_token_id == siglip.eos_token_id == 1


def test_unknown_words_fall_back_to_characters_not_unk() -> None:
    for build in (tk.build_t5_tokenizer, tk.build_clip_tokenizer, tk.build_qwen2_tokenizer):
        tokenizer = build()
        ids = tokenizer("Zyxomorphic quokka", add_special_tokens=False).input_ids
        assert len(ids) > 2
        assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids


def test_qwen_image_template_prefix_is_exactly_34_tokens() -> None:
    tokenizer = tk.build_qwen2_tokenizer()
    ids = tokenizer(QWEN_IMAGE_TEMPLATE.format(PROMPT)).input_ids
    assert tokenizer.decode(ids[34:]).startswith(PROMPT + "<|im_end|>")
    assert tokenizer.decode(ids[33:34]) == "\n"


def test_qwen_special_tokens_take_the_last_ids() -> None:
    tokenizer = tk.build_qwen2_tokenizer()
    ids = tokenizer.convert_tokens_to_ids(list(tk.QWEN_SPECIAL_TOKENS))
    assert ids == list(range(len(tokenizer) - len(ids), len(tokenizer)))
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    encoded = tokenizer("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>").input_ids
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") in encoded
    assert len(encoded) == 6


def test_qwen_chat_template_places_image_and_generation_prompt() -> None:
    tokenizer = tk.build_qwen2_tokenizer()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe it."}]}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|vision_end|>Describe it.<|im_end|>\n<|im_start|>assistant\n"
    )
    tokenizer.chat_template = tk.qwen_vl_chat_template(None)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert text.startswith("<|im_start|>user\n<|vision_start|>")
    assert not text.endswith("assistant\n")


def test_vocab_sizes_match_builders() -> None:
    assert len(tk.build_clip_tokenizer()) == tk.clip_vocab_size()
    assert len(tk.build_t5_tokenizer()) == tk.t5_vocab_size()
    assert len(tk.build_siglip_tokenizer()) == tk.siglip_vocab_size()
    assert len(tk.build_qwen2_tokenizer()) == tk.qwen_vocab_size()
