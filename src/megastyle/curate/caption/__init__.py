"""Caption stage: a VLM (or the offline heuristic) writes style-only and content-only prompts for pool images.

``load_captioner(name, **options)`` builds a backend; every backend's ``caption(items, kind)`` is a
plain function over a batch that returns one ``Caption`` per item and records failures instead of
raising. Backends: ``heuristic`` (offline, measured from pixels), ``transformers`` (local Qwen-VL),
``openai`` (any OpenAI-compatible server such as vLLM or SGLang).
"""

from __future__ import annotations

from typing import Any

from megastyle.curate.caption.answers import (
    CaptionFormatError,
    ParsedCaption,
    extract_json_object,
    parse_answer,
    parse_content_answer,
    parse_style_answer,
    style_attributes_from_json,
)
from megastyle.curate.caption.base import (
    CAPTION_KINDS,
    Captioner,
    CaptionKind,
    CaptionPrompt,
    GenerateFn,
    GenerationError,
    caption_with_retries,
)
from megastyle.curate.caption.content_clean import strip_color_modifiers, strip_style_words
from megastyle.curate.caption.heuristic import (
    HeuristicCaptioner,
    content_from_sidecar,
    measured_style_attributes,
)
from megastyle.curate.caption.instructions import (
    CONTENT_INSTRUCTION,
    STYLE_FIELDS,
    STYLE_INSTRUCTION,
    instruction_for,
    style_json_schema,
)
from megastyle.plugins import is_import_path, load_object

CAPTIONERS: tuple[str, ...] = ("heuristic", "transformers", "openai")


def load_captioner(name: str, **options: Any) -> Captioner:
    """Build the captioner called ``name`` with backend ``options`` (see each backend's constructor)."""
    if name == "heuristic":
        return HeuristicCaptioner(**options)
    if name == "transformers":
        from megastyle.curate.caption.hf_transformers import TransformersCaptioner

        return TransformersCaptioner(**options)
    if name == "openai":
        from megastyle.curate.caption.openai_compat import OpenAICaptioner

        return OpenAICaptioner(**options)
    if is_import_path(name):
        return load_object(name)(**options)
    raise ValueError(
        f"unknown captioner {name!r}; known: {', '.join(CAPTIONERS)}, or an import path module:Class"
    )


__all__ = [
    "CAPTIONERS",
    "CAPTION_KINDS",
    "CONTENT_INSTRUCTION",
    "STYLE_FIELDS",
    "STYLE_INSTRUCTION",
    "CaptionFormatError",
    "CaptionKind",
    "CaptionPrompt",
    "Captioner",
    "GenerateFn",
    "GenerationError",
    "HeuristicCaptioner",
    "ParsedCaption",
    "caption_with_retries",
    "content_from_sidecar",
    "extract_json_object",
    "instruction_for",
    "load_captioner",
    "measured_style_attributes",
    "parse_answer",
    "parse_content_answer",
    "parse_style_answer",
    "strip_color_modifiers",
    "strip_style_words",
    "style_attributes_from_json",
    "style_json_schema",
]
