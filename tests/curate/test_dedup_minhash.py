"""MinHash: stable shingle hashes, exact mod-Mersenne permutations, signatures equal to the definition."""

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from megastyle.curate.dedup import MERSENNE_61, MinHasher, mersenne_permute, shingle_hashes, shingle_strings
from megastyle.curate.dedup.minhash import EMPTY_SIGNATURE_VALUE
from megastyle.curate.dedup.shingles import POLY_BASE, jaccard, shingle_sets
from megastyle.prompts import sample_content_prompts, sample_style_prompts, stable_hash

MASK = (1 << 64) - 1


def _mix(z: int) -> int:
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & MASK
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _reference_hash(shingle: str, unit: str) -> int:
    """The documented shingle hash, written with Python integers one token at a time."""
    if unit == "char":
        tokens = [_mix((ord(c) + 0x632BE59BD9B4E019) & MASK) for c in shingle]
    else:
        tokens = [stable_hash(w) for w in shingle.split()]
    value = 0
    for token in tokens:
        value = (value * POLY_BASE + token) & MASK
    return _mix(value)


def _reference_signature(text: str, hasher: MinHasher) -> list[int]:
    hashes = {_reference_hash(s, hasher.unit) for s in shingle_strings(text, hasher.ngram, hasher.unit)}
    return [
        min((int(a) * (h % MERSENNE_61) + int(b)) % MERSENNE_61 for h in hashes)
        for a, b in zip(hasher.a, hasher.b, strict=True)
    ]


TEXTS = [
    "In the style of baroque, lemon with scarlet accents, candlelit lighting, in ink wash.",
    "Two wooden books beside a heart",
    "tiny",
    "  Tabs\tand  SPACES, é and 漢字 and emoji 🎨 ",
    "x y",
]


@pytest.mark.parametrize(("ngram", "unit"), [(24, "char"), (5, "char"), (2, "word")])
def test_shingle_hashes_match_the_reference_formula(ngram, unit):
    hashes, offsets = shingle_hashes(TEXTS, ngram, unit)
    for i, text in enumerate(TEXTS):
        expected = [_reference_hash(s, unit) for s in shingle_strings(text, ngram, unit)]
        assert hashes[offsets[i] : offsets[i + 1]].tolist() == expected


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


@pytest.mark.parametrize(("ngram", "unit"), [(24, "char"), (4, "char"), (3, "word")])
def test_signatures_equal_the_plain_definition(ngram, unit):
    hasher = MinHasher(num_perm=24, ngram=ngram, unit=unit, seed=5, batch_size=2)  # several batches
    signatures = hasher.signatures([*TEXTS, ""])
    for i, text in enumerate(TEXTS):
        assert signatures[i].tolist() == _reference_signature(text, hasher)
    assert (signatures[-1] == EMPTY_SIGNATURE_VALUE).all()


def test_shared_pieces_give_the_same_signatures_as_plain_hashing():
    texts = sample_style_prompts(60, seed=1) + sample_content_prompts(60, seed=2) + ["a b", "abc", ""]
    for ngram in (3, 5, 24):
        shared = MinHasher(ngram=ngram, share_pieces=True).signatures(texts)
        plain = MinHasher(ngram=ngram, share_pieces=False).signatures(texts)
        assert np.array_equal(shared, plain)


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
    with pytest.raises(TypeError, match="text 1 is a NoneType"):
        MinHasher().signatures(["ok", None])  # type: ignore[list-item]
