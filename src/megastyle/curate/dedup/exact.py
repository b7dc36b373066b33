"""Exact dedup: MD5 of the normalised text (NeMo-Curator's convention), first of each group kept."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence

from megastyle.curate.dedup.pairs import DuplicatePair, StepResult, result_from_pairs

_ASCII_EDGE_JUNK = (
    " \t\n\r\x0b\x0c" + "!\"#%&'()*,-./:;?@[\\]_{}"
)  # ASCII whitespace and category-P punctuation


def _is_edge_junk(char: str) -> bool:
    # Punctuation (P*) and whitespace at the ends carry no meaning for a prompt ("A cat." == "a cat").
    return char.isspace() or unicodedata.category(char).startswith("P")


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed to single spaces, punctuation stripped at both ends."""
    if not text.isascii():  # NFKC leaves ASCII unchanged; skipping it is the common fast path
        text = unicodedata.normalize("NFKC", text)
    text = " ".join(text.casefold().split()).strip(_ASCII_EDGE_JUNK)
    start, end = 0, len(text)
    while start < end and _is_edge_junk(text[start]):
        start += 1
    while end > start and _is_edge_junk(text[end - 1]):
        end -= 1
    return text[start:end]


def exact_hash(text: str, normalize: bool = True) -> str:
    """MD5 hex digest of ``text`` (normalised first unless ``normalize`` is False)."""
    if not isinstance(text, str):
        raise TypeError(f"exact_hash needs a str, got {type(text).__name__}")
    return hashlib.md5((normalize_text(text) if normalize else text).encode("utf-8")).hexdigest()


def exact_groups(texts: Sequence[str], normalize: bool = True) -> list[list[int]]:
    """Indices grouped by equal hash, each group in input order; groups ordered by their first index."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
        groups.setdefault(exact_hash(text, normalize), []).append(i)
    return list(groups.values())


def exact_duplicates(texts: Sequence[str], normalize: bool = True) -> StepResult:
    """Drop every text whose normalised MD5 was seen before; the first of each group is kept."""
    pairs = [
        DuplicatePair(removed=i, kept=group[0], score=1.0)
        for group in exact_groups(texts, normalize)
        for i in group[1:]
    ]
    return result_from_pairs(len(texts), pairs)
