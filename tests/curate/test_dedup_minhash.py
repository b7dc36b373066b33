"""MinHash: stable shingle hashes, the exact 32-bit formula, signatures equal to the definition and to datasketch."""

import os
import random
import subprocess
import sys

import numpy as np
import pytest
from datasketch import MinHash

from megastyle.curate.dedup import MERSENNE_61, MinHasher, mersenne_permute, shingle_hashes, shingle_strings
from megastyle.curate.dedup.exact import normalize_text
from megastyle.curate.dedup.minhash import (
    A_LIMIT,
    EMPTY_SIGNATURE_VALUE,
    draw_permutations,
    mersenne_permute32,
)
from megastyle.curate.dedup.shingles import (
    MAX_PIECE_SHINGLES,
    POLY_BASE,
    jaccard,
    prepare_texts,
    shingle_hash32,
    shingle_sets,
)
from megastyle.prompts import sample_content_prompts, sample_style_prompts, stable_hash

MASK = (1 << 64) - 1
LOW32 = (1 << 32) - 1


def _mix(z: int) -> int:
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & MASK
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _reference_hash(shingle: str, unit: str) -> int:
    """The documented 64-bit shingle hash, written with Python integers one token at a time."""
    if unit == "char":
        tokens = [_mix((ord(c) + 0x632BE59BD9B4E019) & MASK) for c in shingle]
    else:
        tokens = [stable_hash(w) for w in shingle.split()]
    value = 0
    for token in tokens:
        value = (value * POLY_BASE + token) & MASK
    return _mix(value)


def _reference_hash32(shingle: str, unit: str = "char") -> int:
    """The 32-bit hash MinHash permutes: the high half of the 64-bit one."""
    return _reference_hash(shingle, unit) >> 32


def _reference_signature(text: str, hasher: MinHasher) -> list[int]:
    """``min over shingles of ((a·x + b) mod (2^61 − 1)) & (2^32 − 1)``, in Python integers."""
    hashes = {_reference_hash32(s, hasher.unit) for s in shingle_strings(text, hasher.ngram, hasher.unit)}
    return [
        min(((int(a) * h + int(b)) % MERSENNE_61) & LOW32 for h in hashes)
        for a, b in zip(hasher.a, hasher.b, strict=True)
    ]


TEXTS = [
    "In the style of baroque, lemon with scarlet accents, candlelit lighting, in ink wash.",
    "Two wooden books beside a heart",
    "tiny",
    "  Tabs\tand  SPACES, é and 漢字 and emoji 🎨 ",
    "x y",
    "a" * 30 + " " + "b" * (3 * MAX_PIECE_SHINGLES) + " end",  # a word long enough to be cut up
]


@pytest.mark.parametrize(("ngram", "unit"), [(24, "char"), (5, "char"), (2, "word")])
def test_shingle_hashes_match_the_reference_formula(ngram, unit):
    hashes, offsets = shingle_hashes(TEXTS, ngram, unit)
    for i, text in enumerate(TEXTS):
        expected = [_reference_hash(s, unit) for s in shingle_strings(text, ngram, unit)]
        assert hashes[offsets[i] : offsets[i + 1]].tolist() == expected
    assert shingle_hash32(hashes).tolist() == [h >> 32 for h in hashes.tolist()]


def test_prepared_texts_equal_normalize_text():
    rng = random.Random(5)
    alphabet = [chr(c) for c in range(128)] + ["é", "ﬁ", "Ⅻ", "\u3000", "«", "»"]
    texts = ["", " ", "...", "$5 + 3 = 8 ~ ok |", "  Hello,  World!!  ", "\x1ctabs\tand\nlines\x1f"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    assert prepare_texts(texts, normalize=True) == [normalize_text(t) for t in texts]
    assert prepare_texts(texts, normalize=False) == texts


def test_shingle_hash_is_stable_across_processes():
    code = "from megastyle.curate.dedup import shingle_hashes; print(shingle_hashes(['a stable hash'], 5)[0].tolist())"
    # Another process with another str-hash salt must produce the same values.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert run.stdout.strip() == str(shingle_hashes(["a stable hash"], 5)[0].tolist())


def test_mersenne_permute_is_exact_at_the_extremes():
    rng = np.random.default_rng(0)
    hashes = np.array(
        [
            0,
            1,
            MERSENNE_61 - 1,
            MERSENNE_61,
            MERSENNE_61 + 5,
            MASK,
            *rng.integers(0, MASK, 50, dtype=np.uint64),
        ],
        dtype=np.uint64,
    )
    a = np.array([1, MERSENNE_61 - 1, *rng.integers(1, MERSENNE_61, 30, dtype=np.uint64)], dtype=np.uint64)
    b = np.array([0, MERSENNE_61 - 1, *rng.integers(0, MERSENNE_61, 30, dtype=np.uint64)], dtype=np.uint64)
    got = mersenne_permute(hashes, a, b, block_rows=7)  # odd block size exercises the partial block
    expected = [
        [(int(ai) * (int(x) % MERSENNE_61) + int(bi)) % MERSENNE_61 for ai, bi in zip(a, b, strict=True)]
        for x in hashes
    ]
    assert got.tolist() == expected


def test_32_bit_formula_is_exact_including_the_fold():
    rng = np.random.default_rng(1)
    top = LOW32
    # x = 2^31 − 1 with a = 2^31, b = 2^31 − 1 gives y = 2^62 − 1, where (y & p) + (y >> 61) = p + 1
    # (the conditional subtraction); x = 2^30 − 1 gives y = p exactly (residue 0).
    x = np.array(
        [0, 1, top, top - 1, (1 << 31) - 1, (1 << 30) - 1, *rng.integers(0, 1 << 32, 60, dtype=np.uint64)],
        dtype=np.uint64,
    )
    # Full-range a and b (where y >> 61 is non-zero and the fold matters) and the drawn ones.
    a = np.array([1, top, 1 << 31, *rng.integers(1, 1 << 32, 20, dtype=np.uint64)], dtype=np.uint64)
    b = np.array([0, top, (1 << 31) - 1, *rng.integers(0, 1 << 32, 20, dtype=np.uint64)], dtype=np.uint64)
    drawn_a, drawn_b = draw_permutations(16, seed=3)
    for aa, bb in ((a, b), (drawn_a, drawn_b)):
        got = mersenne_permute32(x, aa, bb)
        assert got.dtype == np.uint32
        expected = [
            [((int(ai) * int(xi) + int(bi)) % MERSENNE_61) & LOW32 for ai, bi in zip(aa, bb, strict=True)]
            for xi in x
        ]
        assert got.tolist() == expected


def test_drawn_permutations_keep_the_reduction_an_identity():
    a, b = draw_permutations(500, seed=0)
    assert (a % 2 == 1).all() and int(a.max()) < A_LIMIT and int(b.max()) <= LOW32
    # The largest a·x + b stays below p, so the uint32 wrap (a·x + b mod 2^32) is the formula's value.
    assert int(a.max()) * LOW32 + int(b.max()) < MERSENNE_61
    x = np.random.default_rng(2).integers(0, 1 << 32, 200, dtype=np.uint64)
    wrapped = (x.astype(np.uint32)[:, None] * a.astype(np.uint32) + b.astype(np.uint32)).astype(np.uint32)
    assert np.array_equal(wrapped, mersenne_permute32(x, a, b))
    hasher = MinHasher(num_perm=4)
    hasher.a = np.array([1, 3, 5, A_LIMIT + 1], dtype=np.uint64)
    with pytest.raises(ValueError, match="a < 2\\^29"):
        hasher.signatures(["some text"])


@pytest.mark.parametrize(
    ("ngram", "unit", "share_pieces"),
    [(24, "char", None), (24, "char", False), (4, "char", True), (3, "word", None)],
)
def test_signatures_equal_the_plain_definition(ngram, unit, share_pieces):
    hasher = MinHasher(num_perm=24, ngram=ngram, unit=unit, seed=5, batch_size=2, share_pieces=share_pieces)
    signatures = hasher.signatures([*TEXTS, "", *TEXTS[:2]])  # several batches, repeated texts
    assert signatures.dtype == np.uint32
    for i, text in enumerate([*TEXTS, "", *TEXTS[:2]]):
        if text:
            assert signatures[i].tolist() == _reference_signature(text, hasher), i
    assert (signatures[len(TEXTS)] == EMPTY_SIGNATURE_VALUE).all()


def test_signatures_equal_datasketch_at_the_same_permutations():
    # datasketch's legacy scheme computes ((a·hv + b) % (2^61 − 1)) & (2^32 − 1) with its hashfunc;
    # given our shingle hash and our (a, b), its hashvalues must be our signature, value for value.
    hasher = MinHasher(num_perm=64, ngram=24, seed=11)
    texts = [t for t in TEXTS if t.strip()]
    signatures = hasher.signatures(texts)
    for text, signature in zip(texts, signatures, strict=True):
        m = MinHash(
            num_perm=64, hashfunc=_reference_hash32, permutations=hasher.permutations, scheme="legacy"
        )
        m.update_batch(shingle_strings(text, 24))
        assert m.hashvalues.tolist() == signature.tolist()
    empty = MinHash(num_perm=64, permutations=hasher.permutations, scheme="legacy")
    assert (empty.hashvalues == hasher.signatures([""])[0]).all()


def test_shared_pieces_threads_and_batches_give_the_same_signatures():
    texts = sample_style_prompts(60, seed=1) + sample_content_prompts(60, seed=2) + ["a b", "abc", ""]
    for ngram in (3, 5, 24):
        plain = MinHasher(ngram=ngram, share_pieces=False).signatures(texts)
        for options in ({"share_pieces": True}, {"share_pieces": True, "batch_size": 7}, {"threads": 2}):
            assert np.array_equal(MinHasher(ngram=ngram, **options).signatures(texts), plain), options


def test_signatures_are_seeded_and_estimate_jaccard():
    rng = random.Random(0)
    base = sample_style_prompts(30, seed=9)
    edited = []
    for text in base:
        words = text.split()
        for _ in range(rng.randint(0, 6)):
            words[rng.randrange(len(words))] = rng.choice(["blue", "soft", "ink", "grainy"])
        edited.append(" ".join(words))
    hasher = MinHasher(num_perm=256, ngram=5, seed=11)
    again = MinHasher(num_perm=256, ngram=5, seed=11).signatures(base)
    sig_base, sig_edit = hasher.signatures(base), hasher.signatures(edited)
    assert np.array_equal(sig_base, again)
    assert not np.array_equal(sig_base, MinHasher(num_perm=256, ngram=5, seed=12).signatures(base))
    sets_base, sets_edit = shingle_sets(base, 5), shingle_sets(edited, 5)
    exact = np.array([jaccard(x, y) for x, y in zip(sets_base, sets_edit, strict=True)])
    estimate = (sig_base == sig_edit).mean(axis=1)
    assert exact.min() < 0.8  # the edits spread the Jaccards out
    assert np.abs(estimate - exact).mean() < 0.04  # binomial std at 256 permutations is ≤ 0.031


def test_minhasher_rejects_bad_settings():
    with pytest.raises(ValueError, match="unknown shingle unit"):
        MinHasher(unit="byte")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be ≥ 1"):
        MinHasher(ngram=0)
    with pytest.raises(ValueError, match="must be ≥ 1"):
        MinHasher(threads=0)
    with pytest.raises(TypeError, match="text 1 is a NoneType"):
        MinHasher().signatures(["ok", None])  # type: ignore[list-item]
