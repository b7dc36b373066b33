"""The ``Captioner`` contract and the retry loop every VLM backend shares.

A backend only supplies ``generate(prompts) -> answers``; ``caption_with_retries`` decodes the images,
asks, validates every answer, re-asks the rejected items (telling the model what was wrong) up to
``max_attempts`` times, and records every failure as ``Caption(error=...)``. One bad item never
stops a batch. ``RetryingCaptioner`` wires a backend's ``generate_answers`` into that loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from PIL import Image

from megastyle.curate.caption.answers import CaptionFormatError, ParsedCaption, parse_answer, preview
from megastyle.curate.caption.instructions import CONTENT_MAX_CHARS, instruction_for
from megastyle.curate.items import Caption, PoolItem

CaptionKind = Literal["style", "content"]
CAPTION_KINDS: tuple[str, ...] = ("style", "content")


@runtime_checkable
class Captioner(Protocol):
    """Writes style-only or content-only prompts for a batch of pool items, one ``Caption`` per item."""

    name: str

    def caption(self, items: list[PoolItem], kind: CaptionKind) -> list[Caption]:
        """One caption per item, in order; failures are recorded in ``Caption.error``, never raised."""
        ...


@dataclass(frozen=True)
class CaptionPrompt:
    """One question to a VLM: an item's decoded image and the instruction text."""

    item: PoolItem
    image: Image.Image
    instruction: str
    kind: CaptionKind
    attempt: int


class GenerationError(RuntimeError):
    """A backend gave up on one prompt (e.g. timeouts after its own retries); final for that item."""


# A backend's answers, one per prompt: the text, or the exception that ended that prompt.
Answer = str | BaseException
GenerateFn = Callable[[list[CaptionPrompt]], Sequence[Answer]]


def check_kind(kind: str) -> CaptionKind:
    """``kind`` itself when it is "style" or "content"; ``ValueError`` otherwise."""
    if kind not in CAPTION_KINDS:
        raise ValueError(f"unknown caption kind {kind!r}; expected 'style' or 'content'")
    return kind  # type: ignore[return-value]


def load_pool_images(
    items: Sequence[PoolItem], max_pixels: int | None = None
) -> tuple[dict[int, Image.Image], dict[int, str]]:
    """Decode each item's image: (index → image, index → error); unreadable items are recorded, not raised."""
    images: dict[int, Image.Image] = {}
    errors: dict[int, str] = {}
    for i, item in enumerate(items):
        try:
            images[i] = item.load_image(max_pixels)
        except (ValueError, OSError) as exc:  # ImageDecodeError is a ValueError
            errors[i] = f"cannot read the image: {exc}"
    return images, errors


def _safe_generate(generate: GenerateFn, prompts: list[CaptionPrompt]) -> list[Answer]:
    """Call ``generate``; if the whole call fails, retry the prompts one by one to isolate the culprit."""
    try:
        answers = list(generate(prompts))
        if len(answers) != len(prompts):
            raise GenerationError(f"backend returned {len(answers)} answers for {len(prompts)} prompts")
        return answers
    except Exception as exc:
        if len(prompts) == 1:
            return [exc]
    out: list[Answer] = []
    for prompt in prompts:
        try:
            single = list(generate([prompt]))
            out.append(single[0] if len(single) == 1 else GenerationError("backend returned no answer"))
        except Exception as exc:
            out.append(exc)
    return out


def caption_with_retries(
    items: Sequence[PoolItem],
    kind: CaptionKind,
    generate: GenerateFn,
    *,
    backend: str,
    max_attempts: int = 3,
    max_pixels: int | None = None,
    content_max_chars: int = CONTENT_MAX_CHARS,
) -> list[Caption]:
    """Caption a batch through ``generate`` with validation and bounded re-asking; never raises per item."""
    kind = check_kind(kind)
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    results: dict[int, Caption] = {}
    images, decode_errors = load_pool_images(items, max_pixels)
    for i, error in decode_errors.items():
        results[i] = Caption(items[i].id, kind, None, error=error, attempts=0, backend=backend)
    last_error: dict[int, str] = {}
    last_answer: dict[int, str] = {}
    pending = sorted(images)
    for attempt in range(1, max_attempts + 1):
        if not pending:
            break
        prompts = [
            CaptionPrompt(items[i], images[i], instruction_for(kind, last_error.get(i)), kind, attempt)
            for i in pending
        ]
        still_pending: list[int] = []
        for i, answer in zip(pending, _safe_generate(generate, prompts), strict=True):
            if isinstance(answer, BaseException):
                # The backend already retried its transport; a final failure ends this item here.
                results[i] = Caption(
                    items[i].id,
                    kind,
                    None,
                    error=f"{kind} caption failed: {type(answer).__name__}: {answer}",
                    attempts=attempt,
                    backend=backend,
                )
                continue
            try:
                parsed: ParsedCaption = parse_answer(kind, str(answer or ""), content_max_chars)
            except CaptionFormatError as exc:
                last_error[i], last_answer[i] = str(exc), str(answer or "")
                still_pending.append(i)
                continue
            results[i] = Caption(
                items[i].id,
                kind,
                parsed.text,
                attributes_json=parsed.attributes_json,
                attempts=attempt,
                backend=backend,
            )
        pending = still_pending
    for i in pending:
        error = f"{kind} caption rejected after {max_attempts} attempts: {last_error[i]}"
        shown = preview(last_answer[i])
        if shown not in error:  # most parse errors already quote the answer
            error += f"; last answer: {shown!r}"
        results[i] = Caption(items[i].id, kind, None, error=error, attempts=max_attempts, backend=backend)
    return [results[i] for i in range(len(items))]


def fit_image(image: Image.Image, max_side: int | None) -> Image.Image:
    """Downscale so the longest side is at most ``max_side``: VLM token counts grow with pixels."""
    if max_side is None or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


class RetryingCaptioner:
    """Base of the VLM backends: ``caption()`` runs ``generate_answers`` through ``caption_with_retries``.

    A subclass sets ``name``, ``label`` (the backend recorded on each caption), ``max_attempts`` and
    ``content_max_chars``, and implements ``generate_answers``.
    """

    name: str
    label: str
    max_attempts: int
    content_max_chars: int

    def generate_answers(self, prompts: list[CaptionPrompt]) -> Sequence[Answer]:
        """One answer per prompt: the model's text, or the exception that ended that prompt."""
        raise NotImplementedError

    def caption(self, items: list[PoolItem], kind: CaptionKind) -> list[Caption]:
        """Caption a batch with validation and bounded re-asking (see ``caption_with_retries``)."""
        return caption_with_retries(
            items,
            kind,
            self.generate_answers,
            backend=self.label,
            max_attempts=self.max_attempts,
            content_max_chars=self.content_max_chars,
        )
