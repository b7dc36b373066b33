"""Vectorised MinHash: ``h_j(x) = ((a_j·x + b_j) mod (2^61 − 1)) & (2^32 − 1)`` over 32-bit shingle hashes.

This is datasketch's ``legacy`` scheme formula, value for value: ``MinHash(num_perm, hashfunc=<our
32-bit shingle hash>, permutations=hasher.permutations, scheme="legacy")`` has ``hashvalues`` equal to
our signature row, so the two implementations can be compared at one hash family.

Arithmetic: ``x`` and ``b_j`` are below 2^32 and ``a_j`` is odd and below 2^29, so
``a_j·x + b_j < 2^61 − 1``: the mod-p reduction is the identity and never needs a split multiply, and
the low 32 bits are ``(a_j·x + b_j) mod 2^32``, which uint32 arithmetic gives directly (wrapping is
the mask). Three uint32 array passes per value (multiply, add, min) instead of a 64-bit fold: this
is an affine bijection of the 32-bit hash (``a_j`` odd), the construction of datasketch's default
``affine32`` scheme (which pre-mixes its input with fmix32; ours already is the high half of a
splitmix64 finaliser). With ``a_j`` up to 2^32 the formula would only add ``y >> 61`` ∈ [0, 7] to the
same low 32 bits. ``mersenne_permute32`` is the full formula for any 32-bit ``a_j``, as a reference.

32-bit hashes collide: n distinct shingles give about n²/2^33 colliding pairs (~10³ among the 3·10⁶
distinct 24-grams of 200K prompts, each merging two shingles in every set that holds one); datasketch's
default ``sha1_hash32`` has the same width. For dedup at Jaccard ≥ 0.8 this is far below MinHash's
own sampling error (±0.025 at 260 permutations), and the exact-Jaccard check uses 64-bit hashes.

Work is shared twice (``PieceIndex``): each distinct piece (a word plus the next n − 1 characters)
has its minima computed once for the whole input, and a document's signature is the min over its
pieces' minima (exact: the min of a union is the min of the parts' mins). Both stages run in
cache-sized blocks (pieces × permutations), with no Python loop over documents, and permutation
blocks can run on a thread pool (numpy releases the GIL inside its loops).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from megastyle.curate.dedup.shingles import PieceIndex, ShingleUnit, build_piece_index, prepare_texts

MERSENNE_61 = (1 << 61) - 1
HASH_LIMIT = 1 << 32  # shingle hashes and b are below this
A_LIMIT = 1 << 29  # a·x + b < 2^61 − 1 for every 32-bit x and b: the mod-p reduction is the identity
EMPTY_SIGNATURE_VALUE = HASH_LIMIT - 1  # an empty document's signature (datasketch's initial value)

_U64 = np.uint64
_U32 = np.uint32
_P = _U64(MERSENNE_61)
_LOW32 = _U64(0xFFFFFFFF)
_LOW29 = _U64((1 << 29) - 1)
_BLOCK_VALUES = 1 << 15  # values per array pass of ``mersenne_permute``: temporaries stay in L2
_PIECE_BLOCK = 2048  # pieces per block: 33 permutations × 2048 × 2 uint32 buffers stay in L2
_DOC_BLOCK = 2048  # documents per block of the gather stage
_UFUNC_BUFFER = 1024  # numpy ufunc buffer (elements) inside the kernel; see ``_Plan.run``
_TABLE_BYTES = 1 << 28  # cap on one piece-minima table (pieces × permutation block × 4 bytes)
# Permutations per block. Wider blocks gather fewer, longer table rows in the document stage, but
# the table (pieces × width) is fresh memory whose page faults cost as much (measured: 26–65 within
# noise of each other, 33 a little ahead; 8 blocks of 260 also split evenly over 2 threads).
_MAX_WIDTH = 33


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
    """``(a_j · (x mod p) + b_j) mod p`` for any 64-bit ``x`` and ``a_j, b_j < p`` → ``(len(hashes), len(a))`` uint64.

    The general 61-bit form (split multiply: ``a·x`` needs 122 bits); MinHash uses the 32-bit form.
    """
    x = _reduce61(np.asarray(hashes, dtype=_U64))
    a = np.asarray(a, dtype=_U64)
    b = np.asarray(b, dtype=_U64)
    a0, a1 = a & _LOW32, a >> _U64(32)
    if out is None:
        out = np.empty((len(x), len(a)), dtype=_U64)
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
        r += mid  # + mid·2^32 mod p (2^61 ≡ 1)
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


def mersenne_permute32(hashes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``((a_j·x + b_j) mod p) & (2^32 − 1)`` for 32-bit ``x``, ``a_j``, ``b_j`` → ``(len(hashes), len(a))`` uint32."""
    x, a, b = (_checked32(v, name) for v, name in ((hashes, "hashes"), (a, "a"), (b, "b")))
    y = x[:, None] * a + b  # < 2^64: exact
    r = (y & _P) + (y >> _U64(61))
    r = np.minimum(r, r - _P)
    return (r & _LOW32).astype(_U32)


def _checked32(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=_U64)
    if values.size and int(values.max()) >= HASH_LIMIT:
        raise ValueError(f"{name} must be below 2^32 for the 32-bit MinHash formula")
    return values


def draw_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(a, b)`` as uint64 arrays: ``a`` odd in [1, 2^29), ``b`` in [0, 2^32)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, A_LIMIT // 2, size=num_perm, dtype=_U64) * _U64(2) + _U64(1)
    b = rng.integers(0, HASH_LIMIT, size=num_perm, dtype=_U64)
    return a, b


def _checked_permutations(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` as uint32, after checking the bounds that make the uint32 path exact."""
    a, b = np.asarray(a, dtype=_U64), np.asarray(b, dtype=_U64)
    if len(a) != len(b) or (a.size and (int(a.max()) >= A_LIMIT or int(b.max()) >= HASH_LIMIT)):
        raise ValueError("permutations need equal-length a < 2^29 and b < 2^32 for the uint32 MinHash path")
    return a.astype(_U32), b.astype(_U32)


class MinHasher:
    """MinHash signatures of texts: ``num_perm`` seeded permutations over n-gram shingles (uint32)."""

    def __init__(
        self,
        num_perm: int = 260,
        ngram: int = 24,
        unit: ShingleUnit = "char",
        seed: int = 0,
        normalize: bool = True,
        batch_size: int = 32768,
        share_pieces: bool | None = None,
        threads: int = 1,
    ) -> None:
        if num_perm < 1 or ngram < 1 or batch_size < 1 or threads < 1:
            raise ValueError(
                "num_perm, ngram, batch_size and threads must be ≥ 1 "
                f"(got {num_perm}, {ngram}, {batch_size}, {threads})"
            )
        if unit not in ("char", "word"):
            raise ValueError(f"unknown shingle unit {unit!r}: use 'char' or 'word'")
        self.num_perm, self.ngram, self.unit = num_perm, ngram, unit
        self.seed, self.normalize, self.batch_size = seed, normalize, batch_size
        # None: word pieces when they save work; True/False force it (same signatures either way).
        self.share_pieces = share_pieces
        self.threads = threads
        self.a, self.b = draw_permutations(num_perm, seed)

    @property
    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        """``(a, b)`` as datasketch's ``MinHash(permutations=..., scheme="legacy")`` takes them."""
        return self.a, self.b

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), num_perm)`` uint32 signatures; an empty text gets ``EMPTY_SIGNATURE_VALUE``."""
        a, b = _checked_permutations(self.a, self.b)
        prepared = prepare_texts(texts, self.normalize)
        index = build_piece_index(prepared, self.ngram, self.unit, self.batch_size, self.share_pieces)
        out = np.empty((len(prepared), self.num_perm), dtype=_U32)  # every row is written once
        out[np.diff(index.doc_offsets) == 0] = EMPTY_SIGNATURE_VALUE
        if index.piece_count == 0:
            return out
        plan = _Plan(index)
        width = _block_width(self.num_perm, index.piece_count, self.threads)
        blocks = [slice(start, min(start + width, self.num_perm)) for start in range(0, self.num_perm, width)]

        def work(worker: int) -> None:
            buffer = np.empty(index.piece_count * width, dtype=_U32)
            for cols in blocks[worker :: self.threads]:
                plan.run(a[cols], b[cols], out, cols, buffer)

        if self.threads == 1:
            work(0)
        else:
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(work, range(self.threads)))
        return out


def _block_width(num_perm: int, pieces: int, threads: int) -> int:
    """Permutations per block: ≤ ``_MAX_WIDTH``, table ≤ ``_TABLE_BYTES``, a multiple of ``threads`` blocks."""
    width = max(4, min(_MAX_WIDTH, _TABLE_BYTES // (4 * pieces)))
    count = -(-num_perm // width)
    count = -(-count // threads) * threads
    return max(1, -(-num_perm // count))


class _Plan:
    """The MinHash work of one ``PieceIndex``, laid out once and shared by every permutation block.

    Pieces are sorted by shingle count, longest first, and taken in blocks; within a block row
    ``t`` holds every member's ``t``-th shingle and only the first ``active[t]`` members still have
    one, so each step is one array operation over a prefix. The piece-minima table keeps that
    order (contiguous writes). Documents are taken in input order, ``_DOC_BLOCK`` at a time, each
    block sorted the same way by piece count and put back in order when written.
    """

    def __init__(self, index: PieceIndex) -> None:
        counts = np.diff(index.shingle_offsets)
        order = np.argsort(-counts, kind="stable")
        self.piece_blocks = _step_blocks(
            counts[order], index.shingle_offsets[order], index.shingles, _PIECE_BLOCK
        )
        piece_row = np.empty(len(order), dtype=np.int64)
        piece_row[order] = np.arange(len(order))
        doc_rows = piece_row[index.doc_pieces]
        doc_counts = np.diff(index.doc_offsets)
        self.doc_blocks = []  # (first document, step blocks of its documents, their order back)
        for first in range(0, len(doc_counts), _DOC_BLOCK):
            counts = doc_counts[first : first + _DOC_BLOCK]
            local = np.argsort(-counts, kind="stable")
            local = local[counts[local] > 0]  # empty documents keep the EMPTY value
            steps = _step_blocks(counts[local], index.doc_offsets[first + local], doc_rows, len(local))
            self.doc_blocks.append((first, steps, first + local))
        self.pieces = len(order)

    def run(self, a: np.ndarray, b: np.ndarray, out: np.ndarray, cols: slice, buffer: np.ndarray) -> None:
        """Fill ``out[:, cols]`` for permutations ``(a, b)``: pieces' minima, then documents'.

        ``buffer`` holds the piece-minima table (≥ pieces × len(a) values), reused across calls:
        a fresh array this large would pay its page faults again every time.
        """
        with np.errstate():  # scopes the buffer size to this call
            # numpy takes a buffered path for 2-D operands whose rows are ≤ bufsize / 4 elements
            # (measured ~3× slower at the default 8192 with 2048-piece rows); a small buffer avoids it.
            np.setbufsize(_UFUNC_BUFFER)
            table = buffer[: self.pieces * len(a)].reshape(self.pieces, len(a))
            self._piece_minima(a[:, None], b[:, None], table)
            self._document_minima(table, out, cols)

    def _piece_minima(self, a_col: np.ndarray, b_col: np.ndarray, table: np.ndarray) -> None:
        acc = np.empty((len(a_col), _PIECE_BLOCK), dtype=_U32)
        values = np.empty_like(acc)
        for row, steps, active in self.piece_blocks:
            k = active[0]
            np.multiply(a_col, steps[0, :k], out=acc[:, :k])  # uint32 wraps: (a·x + b) mod 2^32
            acc[:, :k] += b_col
            for t in range(1, len(active)):
                k = active[t]
                np.multiply(a_col, steps[t, :k], out=values[:, :k])
                values[:, :k] += b_col
                np.minimum(acc[:, :k], values[:, :k], out=acc[:, :k])
            table[row : row + active[0]] = acc[:, : active[0]].T

    def _document_minima(self, table: np.ndarray, out: np.ndarray, cols: slice) -> None:
        acc = np.empty((_DOC_BLOCK, table.shape[1]), dtype=_U32)
        gathered = np.empty_like(acc)
        for _, blocks, docs in self.doc_blocks:
            for _, steps, active in blocks:  # one block: ``_step_blocks`` was given the whole chunk
                # mode="clip": the rows are valid by construction, and "raise" buffers the output.
                np.take(table, steps[0, : active[0]], axis=0, out=acc[: active[0]], mode="clip")
                for t in range(1, len(active)):
                    k = active[t]
                    np.take(table, steps[t, :k], axis=0, out=gathered[:k], mode="clip")
                    np.minimum(acc[:k], gathered[:k], out=acc[:k])
                out[docs, cols] = acc[: len(docs)]


def _step_blocks(
    counts: np.ndarray, starts: np.ndarray, values: np.ndarray, members: int
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(first row, ``(steps, k)`` values, active per step) for members sorted by ``counts`` (≥ 1), descending."""
    blocks = []
    for row in range(0, len(counts), max(1, members)):
        sizes = counts[row : row + members]
        step = np.arange(int(sizes[0]))[:, None]
        steps = values[starts[row : row + members][None, :] + np.minimum(step, sizes[None, :] - 1)]
        active = (sizes[None, :] > step).sum(axis=1)  # sizes are sorted, so members [0, active) remain
        blocks.append((row, steps, active))
    return blocks
