"""The ``transformers`` captioner: a local Qwen-VL checkpoint (Qwen3-VL or Qwen2.5-VL) run in-process.

Loads ``AutoModelForImageTextToText`` + ``AutoProcessor`` from a local folder, builds one chat turn per
item (the image, then the instruction), generates a whole batch at once with left padding (greedy by
default) and hands the answers to the shared retry loop for validation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from megastyle.curate.caption.base import CaptionPrompt, RetryingCaptioner, fit_image
from megastyle.curate.caption.instructions import CONTENT_MAX_CHARS

_DTYPES = ("auto", "float32", "float16", "bfloat16")


def _resolve_device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class TransformersCaptioner(RetryingCaptioner):
    """Caption with a local Qwen-VL checkpoint through transformers; batched, greedy unless told otherwise."""

    name = "transformers"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        dtype: str = "auto",
        device: str | None = None,
        max_new_tokens: int = 256,
        batch_size: int = 8,
        max_attempts: int = 3,
        do_sample: bool = False,
        temperature: float = 0.7,
        max_image_side: int | None = 768,
        attn_implementation: str | None = None,
        content_max_chars: int = CONTENT_MAX_CHARS,
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = Path(model_path)
        if not path.is_dir():
            raise FileNotFoundError(f"transformers captioner: model folder {str(path)!r} does not exist")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be at least 1")
        self.device = _resolve_device(device)
        kwargs: dict[str, Any] = {"dtype": "auto" if dtype == "auto" else getattr(torch, dtype)}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        # device_map loads the weights straight onto the device (no full copy in host memory first).
        kwargs["device_map"] = self.device
        self.model = AutoModelForImageTextToText.from_pretrained(path, **kwargs).eval()
        self.processor = AutoProcessor.from_pretrained(path)
        # Decoder-only batching needs left padding so every prompt ends where generation starts.
        self.processor.tokenizer.padding_side = "left"
        self.label = f"{self.name}:{path.name}"
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.do_sample = do_sample
        self.temperature = temperature
        self.max_image_side = max_image_side
        self.content_max_chars = content_max_chars

    def _chat_text(self, instruction: str) -> str:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def generate_answers(self, prompts: list[CaptionPrompt]) -> list[str]:
        """Raw model answers for a list of prompts, generated ``batch_size`` at a time."""
        import torch

        answers: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            inputs = self.processor(
                text=[self._chat_text(p.instruction) for p in chunk],
                images=[fit_image(p.image, self.max_image_side) for p in chunk],
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            options: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
            if self.do_sample:
                options["temperature"] = self.temperature
            with torch.inference_mode():
                output = self.model.generate(**inputs, **options)
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            answers.extend(self.processor.batch_decode(new_tokens, skip_special_tokens=True))
        return answers
