"""Fuzzy dedup: LSH recall against exact Jaccard, union-find groups, planted near-duplicates, false positives."""

import random
from collections import deque

import numpy as np
import pytest

from megastyle.curate.dedup import (
    MinHasher,
    connected_components,
    fuzzy_duplicates,
    jaccard,
    lsh_candidate_pairs,
    shingle_sets,
    verify_pairs,
)
from megastyle.curate.dedup.fuzzy import ShingleSetTable, fuzzy_edges
from megastyle.prompts import sample_content_prompts, sample_style_prompts

FILLERS = ["blue", "soft", "ink", "grainy", "bright", "paper", "bold", "misty"]


def _bfs_labels(n: int, edges: list[tuple[int, int]]) -> list[int]:
    graph: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in edges:
        graph[a].append(b)
        graph[b].append(a)
    labels = [-1] * n
    for start in range(n):
        if labels[start] >= 0:
            continue
        queue, members = deque([start]), [start]
        labels[start] = start
        while queue:
            for nxt in graph[queue.popleft()]:
                if labels[nxt] < 0:
                    labels[nxt] = start
                    members.append(nxt)
                    queue.append(nxt)
        for m in members:
            labels[m] = min(members)
    return labels


def test_connected_components_match_breadth_first_search():
    rng = random.Random(0)
    for n, m in [(1, 0), (10, 0), (50, 30), (200, 150), (300, 600)]:
        edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(m)]
        assert connected_components(n, np.array(edges, dtype=np.int64)).tolist() == _bfs_labels(n, edges)
    chain = [(i, i + 1) for i in range(99)][::-1]  # a long chain, edges listed backwards
    assert connected_components(100, np.array(chain)).tolist() == [0] * 100


def test_lsh_buckets_all_pairs_or_a_star_for_big_buckets():
    signatures = np.zeros((6, 4), dtype=np.uint64)
    signatures[5] = 7  # row 5 differs everywhere
    assert len(lsh_candidate_pairs(signatures, bands=2, rows=2)) == 10  # all pairs of 0..4
    star = lsh_candidate_pairs(signatures, bands=2, rows=2, max_bucket_size=3)
    assert star.tolist() == [[0, 1], [0, 2], [0, 3], [0, 4]]
    with pytest.raises(ValueError, match="need 6 permutations"):
        lsh_candidate_pairs(signatures, bands=3, rows=2)


def _reference_candidates(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """Every pair sharing one band's values exactly, with Python dicts (datasketch's bucketing)."""
    found = set()
    for band in range(bands):
        buckets: dict[bytes, list[int]] = {}
        for i, row in enumerate(signatures[:, band * rows : (band + 1) * rows]):
            buckets.setdefault(row.tobytes(), []).append(i)
        found |= {
            (i, j) for members in buckets.values() for k, i in enumerate(members) for j in members[k + 1 :]
        }
    return found


def test_lsh_candidates_equal_dictionary_bucketing():
    rng = np.random.default_rng(4)
    signatures = rng.integers(0, 6, size=(300, 12), dtype=np.uint32)  # small values: many equal bands
    signatures[rng.integers(0, 300, 40), :3] = 7  # and some large buckets
    got = lsh_candidate_pairs(signatures, bands=4, rows=3, max_bucket_size=1000)
    assert {tuple(p) for p in got.tolist()} == _reference_candidates(signatures, 4, 3)
    assert got.tolist() == sorted(got.tolist())


def test_vectorised_jaccard_equals_the_pairwise_one():
    rng = random.Random(3)
    texts = sample_style_prompts(30, seed=4) + sample_content_prompts(30, seed=5) + ["", "", "ab"]
    texts += [t.replace(" ", "  ", 1) + " extra words" for t in texts[:10]]
    sets = shingle_sets(texts, 5)
    pairs = np.array([(rng.randrange(len(texts)), rng.randrange(len(texts))) for _ in range(400)])
    pairs = np.vstack([pairs, [[60, 61], [60, 62], [3, 3]]])  # two empty sets, empty vs not, self
    expected = [jaccard(sets[i], sets[j]) for i, j in pairs]
    hasher = MinHasher(ngram=5)
    table = ShingleSetTable.build(texts, np.arange(len(texts)), hasher)
    assert table.jaccard(pairs).tolist() == expected
    assert verify_pairs(dict(enumerate(sets)), pairs).tolist() == expected
    partial = ShingleSetTable.build(texts, np.arange(0, len(texts), 2), hasher)
    extended = partial.extended(texts, np.arange(len(texts)), hasher)
    assert np.array_equal(extended.jaccard(pairs), table.jaccard(pairs))
    with pytest.raises(KeyError, match="not in the table"):
        partial.jaccard(np.array([[0, 1]]))


def _variant_families(bases: list[str], per_base: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    docs = []
    for base in bases:
        for k in range(per_base):
            words = base.split()
            for _ in range(k // 2):
                words[rng.randrange(len(words))] = rng.choice(FILLERS)
            docs.append(" ".join(words))
    return docs


def test_lsh_recall_against_exact_jaccard():
    per_base = 10  # variants with 0..4 random word replacements: Jaccards from 1.0 down to ~0.5
    docs = _variant_families(sample_style_prompts(40, seed=5), per_base, seed=1)
    ngram, bands, rows = 5, 20, 13
    signatures = MinHasher(bands * rows, ngram, seed=3).signatures(docs)
    found = {tuple(p) for p in lsh_candidate_pairs(signatures, bands, rows).tolist()}
    sets = shingle_sets(docs, ngram)
    by_band: dict[str, list[bool]] = {"≥0.9": [], "0.8–0.9": [], "<0.5": []}
    for family in range(0, len(docs), per_base):
        for i in range(family, family + per_base):
            for j in range(i + 1, family + per_base):
                sim = jaccard(sets[i], sets[j])
                key = "≥0.9" if sim >= 0.9 else "0.8–0.9" if sim >= 0.8 else "<0.5" if sim < 0.5 else None
                if key:
                    by_band[key].append((i, j) in found)
    assert len(by_band["≥0.9"]) >= 100 and len(by_band["0.8–0.9"]) >= 50
    assert np.mean(by_band["≥0.9"]) >= 0.97  # theory: ≥ 0.997 per pair at 20 × 13
    assert np.mean(by_band["0.8–0.9"]) >= 0.6  # theory: 0.68 at 0.8 rising to 0.997 at 0.9
    # Across families (distinct prompts from one template) a candidate must be a rare accident.
    cross = [(i, j) for i, j in found if i // per_base != j // per_base]
    assert len(cross) <= 0.002 * len(docs) ** 2 / 2
    assert all(jaccard(sets[i], sets[j]) < 0.8 for i, j in cross)


def _plant(pool: list[str], edits, seed: int, count: int) -> tuple[list[str], dict[int, int]]:
    rng = random.Random(seed)
    texts, planted = list(pool), {}
    for base in rng.sample(range(len(pool)), count):
        planted[len(texts)] = base
        texts.append(rng.choice(edits)(pool[base]))
    return texts, planted


STYLE_EDITS_FOR_24 = [  # change the start of a prompt: exact Jaccard ≥ 0.9 on 24-grams
    lambda t: "A painting " + t[0].lower() + t[1:],
    lambda t: t.replace("In the style of", "In a style of", 1),
    lambda t: "Artwork: " + t,
]
STYLE_EDITS_FOR_5 = [  # word-level edits mid-prompt: only short shingles see them as near-duplicates
    lambda t: t.replace(", ", "; ", 1),
    lambda t: t.replace(" lighting", " light", 1),
    lambda t: t.replace(" edges", " edge", 1) if " edges" in t else t.replace(" surface", " finish", 1),
]


@pytest.mark.parametrize(("ngram", "edits"), [(24, STYLE_EDITS_FOR_24), (5, STYLE_EDITS_FOR_5)])
def test_planted_near_duplicates_are_removed_and_distinct_prompts_kept(ngram, edits):
    pool = sample_style_prompts(400, seed=21) + sample_content_prompts(400, seed=22)
    texts, planted = _plant(pool[:400], edits, seed=ngram, count=40)
    texts += pool[400:]  # distinct content prompts after the plants
    result = fuzzy_duplicates(texts, ngram=ngram, seed=4)
    removed = {p.removed: p.kept for p in result.pairs}
    false_positives = set(removed) - set(planted)
    assert not false_positives, [texts[i] for i in false_positives]
    recall = sum(removed.get(i) == base for i, base in planted.items()) / len(planted)
    assert recall >= 0.9
    assert all(p.score >= 0.8 for p in result.pairs)  # verified pairs carry their exact Jaccard


def test_transitive_groups_keep_one_member():
    rng = random.Random(7)
    words = [rng.choice(["red", "blue", "cat", "tree", "soft", "ink", "sky"]) + str(i) for i in range(40)]
    a = " ".join(words)
    b = " ".join(["zz", "yy", *words[2:]])  # A with the start replaced
    c = " ".join(["zz", "yy", *words[2:-2], "ww", "vv"])  # B with the end replaced
    sets = shingle_sets([a, b, c], 5)
    threshold = 0.9
    assert jaccard(sets[0], sets[1]) >= 0.92 and jaccard(sets[1], sets[2]) >= 0.92
    assert jaccard(sets[0], sets[2]) < threshold  # A and C only meet through B
    result = fuzzy_duplicates([a, b, "an unrelated prompt about a boat", c], ngram=5, threshold=threshold)
    assert result.kept.tolist() == [0, 2]
    assert [(p.removed, p.kept) for p in result.pairs] == [(1, 0), (3, 0)]
    assert result.pairs[1].score == pytest.approx(jaccard(sets[0], sets[2]))


def test_fuzzy_edges_candidates_and_threads():
    docs = _variant_families(sample_style_prompts(30, seed=8), 6, seed=2)
    one = fuzzy_edges(docs, ngram=5, seed=1)
    two = fuzzy_edges(docs, ngram=5, seed=1, threads=2)
    assert np.array_equal(one.signatures, two.signatures) and np.array_equal(one.edges, two.edges)
    assert {tuple(p) for p in one.candidates.tolist()} == _reference_candidates(one.signatures, 20, 13)
    assert set(one.seconds) == {"signatures", "lsh", "verify"}
    sets = shingle_sets(docs, 5)
    assert all(jaccard(sets[i], sets[j]) >= 0.8 for i, j in one.edges)
    assert set(np.unique(one.edges).tolist()) <= one.sets.keys()  # the verification read their sets


def test_keep_longest_and_unverified_scores_and_determinism():
    base = sample_style_prompts(1, seed=2)[0]
    texts = ["Artwork: " + base, base, "Artwork: " + base + " Extra detail"]
    longest = fuzzy_duplicates(texts, keep="longest")
    assert longest.kept.tolist() == [2]
    assert {p.removed for p in longest.pairs} == {0, 1}
    unverified = fuzzy_duplicates(texts, verify=False, seed=9)
    assert unverified.kept.tolist() == [0]
    assert all(0.5 < p.score <= 1.0 for p in unverified.pairs)  # MinHash estimates
    assert unverified == fuzzy_duplicates(texts, verify=False, seed=9)
    with pytest.raises(ValueError, match="unknown keep policy"):
        fuzzy_duplicates(texts, keep="shortest")  # type: ignore[arg-type]
