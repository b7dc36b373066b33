"""The ``openai`` captioner: any OpenAI-compatible chat-completions server (vLLM, SGLang, ...).

Images travel as base64 data URLs; requests run concurrently on a bounded thread pool; timeouts,
connection errors, 429 and 5xx answers are retried with exponential backoff and jitter, and a request
that exhausts its retries becomes that item's recorded failure while the batch goes on. Uses the
standard library (urllib) so the backend needs no extra dependency.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from megastyle.curate.caption.answers import preview
from megastyle.curate.caption.base import (
    Answer,
    CaptionPrompt,
    GenerationError,
    RetryingCaptioner,
    fit_image,
)
from megastyle.curate.caption.instructions import CONTENT_MAX_CHARS, style_json_schema

RESPONSE_FORMATS = ("json_object", "json_schema", "none")
_FORMAT_WORDS = ("response_format", "json", "schema", "guided")
_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class _Retryable(Exception):
    """A failure worth another try (timeouts, dropped connections, 429/5xx)."""


def encode_data_url(image: Image.Image, image_format: str = "png", max_side: int | None = None) -> str:
    """The image as a ``data:`` URL (PNG or JPEG), downscaled so its longest side is at most ``max_side``."""
    image = fit_image(image, max_side)
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=92)
    elif image_format == "png":
        image.save(buffer, format="PNG")
    else:
        raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
    return f"data:image/{image_format};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def message_text(body: dict[str, Any]) -> str:
    """The assistant text of a chat-completions response (string or list-of-parts content)."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise GenerationError(
            f"server response has no choices[0].message.content: {preview(json.dumps(body))!r}"
        ) from exc
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


class OpenAICaptioner(RetryingCaptioner):
    """Caption through an OpenAI-compatible ``/chat/completions`` endpoint; retries, bounded concurrency."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        max_attempts: int = 3,
        max_tokens: int = 512,
        temperature: float = 0.0,
        response_format: str = "json_object",
        image_format: str = "png",
        max_image_side: int | None = 1024,
        content_max_chars: int = CONTENT_MAX_CHARS,
        seed: int | None = None,
    ) -> None:
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise ValueError("concurrency must be ≥ 1, max_retries ≥ 0 and timeout_s > 0")
        if response_format not in RESPONSE_FORMATS:
            raise ValueError(f"response_format must be one of {RESPONSE_FORMATS}, got {response_format!r}")
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_attempts = max_attempts
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.response_format = response_format
        self.image_format = image_format
        self.max_image_side = max_image_side
        self.content_max_chars = content_max_chars
        self.label = f"{self.name}:{model}"
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    # --- one request -----------------------------------------------------------------------

    def _payload(self, prompt: CaptionPrompt, with_format: bool) -> dict[str, Any]:
        url = encode_data_url(prompt.image, self.image_format, self.max_image_side)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": url}},
                        {"type": "text", "text": prompt.instruction},
                    ],
                }
            ],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if with_format and prompt.kind == "style":
            if self.response_format == "json_object":
                payload["response_format"] = {"type": "json_object"}
            elif self.response_format == "json_schema":
                schema = {"name": "style_attributes", "schema": style_json_schema()}
                payload["response_format"] = {"type": "json_schema", "json_schema": schema}
        return payload

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(payload).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = preview(exc.read().decode("utf-8", "replace")) if exc.fp else ""
            if exc.code in _RETRY_STATUS:
                raise _Retryable(f"HTTP {exc.code}: {detail}", exc.headers.get("Retry-After")) from exc
            raise GenerationError(f"HTTP {exc.code} from {self.url}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retryable(f"{type(exc).__name__}: {reason}") from exc
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise GenerationError(
                f"server answered non-JSON: {preview(raw.decode('utf-8', 'replace'))!r}"
            ) from exc

    def _delay(self, retry: int, retry_after: str | None) -> float:
        """Exponential backoff with "equal jitter"; a server's Retry-After (seconds) wins if larger."""
        cap = min(self.backoff_max_s, self.backoff_s * 2**retry)
        with self._lock:  # random.Random is not thread-safe
            delay = cap / 2 + self._rng.uniform(0, cap / 2)
        if retry_after is not None:
            with contextlib.suppress(ValueError):  # an HTTP-date Retry-After is ignored
                delay = max(delay, min(float(retry_after), self.backoff_max_s))
        return delay

    def request_answer(self, prompt: CaptionPrompt) -> str:
        """One chat completion with transport retries; ``GenerationError`` when the retries run out."""
        with_format = self.response_format != "none"
        last = ""
        retry = 0
        while True:
            try:
                return message_text(self._post(self._payload(prompt, with_format)))
            except GenerationError as exc:
                # Servers without structured output reject response_format with a 400: drop it and go on.
                message = str(exc).lower()
                if with_format and "http 400" in message and any(w in message for w in _FORMAT_WORDS):
                    with_format = False
                    with self._lock:
                        self.response_format = "none"
                    continue
                raise
            except _Retryable as exc:
                last = str(exc.args[0])
                if retry >= self.max_retries:
                    raise GenerationError(
                        f"{self.url} failed after {retry + 1} tries (timeout {self.timeout_s:g} s): {last}"
                    ) from exc
                time.sleep(self._delay(retry, exc.args[1] if len(exc.args) > 1 else None))
                retry += 1

    # --- batches ---------------------------------------------------------------------------

    def _answer_or_error(self, prompt: CaptionPrompt) -> Answer:
        try:
            return self.request_answer(prompt)
        except Exception as exc:  # recorded for this item only; the batch goes on
            return exc

    def generate_answers(self, prompts: list[CaptionPrompt]) -> list[Answer]:
        """Answers for all prompts, at most ``concurrency`` requests in flight."""
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(self._answer_or_error, prompts))
