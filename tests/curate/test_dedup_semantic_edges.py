"""SemDeDup's edges: input precision, the cosine bar at equality, blocks past the second, the random keep
order, cluster counts at their bounds, and the shape error's text."""

from __future__ import annotations

import numpy as np
import pytest

from megastyle.curate.dedup import semantic
from megastyle.curate.dedup.semantic import auto_cluster_count, kmeans, normalize_rows, semantic_duplicates


def test_rows_are_rounded_to_float32_before_they_are_normalised() -> None:
    x = np.random.default_rng(0).normal(size=(500, 16))
    # The same embeddings given in float64 or float32 give the same rows, to the bit.
    assert np.array_equal(normalize_rows(x), normalize_rows(x.astype(np.float32)))
    assert normalize_rows(x).dtype == np.float32
    rows = normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0], [0.03, 0.04], [-2.0, 0.0]]))
    assert np.allclose(rows, [[0.6, 0.8], [0.0, 0.0], [0.6, 0.8], [-1.0, 0.0]])  # a zero row stays zero
    with pytest.raises(ValueError, match=r"^embeddings must be a 2-D \(n, d\) array, got shape \(3,\)$"):
        normalize_rows(np.ones(3))


def test_a_cosine_exactly_at_the_bar_is_a_duplicate() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    result = semantic_duplicates(x, eps=0.0, n_clusters=1, keep="first")  # bar 1.0, cosine exactly 1.0
    assert [(p.removed, p.kept, p.score) for p in result.pairs] == [(1, 0, 1.0)]


def test_every_block_is_searched_past_the_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(semantic, "_BLOCK_ROWS", 4)
    x = np.eye(30)[np.r_[np.arange(15), np.arange(15)]]  # rows 15–29 repeat rows 0–14
    result = semantic_duplicates(x, eps=0.01, n_clusters=1, keep="first")
    assert {p.removed: p.kept for p in result.pairs} == {15 + i: i for i in range(15)}


def test_random_keep_follows_the_seeded_permutation() -> None:
    x = np.ones((6, 3))  # six copies: the first of the permutation is kept
    for seed in (0, 1, 2):
        result = semantic_duplicates(x, n_clusters=1, keep="random", seed=seed)
        first = int(np.random.default_rng(seed).permutation(np.arange(6))[0])
        assert result.kept.tolist() == [first]
    assert any(int(np.random.default_rng(s).permutation(np.arange(6))[0]) != 0 for s in (0, 1, 2))


@pytest.mark.parametrize(
    ("n", "size", "expected"), [(5, 1000, 1), (0, 10, 1), (5, 1, 5), (5, 0, 5), (21, 10, 3)]
)
def test_cluster_count_at_its_bounds(n: int, size: int, expected: int) -> None:
    assert auto_cluster_count(n, size) == expected


def _blobs(k: int, per: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    centres = np.eye(8, dtype=np.float32)[:k] * 10
    truth = np.repeat(np.arange(k), per)
    return (centres[truth] + rng.normal(scale=0.1, size=(k * per, 8))).astype(np.float32), truth


@pytest.mark.parametrize("backend", ["faiss", "sklearn"])
def test_kmeans_assigns_nearest_centroids_and_finds_two_blobs(backend: str) -> None:
    for k in (2, 3):
        x, truth = _blobs(k)
        labels, centroids = kmeans(x, k, backend=backend)  # type: ignore[arg-type]
        assert labels.dtype == np.int64 and centroids.dtype == np.float32 and centroids.shape == (k, 8)
        # Each point belongs to its nearest centroid.
        distances = ((x[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        assert np.array_equal(labels, distances.argmin(axis=1))
    # Two separated blobs are found (three can meet a local optimum with a single initialisation).
    x, truth = _blobs(2)
    labels, centroids = kmeans(x, 2, backend=backend)  # type: ignore[arg-type]
    assert len({(int(a), int(b)) for a, b in zip(labels, truth, strict=True)}) == 2
    assert np.allclose(centroids[labels], x.reshape(2, -1, 8).mean(axis=1)[truth], atol=0.05)
    x, _ = _blobs(3)
    labels, centroids = kmeans(x, 1, backend=backend)  # type: ignore[arg-type]
    assert labels.tolist() == [0] * len(x) and np.array_equal(centroids, x.mean(axis=0, keepdims=True))


class _Stop(Exception):
    pass


def test_kmeans_hands_its_settings_to_the_backend_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss
    import sklearn.cluster

    seen: list[tuple[str, tuple, dict]] = []

    def record(name: str):  # type: ignore[no-untyped-def]
        def build(*args: object, **kwargs: object) -> None:
            seen.append((name, args, kwargs))
            raise _Stop

        return build

    monkeypatch.setattr(faiss, "Kmeans", record("faiss"))
    monkeypatch.setattr(sklearn.cluster, "MiniBatchKMeans", record("sklearn"))
    x = np.zeros((400, 6), dtype=np.float32)
    for backend in ("faiss", "sklearn", "auto"):
        with pytest.raises(_Stop):
            kmeans(x, 300, seed=7, iterations=9, backend=backend)  # type: ignore[arg-type]
    with pytest.raises(_Stop):
        kmeans(x, 3)  # the defaults: seed 0, 20 iterations, auto
    faiss_settings = {"niter": 9, "seed": 7, "verbose": False, "min_points_per_centroid": 1}
    sklearn_settings = {"n_clusters": 300, "random_state": 7, "max_iter": 9, "n_init": 3, "batch_size": 1200}
    assert seen[0] == ("faiss", (6, 300), faiss_settings)
    assert seen[1] == ("sklearn", (), sklearn_settings)
    assert seen[2] == ("faiss", (6, 300), faiss_settings)  # auto: faiss is installed here
    assert seen[3] == ("faiss", (6, 3), faiss_settings | {"niter": 20, "seed": 0})
    with pytest.raises(_Stop):
        kmeans(x, 3, backend="sklearn")
    assert seen[4][2]["batch_size"] == 1024  # at least 1024 rows a batch


def test_semantic_dedup_hands_its_settings_to_kmeans(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, dict]] = []

    def one_cluster(x: np.ndarray, k: int, **settings: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append((k, settings))
        return np.zeros(len(x), dtype=np.int64), x.mean(axis=0, keepdims=True)

    monkeypatch.setattr(semantic, "kmeans", one_cluster)
    x = np.random.default_rng(1).normal(size=(1001, 4))
    semantic_duplicates(x)
    semantic_duplicates(x, cluster_size=10, seed=4, kmeans_backend="sklearn", kmeans_iterations=3)
    assert calls == [
        (2, {"seed": 0, "iterations": 20, "backend": "auto"}),  # 1001 rows at 1000 a cluster
        (101, {"seed": 4, "iterations": 3, "backend": "sklearn"}),
    ]


def test_every_cluster_is_searched_past_singletons_and_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Clusters as given: 0 = {2} alone, 1 = {0, 3} a pair of copies, 2 = {1, 4, 5} with 5 a copy of 1.
    labels = np.array([1, 2, 0, 1, 2, 2])
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]], dtype=np.float64)
    centroids = np.stack([x[labels == c].mean(axis=0) for c in range(3)])
    monkeypatch.setattr(semantic, "kmeans", lambda x, k, **settings: (labels, centroids.astype(np.float32)))
    result = semantic_duplicates(x, n_clusters=3, keep="first")
    assert {(p.removed, p.kept) for p in result.pairs} == {(3, 0), (5, 1)}
    assert result.kept.tolist() == [0, 1, 2, 4]


def test_one_row_and_the_eps_bounds() -> None:
    single = semantic_duplicates(np.ones((1, 3)))
    assert (single.n, single.kept.tolist(), single.pairs) == (1, [0], [])
    assert semantic_duplicates(np.ones((2, 3)), eps=1.99).kept.tolist() == [0]
    for bad in (2.0, -0.01):
        with pytest.raises(ValueError, match=rf"^eps must be in \[0, 2\), got {bad}$"):
            semantic_duplicates(np.ones((2, 3)), eps=bad)
