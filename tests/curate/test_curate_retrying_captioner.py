"""``RetryingCaptioner`` (the shared ``caption()`` of the VLM backends) and ``fit_image``."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from megastyle.curate.caption import Captioner
from megastyle.curate.caption.base import Answer, CaptionPrompt, RetryingCaptioner, fit_image
from megastyle.curate.items import PoolItem
from megastyle.data import encode_png
from megastyle.testing import random_images


class EchoCaptioner(RetryingCaptioner):
    """Answers each content prompt with a fixed text, after ``bad`` empty answers per item."""

    name = "echo"

    def __init__(
        self, text: str, *, bad: int = 0, max_attempts: int = 3, content_max_chars: int = 300
    ) -> None:
        self.label = f"{self.name}:test"
        self.text, self.bad = text, bad
        self.max_attempts, self.content_max_chars = max_attempts, content_max_chars
        self.attempts: list[int] = []

    def generate_answers(self, prompts: list[CaptionPrompt]) -> Sequence[Answer]:
        """The fixed text, or an empty (rejected) answer for the first ``bad`` attempts."""
        self.attempts += [p.attempt for p in prompts]
        return ["" if p.attempt <= self.bad else self.text for p in prompts]


def _items(n: int) -> list[PoolItem]:
    return [
        PoolItem(f"i{k}", "pool", image_bytes=encode_png(im)) for k, im in enumerate(random_images(n, (8, 8)))
    ]


def test_caption_runs_the_retry_loop_with_the_backend_settings() -> None:
    captioner = EchoCaptioner("A barn beside a lake", bad=1)
    assert isinstance(captioner, Captioner)
    captions = captioner.caption(_items(2), "content")
    assert [c.text for c in captions] == ["A barn beside a lake"] * 2
    assert all(c.attempts == 2 and c.backend == "echo:test" for c in captions)
    assert captioner.attempts == [1, 1, 2, 2]


def test_caption_honours_max_attempts_and_content_max_chars() -> None:
    out_of_attempts = EchoCaptioner("A barn", bad=5, max_attempts=2).caption(_items(1), "content")
    assert not out_of_attempts[0].ok and out_of_attempts[0].attempts == 2
    too_long = EchoCaptioner("A barn beside a lake", content_max_chars=5).caption(_items(1), "content")
    assert not too_long[0].ok and too_long[0].attempts == 3


def test_fit_image_downscales_only_large_images() -> None:
    image = Image.new("RGB", (300, 100))
    assert fit_image(image, None) is image and fit_image(image, 300) is image
    assert fit_image(image, 150).size == (150, 50)
    assert fit_image(Image.new("RGB", (1000, 1)), 10).size == (10, 1)  # never a zero-pixel side
