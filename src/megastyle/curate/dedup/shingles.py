"""Stable shingle hashes, shared pieces and exact set Jaccard, vectorised over a whole batch of documents.

A document is a sequence of tokens (code points, or words), each turned into a 64-bit value
``t`` (code points: splitmix64 of the code point; words: blake2b via ``stable_hash``). The hash of
the window ``t[s:s+L]`` is ``mix64(sum_i t[s+i] * K^(L-1-i) mod 2^64)``: a polynomial over the
tokens followed by the splitmix64 finaliser. Every window of the concatenated batch comes out of one
prefix sum: with ``C[k] = sum_{m<k} t[m] * K^-m`` (``K`` is odd, so it has an inverse mod 2^64),
the window sum is ``K^(s+L-1) * (C[s+L] - C[s])``, exact in wrapping uint64 arithmetic. So windows
of any length cost a handful of array passes, with no Python loop over shingles and no dependence
on Python's per-process salted ``hash``.

Exact Jaccard uses the full 64-bit hashes; MinHash permutes ``shingle_hash32`` (their high half, the
width of datasketch's ``sha1_hash32``). See ``minhash.py`` for why 32 bits and what it costs.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from megastyle.curate.dedup.exact import _ASCII_EDGE_JUNK, normalize_text
from megastyle.prompts.vocabulary import stable_hash

ShingleUnit = Literal["char", "word"]

_U64 = np.uint64
# Odd multiplier of the window polynomial (the 64-bit golden ratio), and its inverse mod 2^64.
POLY_BASE = 0x9E3779B97F4A7C15
POLY_BASE_INV = pow(POLY_BASE, -1, 1 << 64)
_CHAR_SALT = 0x632BE59BD9B4E019  # keeps code point 0 away from the splitmix64 fixed point
_PIECE_SALT = _U64(0x5DEECE66D)  # piece keys live apart from shingle hashes
MAX_PIECE_SHINGLES = 64  # longer pieces are cut, so MinHash blocks stay small and evenly filled
TOKEN_BATCH = 4096  # texts tokenised at once at most: the per-character arrays stay cache-sized


def mix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser applied elementwise (returns a new uint64 array)."""
    z = values.astype(_U64, copy=True)
    z ^= z >> _U64(30)
    z *= _U64(0xBF58476D1CE4E5B9)
    z ^= z >> _U64(27)
    z *= _U64(0x94D049BB133111EB)
    z ^= z >> _U64(31)
    return z


def shingle_hash32(hashes: np.ndarray) -> np.ndarray:
    """The 32-bit shingle hashes MinHash permutes: the high half of the 64-bit ones (uint32)."""
    return (np.asarray(hashes, dtype=_U64) >> _U64(32)).astype(np.uint32)


def prepare_texts(texts: Sequence[str], normalize: bool) -> list[str]:
    """The texts as shingled: ``normalize_text`` applied (or only type-checked)."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
    if not normalize:
        return list(texts)
    # ASCII fast path, equal to normalize_text: no NFKC needed, lower() is casefold(), and after
    # stripping ASCII punctuation and whitespace no edge character can be punctuation.
    return [
        " ".join(text.lower().split()).strip(_ASCII_EDGE_JUNK) if text.isascii() else normalize_text(text)
        for text in texts
    ]


def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concat(arange(s, s + c) for s, c in zip(starts, counts))`` without a Python loop."""
    counts = np.asarray(counts, dtype=np.int64)
    firsts = np.cumsum(counts) - counts
    return np.repeat(np.asarray(starts, dtype=np.int64) - firsts, counts) + np.arange(int(counts.sum()))


class TokenBatch:
    """The tokens of a batch of documents, concatenated, with the prefix sums that hash any window."""

    def __init__(
        self, texts: Sequence[str], unit: ShingleUnit, powers: tuple[np.ndarray, np.ndarray] | None = None
    ) -> None:
        if unit == "char":
            lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
            self.codepoints = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
            tokens = _char_tokens(self.codepoints)
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
        self.lengths = lengths
        self.starts = _offsets(lengths)
        total = len(tokens)
        if powers is None or len(powers[0]) < total + 1:
            powers = token_powers(total)
        self._power = powers[0]
        self._prefix = np.zeros(total + 1, dtype=_U64)
        np.multiply(tokens, powers[1][:total], out=tokens)
        np.cumsum(tokens, out=self._prefix[1:])

    def window_keys(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The windows' polynomial values before the finaliser: equal windows, equal keys (cheaper)."""
        ends = starts + lengths
        return self._power[ends - 1] * (self._prefix[ends] - self._prefix[starts])

    def window_hashes(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Hashes of the token windows ``[starts, starts + lengths)`` (global positions, lengths ≥ 1)."""
        return mix64(self.window_keys(starts, lengths))

    def shingle_windows(self, ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, lengths, offsets) of every document's shingles; offsets index them per document.

        A document shorter than ``ngram`` tokens is one shingle (itself); an empty one has none.
        """
        counts = np.where(self.lengths > 0, np.maximum(self.lengths - ngram + 1, 1), 0)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        starts = expand_ranges(self.starts[:-1], counts)
        return starts, np.repeat(np.minimum(self.lengths, ngram), counts), offsets


def _powers(base: int, count: int) -> np.ndarray:
    powers = np.full(count, base, dtype=_U64)
    if count:
        powers[0] = 1
    return np.cumprod(powers, dtype=_U64)  # wraps mod 2^64, which is the point


def token_powers(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``K^i`` for ``i ≤ count`` and ``K^-i`` for ``i < count``: what a ``TokenBatch`` of ``count`` tokens needs."""
    return _powers(POLY_BASE, count + 1), _powers(POLY_BASE_INV, count)


@functools.cache
def _bmp_tokens() -> np.ndarray:
    return mix64(np.arange(1 << 16, dtype=_U64) + _U64(_CHAR_SALT))


def _char_tokens(codepoints: np.ndarray) -> np.ndarray:
    """``mix64(code point + salt)``: a table lookup below U+10000, computed above."""
    if len(codepoints) == 0 or int(codepoints.max()) <= 0xFFFF:
        return _bmp_tokens()[codepoints]
    tokens = _bmp_tokens()[np.minimum(codepoints, 0xFFFF)]
    astral = np.flatnonzero(codepoints > 0xFFFF)
    tokens[astral] = mix64(codepoints[astral].astype(_U64) + _U64(_CHAR_SALT))
    return tokens


def shingle_hashes(
    texts: Sequence[str], ngram: int, unit: ShingleUnit = "char", normalize: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """All 64-bit shingle hashes of ``texts`` concatenated, and offsets ``(n + 1,)`` slicing each document's."""
    batch = TokenBatch(prepare_texts(texts, normalize), unit)
    starts, lengths, offsets = batch.shingle_windows(ngram)
    return batch.window_hashes(starts, lengths), offsets


def shingle_set_ranks(
    texts: Sequence[str], ngram: int, unit: ShingleUnit = "char", normalize: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct 64-bit shingle hashes, each document's distinct hashes as sorted ranks into
    them (concatenated), offsets ``(n + 1,)``): dense ranks let set operations pack into one int64."""
    hashes, offsets = shingle_hashes(texts, ngram, unit, normalize)
    distinct, _, rank = unique_inverse(hashes)
    doc = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(offsets))
    # One sort of (document, rank) keys dedupes and orders every document at once.
    keys = sorted_unique((doc << 32) | rank)
    return distinct, keys & 0xFFFFFFFF, np.searchsorted(keys >> 32, np.arange(len(texts) + 1))


def shingle_sets(
    texts: Sequence[str], ngram: int, unit: ShingleUnit = "char", normalize: bool = True
) -> list[np.ndarray]:
    """Each document's distinct shingle hashes, sorted (for exact Jaccard)."""
    distinct, ranks, offsets = shingle_set_ranks(texts, ngram, unit, normalize)
    return split_at_offsets(distinct[ranks], offsets)


def split_at_offsets(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """``[values[offsets[k]:offsets[k+1]] for each k]``: one part per gap, none for ``offsets == [0]``
    (``np.split`` at ``offsets[1:-1]`` would still give one)."""
    bounds = offsets.tolist()
    return [values[start:stop] for start, stop in itertools.pairwise(bounds)]


def pair_jaccard(
    ranks: np.ndarray, offsets: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = 1 << 23
) -> np.ndarray:
    """Exact Jaccard of sets ``left[k]`` and ``right[k]`` of a set table (1.0 for two empty sets).

    ``ranks[offsets[s]:offsets[s+1]]`` is set ``s`` as sorted distinct ids below 2^32 (dense ranks
    of the hashes), so ``(pair, id)`` packs into one sortable int64.
    """
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    sizes = np.diff(offsets)
    left_sizes, right_sizes = sizes[left], sizes[right]
    inter = np.zeros(len(left), dtype=np.int64)
    cost = np.cumsum(left_sizes + right_sizes)
    start = 0
    while start < len(left):
        stop = max(start + 1, int(np.searchsorted(cost, cost[start] + chunk)))
        pair = np.arange(start, stop, dtype=np.int64)
        # Both sides' keys come out sorted (pair-major, sets sorted), so a search finds the common ones.
        keys_left = _pair_keys(ranks, offsets[left[pair]], left_sizes[pair], pair)
        keys_right = _pair_keys(ranks, offsets[right[pair]], right_sizes[pair], pair)
        if len(keys_right):
            found = np.minimum(np.searchsorted(keys_right, keys_left), len(keys_right) - 1)
            common = keys_left[keys_right[found] == keys_left]
            inter[start:stop] = np.bincount((common >> 32) - start, minlength=stop - start)
        start = stop
    union = left_sizes + right_sizes - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _pair_keys(ranks: np.ndarray, starts: np.ndarray, sizes: np.ndarray, pair: np.ndarray) -> np.ndarray:
    return (np.repeat(pair, sizes) << 32) | ranks[expand_ranges(starts, sizes)]


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


@dataclass
class PieceIndex:
    """Documents as sequences of pieces; each distinct piece listed once with its 32-bit shingle hashes.

    A piece is a token window whose shingles are the ``ngram`` windows inside it; a document's
    pieces cover each of its shingle start positions once, so its MinHash is the min over its
    pieces' minima. Distinct pieces are keyed by a 64-bit hash of their text (a collision, about
    pieces² / 2^65, would merge two pieces' minima).
    """

    shingles: np.ndarray  # uint32: every distinct piece's shingle hashes, concatenated
    shingle_offsets: np.ndarray  # (pieces + 1,) int64
    doc_pieces: np.ndarray  # int64: the piece of every piece occurrence, grouped by document
    doc_offsets: np.ndarray  # (documents + 1,) int64; an empty document has no pieces

    @property
    def piece_count(self) -> int:
        """How many distinct pieces."""
        return len(self.shingle_offsets) - 1


def _piece_windows(
    batch: TokenBatch, ngram: int, word_cuts: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, lengths, document) of every document's pieces, in document order.

    Without ``word_cuts`` a document is one piece; with them (character shingles) it is cut at its
    start and after every space: a piece is a word plus the next ``ngram − 1`` characters (the
    shingles starting in that word), so pieces recur across documents that share words. Either way
    a piece holding more than ``MAX_PIECE_SHINGLES`` shingles is cut again.
    """
    total = int(batch.starts[-1])
    docs = np.flatnonzero(batch.lengths > 0)
    doc_starts = batch.starts[docs]
    if word_cuts and batch.codepoints is not None and total:
        is_start = batch.codepoints == 32
        is_start[1:] = is_start[:-1]  # the position after a space
        is_start[0] = False
        is_doc_start = np.zeros(total, dtype=bool)
        is_doc_start[doc_starts] = True
        is_start |= is_doc_start
        starts = np.flatnonzero(is_start)
        doc = docs[np.cumsum(is_doc_start[starts]) - 1]
        doc_end = batch.starts[doc + 1]
        following = np.minimum(np.append(starts[1:], total), doc_end)
        lengths = np.minimum(doc_end, following + ngram - 1) - starts
        # A piece shorter than n holds no shingle, unless its whole document is shorter than n.
        keep = (lengths >= ngram) | ((batch.lengths[doc] < ngram) & (starts == batch.starts[doc]))
        starts, lengths, doc = starts[keep], lengths[keep], doc[keep]
    else:
        starts, lengths, doc = doc_starts, batch.lengths[docs], docs
    counts = np.maximum(lengths - ngram + 1, 1)
    cuts = -(-counts // MAX_PIECE_SHINGLES)
    if (cuts > 1).any():
        part = expand_ranges(np.zeros(len(cuts), dtype=np.int64), cuts) * MAX_PIECE_SHINGLES
        long_piece = np.repeat(cuts > 1, cuts)
        part_counts = np.minimum(MAX_PIECE_SHINGLES, np.repeat(counts, cuts) - part)
        lengths = np.where(long_piece, part_counts + ngram - 1, np.repeat(lengths, cuts))
        starts, doc = np.repeat(starts, cuts) + part, np.repeat(doc, cuts)
    return starts, lengths, doc


def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` by a sort (numpy's hash-based unique is slower on large integer arrays)."""
    ordered = np.sort(values)
    keep = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct keys, an index of each, each key's distinct index): ``np.unique`` with a quicksort."""
    order = np.argsort(keys)  # unstable is fine: any occurrence can stand for its key
    ordered = keys[order]
    new = np.ones(len(keys), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], order[new], inverse


class _Windows:
    """A batch's piece windows and their keys, grouped: ``keys[inverse]`` is each window's key."""

    def __init__(self, batch: TokenBatch, ngram: int, word_cuts: bool) -> None:
        self.starts, self.lengths, self.doc = _piece_windows(batch, ngram, word_cuts)
        keys = batch.window_keys(self.starts, self.lengths) ^ _PIECE_SALT
        self.keys, self.first, self.inverse = unique_inverse(keys)

    def pay_off(self, batch: TokenBatch, ngram: int) -> bool:
        """Whether these pieces cut the work: their distinct shingles plus half the occurrences (a
        cheaper gather each) against 80% of the documents' own shingles (judged within the batch)."""
        work = np.maximum(self.lengths[self.first] - ngram + 1, 1).sum() + 0.5 * len(self.starts)
        return bool(work <= 0.8 * np.maximum(batch.lengths[batch.lengths > 0] - ngram + 1, 1).sum())


class _PieceRegistry:
    """Distinct pieces seen so far: sorted keys with their ids, and the new pieces' shingle hashes."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=_U64)  # sorted
        self.ids = np.zeros(0, dtype=np.int64)  # aligned with ``keys``
        self.hashes: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.count = 0

    def add(self, batch: TokenBatch, windows: _Windows, ngram: int) -> np.ndarray:
        """Each piece window's id; windows of unseen pieces get new ids and their shingles hashed."""
        keys = windows.keys
        at = np.searchsorted(self.keys, keys)
        known = self.keys[np.minimum(at, len(self.keys) - 1)] == keys if len(self.keys) else at < 0
        fresh = np.flatnonzero(~known)
        ids = np.empty(len(keys), dtype=np.int64)
        ids[known] = self.ids[at[known]]
        ids[fresh] = self.count + np.arange(len(fresh))
        # Only pieces never seen before are hashed (hashing is most of the work of this stage).
        starts, lengths = windows.starts[windows.first[fresh]], windows.lengths[windows.first[fresh]]
        counts = np.maximum(lengths - ngram + 1, 1)
        shingles = expand_ranges(starts, counts)
        widths = np.repeat(np.minimum(lengths, ngram), counts)
        self.hashes.append(shingle_hash32(batch.window_hashes(shingles, widths)))
        self.counts.append(counts)
        self.keys = np.insert(self.keys, at[fresh], keys[fresh])  # keys are sorted: stays sorted
        self.ids = np.insert(self.ids, at[fresh], ids[fresh])
        self.count += len(fresh)
        return ids[windows.inverse]


def build_piece_index(
    texts: Sequence[str], ngram: int, unit: ShingleUnit, batch_size: int, share_pieces: bool | None
) -> PieceIndex:
    """The ``PieceIndex`` of already prepared ``texts``, tokenised at most ``batch_size`` texts at a time.

    Pieces are deduplicated across batches (only new ones are hashed). ``share_pieces`` None cuts at
    words when that shrinks the work (template prompts); True/False force it. The signatures are
    the same either way.
    """
    size = min(batch_size, TOKEN_BATCH)
    chunks = [texts[start : start + size] for start in range(0, len(texts), size)]
    powers = token_powers(max((sum(map(len, chunk)) for chunk in chunks), default=0))  # words ≤ chars
    registry = _PieceRegistry()
    occurrences, per_doc = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for chunk in chunks:
        batch = TokenBatch(chunk, unit, powers)
        word_cuts = share_pieces is not False and unit == "char"
        windows = _Windows(batch, ngram, word_cuts)
        if share_pieces is None and word_cuts and not windows.pay_off(batch, ngram):
            windows = _Windows(batch, ngram, False)
        occurrences.append(registry.add(batch, windows, ngram))
        per_doc.append(np.bincount(windows.doc, minlength=len(chunk)))
    hashes = np.concatenate([np.zeros(0, dtype=np.uint32), *registry.hashes])
    counts = np.concatenate([np.zeros(0, dtype=np.int64), *registry.counts])
    return PieceIndex(
        hashes, _offsets(counts), np.concatenate(occurrences), _offsets(np.concatenate(per_doc))
    )
