"""The MinHash formulas' edges: the 61-bit form in ragged blocks, at its default block size and on plain Python
ints, and the 32-bit form's bounds named by argument."""

from __future__ import annotations

import numpy as np
import pytest

from megastyle.curate.dedup.minhash import MERSENNE_61, mersenne_permute, mersenne_permute32


def _by_hand(hashes, a, b) -> list[list[int]]:
    return [
        [(int(ai) * (int(x) % MERSENNE_61) + int(bi)) % MERSENNE_61 for ai, bi in zip(a, b, strict=True)]
        for x in hashes
    ]


def test_ragged_blocks_and_the_default_block_size_give_the_exact_values() -> None:
    rng = np.random.default_rng(4)
    hashes = rng.integers(0, np.iinfo(np.uint64).max, 37, dtype=np.uint64, endpoint=True)
    a = rng.integers(1, MERSENNE_61, 2048, dtype=np.uint64)
    b = rng.integers(0, MERSENNE_61, 2048, dtype=np.uint64)
    expected = _by_hand(hashes, a, b)
    assert mersenne_permute(hashes, a, b, block_rows=16).tolist() == expected  # blocks of 16, 16 and 5 rows
    # 2048 permutations make the default block 16 rows too: three blocks, the last one short.
    assert mersenne_permute(hashes, a, b).tolist() == expected


def test_plain_python_ints_are_taken_as_uint64() -> None:
    hashes, a, b = [0, 5, MERSENNE_61 + 3, 2**64 - 1], [1, 3, MERSENNE_61 - 1], [0, 7, 11]
    assert mersenne_permute(hashes, a, b).tolist() == _by_hand(hashes, a, b)
    # (2^32 − 1)² needs all 64 bits: as int64 it would overflow.
    got = mersenne_permute32([1, 2**32 - 1], [2**32 - 1], [4]).tolist()
    assert got == [[((2**32 - 1) * x + 4) % MERSENNE_61 & 0xFFFFFFFF] for x in (1, 2**32 - 1)]


@pytest.mark.parametrize("name", ["hashes", "a", "b"])
def test_the_32_bit_form_refuses_2_to_the_32_naming_the_argument(name: str) -> None:
    ok = {"hashes": [2**32 - 1], "a": [2**32 - 1], "b": [2**32 - 1]}
    assert mersenne_permute32(**ok).shape == (1, 1)  # the largest 32-bit value is fine
    with pytest.raises(ValueError, match=rf"^{name} must be below 2\^32 for the 32-bit MinHash formula$"):
        mersenne_permute32(**(ok | {name: [3, 2**32]}))


def test_minhasher_settings_are_checked_at_their_bounds_and_default_to_the_configs() -> None:
    from megastyle.curate.dedup.minhash import MinHasher
    from megastyle.curate.dedup.steps import FuzzyDedupConfig

    assert MinHasher(num_perm=1, ngram=1, batch_size=1, threads=1).signatures(["ab"]).shape == (1, 1)
    for bad in ({"num_perm": 0}, {"ngram": 0}, {"batch_size": 0}, {"threads": 0}):
        settings = {"num_perm": 260, "ngram": 24, "batch_size": 32768, "threads": 1} | bad
        expected = ", ".join(str(v) for v in settings.values())
        with pytest.raises(
            ValueError, match=rf"^num_perm, ngram, batch_size and threads must be ≥ 1 \(got {expected}\)$"
        ):
            MinHasher(**settings)
    config, hasher = FuzzyDedupConfig(), MinHasher()
    assert (hasher.num_perm, hasher.ngram, hasher.seed, hasher.batch_size, hasher.threads) == (
        config.bands * config.rows,
        config.ngram,
        config.seed,
        config.batch_size,
        1,
    )


def test_permutations_are_checked_at_their_bounds_and_drawn_over_the_whole_range() -> None:
    from megastyle.curate.dedup.minhash import A_LIMIT, HASH_LIMIT, _checked_permutations, draw_permutations

    message = r"^permutations need equal-length a < 2\^29 and b < 2\^32 for the uint32 MinHash path$"
    a, b = _checked_permutations(np.array([A_LIMIT - 1], np.uint64), np.array([HASH_LIMIT - 1], np.uint64))
    assert (a.dtype, b.dtype, int(a[0]), int(b[0])) == (np.uint32, np.uint32, A_LIMIT - 1, HASH_LIMIT - 1)
    for bad_a, bad_b in (([A_LIMIT], [0]), ([1], [HASH_LIMIT]), ([1, 3], [0])):
        with pytest.raises(ValueError, match=message):
            _checked_permutations(np.array(bad_a, np.uint64), np.array(bad_b, np.uint64))
    drawn_a, drawn_b = draw_permutations(4000, seed=0)
    assert (drawn_a % 2 == 1).all() and int(drawn_a.max()) < A_LIMIT and int(drawn_b.max()) < HASH_LIMIT
    # Spread over the whole range: the largest of 4000 draws is within 1 % of the top.
    assert int(drawn_a.max()) > 0.99 * A_LIMIT and int(drawn_b.max()) > 0.99 * HASH_LIMIT
