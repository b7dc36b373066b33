"""The two captioning instructions (style-only and content-only) and the JSON schema of style answers."""

from __future__ import annotations

from typing import Any

from megastyle.prompts.template import WORD_LIMITS

# The JSON keys of a style answer, in template order; the first five are required.
STYLE_FIELDS: tuple[str, ...] = (
    "identity",
    "dominant_colors",
    "accent_colors",
    "lighting",
    "pattern",
    "surface",
    "edges",
    "brushwork",
    "medium",
)
REQUIRED_STYLE_FIELDS: tuple[str, ...] = ("identity", "dominant_colors", "lighting", "surface", "medium")

CONTENT_MAX_CHARS = 100  # longer content answers are rejected (the released prompts are 25–69 characters)

STYLE_INSTRUCTION = f"""Look only at HOW this image is made, never at WHAT it shows.
Reply with a single JSON object and nothing else, using exactly these keys:
"identity": the art movement or genre of the style, at most {WORD_LIMITS["identity"]} words (e.g. "art deco", "ukiyo-e").
"dominant_colors": a list of 1 to 3 colour names that cover most of the image, at most {WORD_LIMITS["dominant_colors"]} words in total.
"accent_colors": a list of 0 to 2 colour names used in small, contrasting areas, at most {WORD_LIMITS["accent_colors"]} words in total.
"lighting": the quality, colour and direction of the light, at most {WORD_LIMITS["lighting"]} words, without the word "lighting".
"pattern": a repeating visual pattern, at most {WORD_LIMITS["pattern"]} words, or null when there is none.
"surface": the look of the surface or material, at most {WORD_LIMITS["surface"]} words, without the word "surface".
"edges": "soft" or "sharp", or null.
"brushwork": how marks or strokes are laid down, at most {WORD_LIMITS["brushwork"]} words, or null.
"medium": the medium or technique, at most {WORD_LIMITS["medium"]} words (e.g. "watercolor", "pixel art", "woodcut").
Rules: never name an object, person, animal, plant, building or place; avoid vague words such as "beautiful", "various" or "unique"; no commas or periods inside a value."""

CONTENT_INSTRUCTION = """Look only at WHAT this image shows, never at how it is made.
Write one short sentence (about 25 to 70 characters) that names the main objects, how many of each there are, and where they are relative to each other, for example: "Two cups beside a vase on a table".
Do not mention colours, art style, medium, technique, lighting, texture or mood.
Reply with the sentence only."""

_INSTRUCTIONS: dict[str, str] = {"style": STYLE_INSTRUCTION, "content": CONTENT_INSTRUCTION}


def instruction_for(kind: str, previous_error: str | None = None) -> str:
    """The instruction for ``kind``; after a rejected answer, the reason is appended so the model can fix it."""
    if kind not in _INSTRUCTIONS:
        raise ValueError(f"unknown caption kind {kind!r}; expected 'style' or 'content'")
    text = _INSTRUCTIONS[kind]
    if previous_error:
        text += f"\nYour previous answer was rejected ({previous_error}). Answer again and follow the rules exactly."
    return text


def style_json_schema() -> dict[str, Any]:
    """JSON schema of a style answer, for servers that accept ``response_format`` ``json_schema``."""
    text = {"type": "string"}
    optional_text = {"type": ["string", "null"]}
    color_list = {"type": "array", "items": {"type": "string"}, "maxItems": 3}
    return {
        "type": "object",
        "properties": {
            "identity": text,
            "dominant_colors": {**color_list, "minItems": 1},
            "accent_colors": {**color_list, "maxItems": 2},
            "lighting": text,
            "pattern": optional_text,
            "surface": text,
            "edges": {"type": ["string", "null"], "enum": ["soft", "sharp", None]},
            "brushwork": optional_text,
            "medium": text,
        },
        "required": list(STYLE_FIELDS),
        "additionalProperties": False,
    }
