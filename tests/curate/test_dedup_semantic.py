"""Semantic dedup (SemDeDup): keep policies, the kept-item rule, k-means backends, the packaged MiniLM."""

import importlib.util

import numpy as np
import pytest

from megastyle.curate.dedup import semantic_duplicates
from megastyle.curate.dedup.semantic import kmeans, normalize_rows
from megastyle.prompts import sample_style_prompts
from megastyle.prompts.embedding import (
    TextEmbedder,
    TextModelNotFoundError,
    default_text_model_path,
    embed_texts,
    load_text_embedder,
)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _planted(seed: int, bases: int = 30, dim: int = 32) -> tuple[np.ndarray, dict[int, int]]:
    """Random unit vectors plus one near-copy (cosine > 0.999) of every third base."""
    rng = np.random.default_rng(seed)
    x = list(_unit(rng.normal(size=(bases, dim))))
    planted = {}
    for base in range(0, bases, 3):
        planted[len(x)] = base
        x.append(_unit(x[base] + 0.01 * rng.normal(size=dim)))
    return np.array(x, dtype=np.float32), planted


@pytest.mark.parametrize("backend", ["sklearn", "faiss"])
def test_planted_near_copies_are_removed_with_either_kmeans(backend):
    if backend == "faiss" and importlib.util.find_spec("faiss") is None:
        pytest.skip("faiss-cpu is not installed")
    x, planted = _planted(seed=0)
    result = semantic_duplicates(x, n_clusters=4, keep="first", kmeans_backend=backend, seed=1)
    assert {p.removed: p.kept for p in result.pairs} == planted
    assert all(p.score >= 0.99 for p in result.pairs)
    assert result == semantic_duplicates(x, n_clusters=4, keep="first", kmeans_backend=backend, seed=1)


def test_keep_policies_choose_by_distance_to_the_centroid():
    rng = np.random.default_rng(3)
    centre = _unit(rng.normal(size=16))
    spread = _unit(centre + 0.6 * _unit(rng.normal(size=(12, 16))))  # a loose cluster
    direction = _unit(rng.normal(size=16))
    group = _unit(spread[0] + np.array([0.0, 0.02, 0.04])[:, None] * direction)  # three near-copies
    x = np.vstack([spread[1:], group]).astype(np.float32)
    members = [11, 12, 13]
    assert (x[members] @ x[members].T).min() >= 0.99
    to_centroid = x[members] @ _unit(x.mean(axis=0))
    kept = {}
    for keep in ("hard", "easy", "first", "random"):
        result = semantic_duplicates(x, n_clusters=1, keep=keep, seed=5)
        kept[keep] = sorted(set(members) - {p.removed for p in result.pairs})
        assert len(kept[keep]) == 1 and len(result.pairs) == 2
    assert kept["hard"] == [members[int(np.argmin(to_centroid))]]
    assert kept["easy"] == [members[int(np.argmax(to_centroid))]]
    assert kept["first"] == [11]
    assert kept["hard"] != kept["easy"]


def test_items_are_dropped_only_against_kept_items_and_eps_sets_the_bar():
    a = np.array([1.0, 0.0, 0.0])
    b = _unit(np.array([1.0, 0.12, 0.0]))  # cos(a, b) ≈ 0.993
    c = _unit(np.array([1.0, 0.24, 0.0]))  # cos(b, c) ≈ 0.99, cos(a, c) ≈ 0.972
    x = np.array([a, b, c], dtype=np.float32)
    result = semantic_duplicates(x, eps=0.01, n_clusters=1, keep="first")
    # b goes as a copy of a; c is compared with kept items only (a), so it stays.
    assert [(p.removed, p.kept) for p in result.pairs] == [(1, 0)]
    assert result.kept.tolist() == [0, 2]
    assert semantic_duplicates(x, eps=0.03, n_clusters=1, keep="first").kept.tolist() == [0]
    assert semantic_duplicates(x, eps=0.001, n_clusters=1, keep="first").kept.tolist() == [0, 1, 2]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="embedding 1 has a NaN"):
        normalize_rows(np.array([[1.0, 0.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="unknown keep policy"):
        semantic_duplicates(np.eye(3), keep="hardest")  # type: ignore[arg-type]
    assert semantic_duplicates(np.zeros((0, 4))).kept.tolist() == []
    labels, centroids = kmeans(np.eye(4, dtype=np.float32), 10, backend="sklearn")
    assert len(set(labels.tolist())) <= 4 and centroids.shape[1] == 4


@pytest.fixture(scope="module")
def minilm() -> TextEmbedder:
    return load_text_embedder()


def test_packaged_minilm_embeds_offline(minilm):
    path = default_text_model_path()
    assert path.is_dir() and (path / "config.json").is_file()
    x = embed_texts(["a cat on a mat", "a dog"], minilm)
    assert x.shape == (2, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert embed_texts([], minilm).shape == (0, 384)
    with pytest.raises(TypeError, match="text 1 is a int"):
        minilm.encode(["ok", 3])  # type: ignore[list-item]


def test_a_missing_model_folder_is_a_clear_error_not_a_hub_lookup(tmp_path):
    with pytest.raises(TextModelNotFoundError, match="does not exist"):
        TextEmbedder(tmp_path / "nowhere")
    with pytest.raises(TextModelNotFoundError, match="does not exist"):
        embed_texts(["x"], "sentence-transformers/all-MiniLM-L6-v2")  # a hub id is not a folder
    with pytest.raises(TextModelNotFoundError, match="not a sentence-transformers model folder"):
        TextEmbedder(tmp_path)


PARAPHRASES = [  # MiniLM cosine ≥ 0.98 for each pair
    ("A cat sitting on a red chair", "A cat is sitting on a red chair"),
    ("Two wooden books beside a heart", "Two wooden books next to a heart"),
    ("A small boat under a bridge", "A small boat beneath a bridge"),
    ("A round clock on a wall", "A round clock on the wall"),
]
UNRELATED = ["A dog running on a beach", "A bowl of fruit on a table", "An old key in front of a locked door"]


def test_semantic_dedup_with_the_packaged_minilm(minilm):
    styles = sample_style_prompts(4, seed=8)  # distinct prompts that share the template
    texts = [p[0] for p in PARAPHRASES] + UNRELATED + styles + [p[1] for p in PARAPHRASES]
    x = embed_texts(texts, minilm)
    result = semantic_duplicates(x, eps=0.03, keep="first")
    first_copy = len(texts) - len(PARAPHRASES)
    assert {p.removed: p.kept for p in result.pairs} == {first_copy + i: i for i in range(len(PARAPHRASES))}
    assert all(p.score >= 0.97 for p in result.pairs)


def test_greedy_pass_matches_a_brute_force_reference_across_blocks():
    rng = np.random.default_rng(11)
    x = _unit(rng.normal(size=(1500, 5))).astype(np.float32)  # more rows than one similarity block
    threshold = 0.98
    kept: list[int] = []
    expected = {}
    for i in range(len(x)):
        sims = x[kept] @ x[i] if kept else np.zeros(0)
        if len(sims) and sims.max() >= threshold:
            expected[i] = kept[int(np.argmax(sims))]
        else:
            kept.append(i)
    result = semantic_duplicates(x, eps=1 - threshold, n_clusters=1, keep="first")
    assert len(expected) > 100
    assert {p.removed: p.kept for p in result.pairs} == expected
