"""The fuzzy step's edges: band keys against their formula, an engineered key collision, bucket size
limits at their bound, union-find termination, the exact thresholds, and settings that reach MinHash."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from megastyle.curate.dedup import fuzzy
from megastyle.curate.dedup.fuzzy import (
    ESTIMATE_MARGIN,
    ShingleSetTable,
    connected_components,
    fuzzy_duplicates,
    fuzzy_edges,
    lsh_candidate_pairs,
    minhash_jaccard,
    verify_candidates,
)
from megastyle.curate.dedup.minhash import MinHasher
from megastyle.curate.dedup.shingles import shingle_sets
from megastyle.curate.dedup.steps import FuzzyDedupConfig

_U64 = np.uint64


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Fail, rather than hang, when the body runs longer than ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _no_test_hangs() -> Iterator[None]:
    # Every test here takes well under a second; a broken loop (say in the union-find) fails, not hangs.
    with _deadline(20.0):
        yield


def _multipliers(rows: int) -> list[int]:
    """The band-key multipliers ``K_j``, read back as the keys of unit signatures."""
    return [int(k) for k in fuzzy._band_keys(np.eye(rows, dtype=_U64), 1, rows)[0]]


# ----- band keys -------------------------------------------------------------------------------
def test_band_keys_are_the_modular_sum_with_odd_multipliers_the_same_on_every_call() -> None:
    rows, bands = 5, 3
    multipliers = _multipliers(rows)
    assert multipliers == _multipliers(rows)  # seeded: a rerun buckets alike
    assert all(k % 2 == 1 for k in multipliers)  # odd: a value's lowest bit still reaches the key
    rng = np.random.default_rng(0)
    # Over two blocks of _KEY_ROWS rows, and values up to 2^61, where products wrap mod 2^64.
    signatures = rng.integers(0, 2**61, (2 * fuzzy._KEY_ROWS + 7, bands * rows + 2), dtype=_U64)
    keys = fuzzy._band_keys(signatures, bands, rows)
    assert keys.dtype == _U64 and keys.shape == (bands, len(signatures))
    for i in (0, 1, fuzzy._KEY_ROWS - 1, fuzzy._KEY_ROWS, 2 * fuzzy._KEY_ROWS, len(signatures) - 1):
        for band in range(bands):
            values = [int(v) for v in signatures[i, band * rows : (band + 1) * rows]]
            expected = sum(v * k for v, k in zip(values, multipliers, strict=True)) % 2**64
            assert int(keys[band, i]) == expected, (i, band)


def test_a_band_key_collision_is_not_a_candidate() -> None:
    k0, k1 = _multipliers(2)
    # [k1, 0] and [0, k0] have the same key k1·k0 but different values.
    signatures = np.array([[k1, 0], [0, k0], [0, k0]], dtype=_U64)
    keys = fuzzy._band_keys(signatures, 1, 2)[0]
    assert keys[0] == keys[1] == keys[2]
    assert lsh_candidate_pairs(signatures, bands=1, rows=2).tolist() == [[1, 2]]


# ----- candidate pairs -------------------------------------------------------------------------
def test_distinct_signatures_give_no_pairs_as_an_empty_int_array() -> None:
    signatures = np.arange(12, dtype=_U64).reshape(4, 3)
    pairs = lsh_candidate_pairs(signatures, bands=3, rows=1)
    assert pairs.shape == (0, 2) and pairs.dtype == np.int64
    found = lsh_candidate_pairs(np.array([[1, 2], [1, 3]], dtype=_U64), bands=2, rows=1)
    assert found.tolist() == [[0, 1]] and found.dtype == np.int64


@pytest.mark.parametrize(
    ("size", "limit", "expected"), [(4, 4, 6), (5, 4, 4), (100, 100, 4950), (101, 100, 100)]
)
def test_a_bucket_up_to_the_limit_gives_all_pairs_and_a_larger_one_a_star(
    size: int, limit: int, expected: int
) -> None:
    signatures = np.zeros((size + 1, 1), dtype=_U64)
    signatures[-1] = 9  # one other item, in no bucket
    args = (signatures, 1, 1) if limit == 100 else (signatures, 1, 1, limit)  # 100 is the default
    pairs = lsh_candidate_pairs(*args)
    assert len(pairs) == expected
    if expected < size * (size - 1) // 2:
        assert pairs.tolist() == [[0, j] for j in range(1, size)]  # the star around the first member


def test_fuzzy_edges_passes_the_bucket_limit_and_skips_verification_when_asked() -> None:
    texts = ["the same prompt, word for word"] * 4 + ["something else entirely, nothing shared"]
    star = fuzzy_edges(texts, ngram=3, verify=False, max_bucket_size=3)
    assert star.candidates.tolist() == [[0, 1], [0, 2], [0, 3]]
    all_pairs = [[i, j] for i in range(4) for j in range(i + 1, 4)]
    assert fuzzy_edges(texts, ngram=3, verify=False).candidates.tolist() == all_pairs
    # Unverified edges are the candidates, even at a threshold no pair could pass.
    unverified = fuzzy_edges(texts, ngram=3, verify=False, threshold=1.0 + 1e-9)
    assert np.array_equal(unverified.edges, unverified.candidates) and len(unverified.edges) == 6
    table = unverified.set_table
    assert unverified.sets == {}
    assert (table.indices.dtype, table.hashes.dtype, table.offsets.tolist()) == (np.int64, _U64, [0])
    assert table.indices.shape == table.hashes.shape == (0,) and table.offsets.dtype == np.int64
    assert len(fuzzy_edges(texts, ngram=3, threshold=1.0 + 1e-9).edges) == 0


# ----- union-find ------------------------------------------------------------------------------
def test_union_find_finishes_on_long_chains_and_labels_by_smallest_index() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    permuted = rng.permutation(n)
    chain = np.stack([permuted[:-1], permuted[1:]], axis=1)  # one component, visited in random order
    with _deadline(5.0):
        labels = connected_components(n + 2, chain)
        assert labels.tolist() == [0] * n + [n, n + 1]
        ladder = np.array([[i + 1, i] for i in range(0, 40, 2)])  # twenty separate pairs, larger first
        assert connected_components(40, ladder).tolist() == [i - i % 2 for i in range(40)]
    assert connected_components(3, np.zeros((0, 2))).tolist() == [0, 1, 2]


# ----- MinHash estimates -----------------------------------------------------------------------
def test_minhash_estimates_pair_by_pair_in_chunks() -> None:
    signatures = np.array([[1, 2, 3, 4], [1, 2, 3, 5], [1, 9, 9, 9], [7, 7, 7, 7]], dtype=_U64)
    pairs = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [2, 3], [0, 0], [3, 3]])
    expected = [0.75, 0.25, 0.0, 0.25, 0.0, 1.0, 1.0]
    for chunk in (1, 2, 3, 16384):
        assert minhash_jaccard(signatures, pairs, chunk=chunk).tolist() == expected


# ----- verification ----------------------------------------------------------------------------
def _word_hasher() -> MinHasher:
    return MinHasher(num_perm=8, ngram=1, unit="word")


def test_verification_keeps_an_exact_jaccard_equal_to_the_threshold() -> None:
    texts = ["a b c", "a b d", "x y z"]  # {a,b,c} vs {a,b,d}: Jaccard 2/4 exactly
    edges, table = verify_candidates(texts, None, [[0, 1], [0, 2]], 0.5, _word_hasher(), estimates=[0.5, 0.5])
    assert edges.tolist() == [[0, 1]]
    assert table.indices.tolist() == [0, 1, 2]


def test_an_estimate_exactly_at_the_margin_is_still_checked() -> None:
    texts = ["same words here", "same words here"]
    at_margin = [0.8 - ESTIMATE_MARGIN]
    edges, _ = verify_candidates(texts, None, [[0, 1]], 0.8, _word_hasher(), estimates=at_margin)
    assert edges.tolist() == [[0, 1]]
    below = [np.nextafter(0.8 - ESTIMATE_MARGIN, 0)]
    assert verify_candidates(texts, None, [[0, 1]], 0.8, _word_hasher(), estimates=below)[0].tolist() == []


def test_verification_of_no_candidates_and_without_estimates() -> None:
    edges, table = verify_candidates(["a", "b"], None, [], 0.8, _word_hasher(), estimates=[])
    assert edges.shape == (0, 2) and edges.dtype == np.int64
    assert table.indices.dtype == np.int64 and len(table.indices) == 0
    with pytest.raises(ValueError, match=r"^verify_candidates needs signatures or estimates$"):
        verify_candidates(["a", "b"], None, [[0, 1]], 0.8, _word_hasher())


# ----- the shingle-set table -------------------------------------------------------------------
def test_the_table_shingles_as_its_hasher_does_and_grows_by_what_it_lacks() -> None:
    texts = ["Red Fox Jumps", "red fox jumps", "blue whale sings", "green frog sits"]
    plain = MinHasher(num_perm=4, ngram=1, unit="word", normalize=False)
    assert ShingleSetTable.build(texts, [0, 1], plain).jaccard([[0, 1]]).tolist() == [0.0]
    table = ShingleSetTable.build(texts, [0, 1], _word_hasher())
    assert table.jaccard([[0, 1]]).tolist() == [1.0]
    assert table.extended(texts, [1, 0], _word_hasher()) is table  # nothing missing: the same table
    one_more = table.extended(texts, [0, 3], _word_hasher())
    assert one_more.indices.tolist() == [0, 1, 3]
    by_index = one_more.as_dict()
    assert list(by_index) == [0, 1, 3]
    for i, hashes in by_index.items():
        assert hashes.tolist() == shingle_sets([texts[i]], 1, "word")[0].tolist()
    assert one_more.jaccard([[1, 3], [0, 1]]).tolist() == [0.0, 1.0]
    empty = ShingleSetTable.build(texts, [], _word_hasher())
    assert empty.indices.dtype == np.int64
    assert empty.extended(texts, [2], _word_hasher()).indices.tolist() == [2]


@pytest.mark.parametrize("pair", [[0, 5], [5, 0], [2, 3], [0, -1]])
def test_a_pair_outside_the_table_is_a_key_error(pair: list[int]) -> None:
    table = ShingleSetTable.build(["a b", "b c", "c d", "d e"], [0, 1, 3], _word_hasher())
    with pytest.raises(KeyError, match=r"^'a pair names a text whose shingle set is not in the table'$"):
        table.jaccard([pair])


# ----- settings --------------------------------------------------------------------------------
def test_settings_reach_the_minhasher_and_timings_are_honest() -> None:
    texts = ["Some Prompt,  With Spaces", "some prompt, with spaces", "another one"]
    start = time.perf_counter()
    found = fuzzy_edges(texts, bands=4, rows=5, ngram=3, seed=7, normalize=False, batch_size=2, threads=2)
    elapsed = time.perf_counter() - start
    hasher = found.hasher
    assert (hasher.num_perm, hasher.ngram, hasher.unit, hasher.seed) == (20, 3, "char", 7)
    assert (hasher.normalize, hasher.batch_size, hasher.threads) == (False, 2, 2)
    expected = MinHasher(20, 3, "char", 7, False).signatures(texts)
    assert np.array_equal(found.signatures, expected)
    assert set(found.seconds) == {"signatures", "lsh", "verify"}
    assert all(0.0 <= s <= elapsed for s in found.seconds.values())


def test_defaults_are_the_fuzzy_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Called, not read off the signature: what a caller who passes nothing actually gets.
    config = FuzzyDedupConfig().model_dump(exclude={"enabled", "keep"})
    seen: dict[str, object] = {}
    real_edges, real_lsh, real_verify = fuzzy.fuzzy_edges, fuzzy.lsh_candidate_pairs, fuzzy.verify_candidates

    def edges(texts: list[str], **settings: object) -> fuzzy.FuzzyEdges:
        seen["fuzzy_edges"] = settings
        return real_edges(texts)  # its own defaults, checked below

    def lsh(signatures: np.ndarray, bands: int, rows: int, max_bucket_size: int) -> np.ndarray:
        seen["lsh"] = (signatures.shape[1], bands, rows, max_bucket_size)
        return real_lsh(signatures, bands, rows, max_bucket_size)

    def verify(texts, signatures, candidates, threshold, hasher):  # type: ignore[no-untyped-def]
        seen["threshold"] = threshold
        return real_verify(texts, signatures, candidates, threshold, hasher)

    monkeypatch.setattr(fuzzy, "fuzzy_edges", edges)
    monkeypatch.setattr(fuzzy, "lsh_candidate_pairs", lsh)
    monkeypatch.setattr(fuzzy, "verify_candidates", verify)
    fuzzy_duplicates(["one prompt, twice", "one prompt, twice"])
    assert seen["fuzzy_edges"] == config | {"threads": 1, "hasher": None}
    assert seen["lsh"] == (260, 20, 13, 100) and seen["threshold"] == 0.8
    hasher = real_edges(["a prompt"]).hasher
    assert (hasher.num_perm, hasher.ngram, hasher.unit, hasher.seed, hasher.normalize) == (
        260,
        24,
        "char",
        0,
        True,
    )
    assert (hasher.batch_size, hasher.threads) == (config["batch_size"], 1)


# ----- keep rule -------------------------------------------------------------------------------
def test_keep_longest_in_each_of_several_components_ties_to_the_first() -> None:
    labels = np.array([0, 0, 2, 2, 2, 5, 0, 5, 8])
    texts = ["aa", "aaaa", "b", "bbb", "bbb", "cc", "aaaa", "c", "dddd"]
    # Component 0: 1 and 6 tie at 4 characters, 1 comes first; component 2: 3 and 4 tie; 5: item 5.
    assert fuzzy._choose_kept(labels, texts, "longest").tolist() == [1, 1, 3, 3, 3, 5, 1, 5, 8]
    assert fuzzy._choose_kept(labels, texts, "first").tolist() == labels.tolist()
