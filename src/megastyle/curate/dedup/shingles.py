"""Stable 64-bit shingle hashes, vectorised over all shingles of a batch of documents at once.

A document is a sequence of tokens (code points, or words), each turned into a 64-bit value
``t`` (code points: splitmix64 of the code point; words: blake2b via ``stable_hash``). The hash of
the window ``t[s:s+L]`` is ``mix64(sum_i t[s+i] * K^(L-1-i) mod 2^64)``: a polynomial over the
tokens followed by the splitmix64 finaliser. Every window of the concatenated batch comes out of one
prefix sum: with ``C[k] = sum_{m<k} t[m] * K^-m`` (``K`` is odd, so it has an inverse mod 2^64),
the window sum is ``K^(s+L-1) * (C[s+L] - C[s])``, exact in wrapping uint64 arithmetic. So windows
of any length (short documents, pieces) cost a handful of array passes, with no Python loop over
shingles and no dependence on Python's per-process salted ``hash``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from megastyle.curate.dedup.exact import normalize_text
from megastyle.prompts.vocabulary import stable_hash

ShingleUnit = Literal["char", "word"]

_U64 = np.uint64
# Odd multiplier of the window polynomial (the 64-bit golden ratio), and its inverse mod 2^64.
POLY_BASE = 0x9E3779B97F4A7C15
POLY_BASE_INV = pow(POLY_BASE, -1, 1 << 64)
_CHAR_SALT = 0x632BE59BD9B4E019  # keeps code point 0 away from the splitmix64 fixed point


def mix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser applied elementwise (returns a new uint64 array)."""
    z = values.astype(_U64, copy=True)
    z ^= z >> _U64(30)
    z *= _U64(0xBF58476D1CE4E5B9)
    z ^= z >> _U64(27)
    z *= _U64(0x94D049BB133111EB)
    z ^= z >> _U64(31)
    return z


def prepare_texts(texts: Sequence[str], normalize: bool) -> list[str]:
    """The texts as shingled: ``normalize_text`` applied (or only type-checked)."""
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
        out.append(normalize_text(text) if normalize else text)
    return out


class TokenBatch:
    """The tokens of a batch of documents, concatenated, with the prefix sums that hash any window."""

    def __init__(self, texts: Sequence[str], unit: ShingleUnit) -> None:
        if unit == "char":
            lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
            self.codepoints = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
            tokens = mix64(self.codepoints.astype(_U64) + _U64(_CHAR_SALT))
        elif unit == "word":
            # Word hashes are computed once per distinct word of the batch.
            word_ids: dict[str, int] = {}
            ids: list[int] = []
            counts = []
            for text in texts:
                words = text.split()
                counts.append(len(words))
                ids.extend(word_ids.setdefault(w, len(word_ids)) for w in words)
            lengths = np.asarray(counts, dtype=np.int64)
            table = np.fromiter((stable_hash(w) for w in word_ids), dtype=_U64, count=len(word_ids))
            tokens = table[np.asarray(ids, dtype=np.int64)] if ids else np.zeros(0, dtype=_U64)
            self.codepoints = None
        else:
            raise ValueError(f"unknown shingle unit {unit!r}: use 'char' or 'word'")
        self.unit = unit
        self.lengths = lengths
        self.starts = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.starts[1:])
        total = len(tokens)
        self._power = _powers(POLY_BASE, total + 1)
        inverse_power = _powers(POLY_BASE_INV, total)
        self._prefix = np.zeros(total + 1, dtype=_U64)
        np.cumsum(tokens * inverse_power, out=self._prefix[1:])

    def window_hashes(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Hashes of the token windows ``[starts, starts + lengths)`` (global positions, lengths ≥ 1)."""
        ends = starts + lengths
        return mix64(self._power[ends - 1] * (self._prefix[ends] - self._prefix[starts]))

    def shingle_windows(self, ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, lengths, offsets) of every document's shingles; offsets index them per document.

        A document shorter than ``ngram`` tokens is one shingle (itself); an empty one has none.
        """
        counts = np.where(self.lengths > 0, np.maximum(self.lengths - ngram + 1, 1), 0)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        doc = np.repeat(np.arange(len(counts)), counts)
        starts = self.starts[doc] + (np.arange(offsets[-1]) - offsets[doc])
        return starts, np.minimum(self.lengths, ngram)[doc], offsets


def _powers(base: int, count: int) -> np.ndarray:
    powers = np.full(count, base, dtype=_U64)
    if count:
        powers[0] = 1
    return np.cumprod(powers, dtype=_U64)  # wraps mod 2^64, which is the point


def shingle_hashes(
    texts: Sequence[str], ngram: int, unit: ShingleUnit = "char", normalize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """All shingle hashes of ``texts`` concatenated, and offsets ``(n + 1,)`` slicing each document's."""
    batch = TokenBatch(prepare_texts(texts, normalize), unit)
    starts, lengths, offsets = batch.shingle_windows(ngram)
    return batch.window_hashes(starts, lengths), offsets


def shingle_sets(
    texts: Sequence[str], ngram: int, unit: ShingleUnit = "char", normalize: bool = True
) -> list[np.ndarray]:
    """Each document's distinct shingle hashes, sorted (for exact Jaccard)."""
    hashes, offsets = shingle_hashes(texts, ngram, unit, normalize)
    return [np.unique(hashes[offsets[i] : offsets[i + 1]]) for i in range(len(texts))]


def shingle_strings(text: str, ngram: int, unit: ShingleUnit = "char", normalize: bool = True) -> list[str]:
    """The shingles of one text as strings (the reference the hashes stand for; also datasketch's input)."""
    text = normalize_text(text) if normalize else text
    if unit == "char":
        return [text[i : i + ngram] for i in range(max(len(text) - ngram + 1, 1))] if text else []
    words = text.split()
    return [" ".join(words[i : i + ngram]) for i in range(max(len(words) - ngram + 1, 1))] if words else []


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted distinct-hash arrays (1.0 for two empty sets)."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
