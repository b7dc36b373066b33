"""The offline ``heuristic`` captioner: style words MEASURED from pixels, content from sidecar captions.

It is a measurement, not a vision-language model: colours, light, edges, texture and periodicity are
computed with numpy and mapped to the shared vocabulary (see ``style_words``); it cannot see objects,
so content prompts come from each item's sidecar caption with the style words removed, and items
without one are recorded as failures. Deterministic, no weights, tens of images per second per core.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from megastyle.curate.caption.answers import CaptionFormatError, style_caption_from_attributes
from megastyle.curate.caption.base import CaptionKind, check_kind, load_pool_images
from megastyle.curate.caption.content_clean import strip_style_words
from megastyle.curate.caption.instructions import CONTENT_MAX_CHARS
from megastyle.curate.caption.measure import COLOR_VOCABULARIES, measure
from megastyle.curate.caption.style_words import style_attributes
from megastyle.curate.items import Caption, PoolItem
from megastyle.prompts import StyleAttributes, content_style_leaks

NO_SIDECAR = "no sidecar caption: the heuristic captioner cannot see objects"


def measured_style_attributes(image: Image.Image, color_vocabulary: str = "full") -> StyleAttributes:
    """Style attributes of one image, measured from its pixels (colours named from ``color_vocabulary``)."""
    return style_attributes(measure(image, _color_names(color_vocabulary)))


def _color_names(vocabulary: str) -> dict[str, str] | None:
    if vocabulary not in COLOR_VOCABULARIES:
        raise ValueError(f"color_vocabulary must be one of {sorted(COLOR_VOCABULARIES)}, got {vocabulary!r}")
    return COLOR_VOCABULARIES[vocabulary]


def content_from_sidecar(caption: str | None, max_chars: int = CONTENT_MAX_CHARS) -> str:
    """The content sentence of a sidecar caption (style words, framing and colours removed)."""
    if caption is None or not caption.strip():
        raise CaptionFormatError(NO_SIDECAR)
    text = strip_style_words(caption)
    if not text:
        raise CaptionFormatError(
            f"sidecar caption has no content left once style words are removed: {caption!r}"
        )
    if len(text) > max_chars:
        # Why cut at a word: long alt-texts still start with their main objects.
        text = text[:max_chars].rsplit(" ", 1)[0].rstrip(" ,;")
    leaks = content_style_leaks(text)
    if leaks:  # cannot happen after stripping; kept as a guard against vocabulary drift
        raise CaptionFormatError(f"content still names style ({', '.join(leaks)}): {text!r}")
    return text


class HeuristicCaptioner:
    """Measured style prompts and sidecar-derived content prompts; no model, fully deterministic.

    ``color_vocabulary``: "full" names colours from the whole colour vocabulary (~50 names);
    "basic" coarsens them to 15 (``BASIC_COLORS``), which keeps one palette's words stable across light,
    medium and texture, so styles that share a palette also share their colour words.
    """

    name = "heuristic"

    def __init__(
        self,
        max_pixels: int | None = None,
        content_max_chars: int = CONTENT_MAX_CHARS,
        color_vocabulary: str = "full",
    ) -> None:
        self.max_pixels = max_pixels
        self.content_max_chars = content_max_chars
        _color_names(color_vocabulary)  # fail at construction, not on the first image
        self.color_vocabulary = color_vocabulary

    def caption(self, items: list[PoolItem], kind: CaptionKind) -> list[Caption]:
        """One caption per item; unreadable images and missing sidecars are recorded as errors."""
        kind = check_kind(kind)
        if kind == "content":
            return [self._content(item) for item in items]
        return self._style(items)

    def _content(self, item: PoolItem) -> Caption:
        try:
            text = content_from_sidecar(item.caption, self.content_max_chars)
        except CaptionFormatError as exc:
            return Caption(item.id, "content", None, error=str(exc), backend=self.name)
        return Caption(item.id, "content", text, backend=self.name)

    def _style(self, items: Sequence[PoolItem]) -> list[Caption]:
        images, errors = load_pool_images(items, self.max_pixels)
        out = []
        for i, item in enumerate(items):
            if i in errors:
                out.append(Caption(item.id, "style", None, error=errors[i], attempts=0, backend=self.name))
                continue
            try:
                parsed = style_caption_from_attributes(
                    measured_style_attributes(images[i], self.color_vocabulary)
                )
            except (CaptionFormatError, ValueError) as exc:
                out.append(
                    Caption(
                        item.id, "style", None, error=f"style measurement failed: {exc}", backend=self.name
                    )
                )
                continue
            out.append(
                Caption(
                    item.id, "style", parsed.text, attributes_json=parsed.attributes_json, backend=self.name
                )
            )
        return out
