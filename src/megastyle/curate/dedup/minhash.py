"""Vectorised MinHash: ``h_j(x) = (a_j·x + b_j) mod (2^61 − 1)`` over stable shingle hashes, min per document.

Overflow: ``a_j`` and ``x`` are both below 2^61, so ``a_j·x`` needs 122 bits. We use the standard
split multiply: ``x = x1·2^32 + x0`` and ``a = a1·2^32 + a0`` (``x1, a1 < 2^29``), so

    a·x = a1·x1·2^64 + (a1·x0 + a0·x1)·2^32 + a0·x0,

where every partial product fits in uint64 (``a0·x0 < 2^64``, the middle sum < 2^62), and with
``2^61 ≡ 1 (mod p)``: ``2^64 ≡ 8`` and ``m·2^32 ≡ (m >> 29) + (m & (2^29 − 1))·2^32``. A final fold
and conditional subtraction give the exact residue, the same value as Python's big integers.

Work is shared twice per batch: the permutation table is computed once per *distinct* shingle
(prompts written from one template share most shingles), and, for character shingles, documents
are cut into word-start pieces (a word plus the next ``n − 1`` characters: the shingles starting in
that word) whose minima are computed once per distinct piece and then combined (the min of a union
is the min of the parts' mins). Both are exact: the signature is identical to the plain definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from megastyle.curate.dedup.shingles import ShingleUnit, TokenBatch, prepare_texts

MERSENNE_61 = (1 << 61) - 1
EMPTY_SIGNATURE_VALUE = np.iinfo(np.uint64).max  # an empty document's signature (above every residue)

_U64 = np.uint64
_P = _U64(MERSENNE_61)
_LOW32 = _U64(0xFFFFFFFF)
_LOW29 = _U64((1 << 29) - 1)
_PIECE_SALT = _U64(0x5DEECE66D)
_BLOCK_VALUES = 1 << 15  # permutation values computed per block
_TABLE_BYTES = 1 << 28  # cap on one permutation table chunk (distinct shingles × columns × 8 bytes)


def _reduce61(x: np.ndarray) -> np.ndarray:
    """``x mod (2^61 − 1)`` for any uint64 ``x``."""
    x = (x & _P) + (x >> _U64(61))
    return np.minimum(x, x - _P)  # x − p wraps to a huge value when x < p, so min picks the residue


def mersenne_permute(
    hashes: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    block_rows: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``(a_j · (x mod p) + b_j) mod p`` for every hash ``x`` and every j → ``(len(hashes), len(a))`` uint64."""
    x = _reduce61(np.asarray(hashes, dtype=_U64))
    a = np.asarray(a, dtype=_U64)
    b = np.asarray(b, dtype=_U64)
    a0, a1 = a & _LOW32, a >> _U64(32)
    if out is None:
        out = np.empty((len(x), len(a)), dtype=_U64)
    # Blocks of ~32K values keep the temporaries in cache while amortising numpy's per-call cost.
    block_rows = block_rows or max(16, _BLOCK_VALUES // max(1, len(a)))
    t1 = np.empty((block_rows, len(a)), dtype=_U64)
    t2 = np.empty_like(t1)
    for start in range(0, len(x), block_rows):
        stop = min(len(x), start + block_rows)
        rows = stop - start
        x0 = (x[start:stop] & _LOW32)[:, None]
        x1 = (x[start:stop] >> _U64(32))[:, None]
        r, mid, tmp = out[start:stop], t1[:rows], t2[:rows]
        np.multiply(x0, a0, out=r)  # a0·x0 < 2^64
        np.multiply(x0, a1, out=mid)
        np.multiply(x1, a0, out=tmp)
        mid += tmp  # a1·x0 + a0·x1 < 2^62
        np.right_shift(r, _U64(61), out=tmp)
        r &= _P
        r += tmp  # a0·x0 folded below 2^61 + 8
        np.right_shift(mid, _U64(29), out=tmp)
        r += tmp
        mid &= _LOW29
        mid <<= _U64(32)
        r += mid  # + mid·2^32 mod p
        np.multiply(x1, a1, out=tmp)
        tmp <<= _U64(3)
        r += tmp  # + a1·x1·2^64 ≡ a1·x1·8
        r += b  # total stays below 2^63 + 2^61: no wrap
        np.right_shift(r, _U64(61), out=tmp)
        r &= _P
        r += tmp
        np.subtract(r, _P, out=tmp)
        np.minimum(r, tmp, out=r)
    return out


def segment_min(
    table: np.ndarray, rows: np.ndarray, offsets: np.ndarray, block: int = 4096, out: np.ndarray | None = None
) -> np.ndarray:
    """Row ``k`` = column-wise min of ``table[rows[offsets[k]:offsets[k+1]]]``; every segment non-empty."""
    segments = len(offsets) - 1
    if out is None:
        out = np.empty((segments, table.shape[1]), dtype=table.dtype)
    # One gather buffer for the whole call: fresh large arrays cost page faults on every block.
    longest = int(np.diff(offsets).max(initial=1))
    gathered = np.empty((max(block, longest), table.shape[1]), dtype=table.dtype)
    k = 0
    while k < segments:
        # A block of whole segments holding about ``block`` gathered rows, so the gather stays in cache.
        stop = int(np.searchsorted(offsets, offsets[k] + block, side="right")) - 1
        stop = min(max(stop, k + 1), segments)
        first, last = offsets[k], offsets[stop]
        np.take(table, rows[first:last], axis=0, out=gathered[: last - first])
        np.minimum.reduceat(gathered[: last - first], offsets[k:stop] - first, axis=0, out=out[k:stop])
        k = stop
    return out


class MinHasher:
    """MinHash signatures of texts: ``num_perm`` seeded mod-Mersenne permutations over n-gram shingles."""

    def __init__(
        self,
        num_perm: int = 260,
        ngram: int = 24,
        unit: ShingleUnit = "char",
        seed: int = 0,
        normalize: bool = True,
        batch_size: int = 32768,
        share_pieces: bool | None = None,
    ) -> None:
        if num_perm < 1 or ngram < 1 or batch_size < 1:
            raise ValueError(
                f"num_perm, ngram and batch_size must be ≥ 1 (got {num_perm}, {ngram}, {batch_size})"
            )
        if unit not in ("char", "word"):
            raise ValueError(f"unknown shingle unit {unit!r}: use 'char' or 'word'")
        self.num_perm, self.ngram, self.unit = num_perm, ngram, unit
        self.seed, self.normalize, self.batch_size = seed, normalize, batch_size
        # None: use word-start pieces when they save work; True/False force it (same result either way).
        self.share_pieces = share_pieces
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, MERSENNE_61, size=num_perm, dtype=_U64)
        self.b = rng.integers(0, MERSENNE_61, size=num_perm, dtype=_U64)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), num_perm)`` uint64 signatures; an empty text gets ``EMPTY_SIGNATURE_VALUE``."""
        prepared = prepare_texts(texts, self.normalize)
        out = np.empty((len(prepared), self.num_perm), dtype=_U64)
        for start in range(0, len(prepared), self.batch_size):
            chunk = prepared[start : start + self.batch_size]
            out[start : start + len(chunk)] = self._batch_signatures(chunk)
        return out

    def _batch_signatures(self, texts: list[str]) -> np.ndarray:
        batch = TokenBatch(texts, self.unit)
        sig = np.full((len(texts), self.num_perm), EMPTY_SIGNATURE_VALUE, dtype=_U64)
        starts, lengths, doc_offsets = batch.shingle_windows(self.ngram)
        nonempty = np.flatnonzero(batch.lengths > 0)
        if len(nonempty) == 0:
            return sig
        pieces = (
            _Pieces.build(batch, self.ngram)
            if self.unit == "char" and self.share_pieces is not False
            else None
        )
        if pieces is not None and (self.share_pieces or pieces.work < 0.6 * len(starts)):
            shingles, shingle_offsets = pieces.shingles, pieces.shingle_offsets
        else:
            pieces = None
            shingles, shingle_offsets = batch.window_hashes(starts, lengths), doc_offsets
        distinct, shingle_rows = np.unique(shingles, return_inverse=True)
        doc_bounds = np.append(doc_offsets[nonempty], doc_offsets[-1])
        step = max(1, min(self.num_perm, _TABLE_BYTES // (8 * len(distinct))))
        # Buffers reused across column chunks (the table can be hundreds of MB).
        table_buffer = np.empty(len(distinct) * step, dtype=_U64)
        piece_buffer = np.empty((len(shingle_offsets) - 1) * step, dtype=_U64) if pieces else None
        for col in range(0, self.num_perm, step):
            cols = slice(col, col + step)
            width = len(self.a[cols])
            table = table_buffer[: len(distinct) * width].reshape(len(distinct), width)
            mersenne_permute(distinct, self.a[cols], self.b[cols], out=table)
            if pieces is None:
                sig[nonempty, cols] = segment_min(table, shingle_rows, doc_bounds)
            else:
                assert piece_buffer is not None
                piece_sig = piece_buffer[: (len(shingle_offsets) - 1) * width].reshape(-1, width)
                segment_min(table, shingle_rows, shingle_offsets, out=piece_sig)
                sig[nonempty, cols] = segment_min(piece_sig, pieces.rows, pieces.doc_bounds)
        return sig


class _Pieces:
    """Documents cut at word starts; each distinct piece's shingles listed once."""

    def __init__(
        self, rows: np.ndarray, doc_bounds: np.ndarray, shingles: np.ndarray, shingle_offsets: np.ndarray
    ) -> None:
        self.rows = rows  # per piece occurrence (grouped by document): its distinct-piece row
        self.doc_bounds = doc_bounds  # segment bounds of ``rows`` per non-empty document
        self.shingles = shingles  # shingle hashes of the distinct pieces, concatenated
        self.shingle_offsets = shingle_offsets
        self.work = len(shingles) + len(rows)

    @classmethod
    def build(cls, batch: TokenBatch, ngram: int) -> _Pieces | None:
        """Pieces of a character batch: cut points at document starts and after every space.

        Any cut points give an exact partition of a document's shingle start positions; cutting
        after spaces makes pieces recur across documents that share words.
        """
        codepoints, total = batch.codepoints, int(batch.starts[-1])
        if codepoints is None or total == 0:
            return None
        doc_starts = batch.starts[:-1][batch.lengths > 0]
        is_start = np.zeros(total, dtype=bool)
        is_start[doc_starts] = True
        spaces = np.flatnonzero(codepoints == 32)
        is_start[spaces[spaces + 1 < total] + 1] = True
        starts = np.flatnonzero(is_start)
        doc = np.searchsorted(batch.starts, starts, side="right") - 1
        doc_end = batch.starts[doc + 1]
        following = np.append(starts[1:], total)
        ends = np.minimum(doc_end, np.minimum(following, doc_end) + ngram - 1)
        lengths = ends - starts
        # A piece shorter than n holds no shingle, unless its whole document is shorter than n.
        short_doc = batch.lengths[doc] < ngram
        keep = (lengths >= ngram) | (short_doc & (starts == batch.starts[doc]))
        starts, lengths, doc = starts[keep], lengths[keep], doc[keep]
        piece_hash = batch.window_hashes(starts, lengths) ^ _PIECE_SALT
        _, first, rows = np.unique(piece_hash, return_index=True, return_inverse=True)
        rep_start, rep_len = starts[first], lengths[first]
        counts = np.maximum(rep_len - ngram + 1, 1)
        offsets = np.zeros(len(first) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        owner = np.repeat(np.arange(len(first)), counts)
        window_starts = rep_start[owner] + (np.arange(offsets[-1]) - offsets[owner])
        shingles = batch.window_hashes(window_starts, np.minimum(rep_len, ngram)[owner])
        per_doc = np.bincount(doc, minlength=len(batch.lengths))
        bounds = np.zeros(len(per_doc) + 1, dtype=np.int64)
        np.cumsum(per_doc, out=bounds[1:])
        nonempty = batch.lengths > 0
        doc_bounds = np.append(bounds[:-1][nonempty], bounds[-1])
        return cls(rows.astype(np.int64), doc_bounds, shingles, offsets)
