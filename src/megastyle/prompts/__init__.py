"""Style and content prompts as data: template render/parse, lenient reading, samplers."""

from megastyle.prompts.attributes import StyleAttributes
from megastyle.prompts.content import ContentObject, ContentPrompt, Relation
from megastyle.prompts.content_text import (
    ContentPromptError,
    content_style_leaks,
    parse_content_prompt,
    render_content_prompt,
)
from megastyle.prompts.lenient import canonical_style_attributes, read_style_text
from megastyle.prompts.lexicon import pluralize, singularize
from megastyle.prompts.sampling import (
    sample_content,
    sample_content_prompts,
    sample_style_attributes,
    sample_style_prompts,
)
from megastyle.prompts.template import (
    WORD_LIMITS,
    LimitViolation,
    StyleLimitError,
    StylePromptError,
    find_content_words,
    find_vague_words,
    join_colors,
    parse_style_prompt,
    render_style_prompt,
    split_colors,
    validate_style_attributes,
)
from megastyle.prompts.vocabulary import nearest_color_name, stable_hash

__all__ = [
    "WORD_LIMITS",
    "ContentObject",
    "ContentPrompt",
    "ContentPromptError",
    "LimitViolation",
    "Relation",
    "StyleAttributes",
    "StyleLimitError",
    "StylePromptError",
    "canonical_style_attributes",
    "content_style_leaks",
    "find_content_words",
    "find_vague_words",
    "join_colors",
    "nearest_color_name",
    "parse_content_prompt",
    "parse_style_prompt",
    "pluralize",
    "read_style_text",
    "render_content_prompt",
    "render_style_prompt",
    "sample_content",
    "sample_content_prompts",
    "sample_style_attributes",
    "sample_style_prompts",
    "singularize",
    "split_colors",
    "stable_hash",
    "validate_style_attributes",
]
