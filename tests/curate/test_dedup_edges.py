"""The dedup steps' edges: every semantic setting reaches SemDeDup, the removed-pairs files keep their text and
column types, the report's one line, the shingles of empty and un-normalised texts, and exact Jaccard on raw ints."""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from megastyle.curate.dedup import steps
from megastyle.curate.dedup.fuzzy import verify_pairs
from megastyle.curate.dedup.pairs import StepResult
from megastyle.curate.dedup.shingles import shingle_sets, shingle_strings
from megastyle.curate.dedup.steps import DedupConfig, DedupReport, RemovedPair, kept_mask, write_removed_pairs


def _report(**fields) -> DedupReport:
    return DedupReport(
        **({"input_count": 5, "kept_indices": [0, 3], "kept_texts": ["a", "d"]} | fields),
        removed_counts={"exact": 1, "fuzzy": 2},
    )


def test_every_semantic_setting_reaches_semdedup(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}
    monkeypatch.setattr(steps, "semantic_duplicates", lambda embeddings, **kw: seen.update(kw) or "result")
    config = DedupConfig.model_validate(
        {"semantic": {"eps": 0.05, "n_clusters": 7, "cluster_size": 30, "keep": "easy", "seed": 9,
                      "kmeans_backend": "sklearn", "kmeans_iterations": 4}}
    )  # fmt: skip
    assert steps.semantic_step(np.zeros((3, 2)), config) == "result"
    assert seen == {"eps": 0.05, "n_clusters": 7, "cluster_size": 30, "keep": "easy", "seed": 9,
                    "kmeans_backend": "sklearn", "kmeans_iterations": 4}  # fmt: skip


def test_the_semantic_step_checks_its_rows_times_itself_and_returns_the_survivors_rows() -> None:
    report = _report()
    with pytest.raises(ValueError, match=r"^3 embeddings for 2 surviving prompts$"):
        steps.dedup_semantic(report, list("abcde"), np.zeros((3, 4)), DedupConfig())
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0]])
    before = time.perf_counter()
    kept = steps.dedup_semantic(report, list("abcde"), embeddings, DedupConfig())
    assert 0 <= report.seconds["semantic"] <= time.perf_counter() - before
    assert kept.tolist() == embeddings.tolist() and report.kept_indices == [0, 3]
    empty = _report(kept_indices=[], kept_texts=[])
    run = lambda fn, e, c: StepResult(0, np.array([]))  # noqa: E731  (a runner that hands back no survivors)
    assert steps.dedup_semantic(
        empty, list("abcde"), np.zeros((0, 2)), DedupConfig(), run_task=run
    ).shape == (0, 2)


def test_removed_pairs_files_keep_the_text_and_the_column_types(tmp_path: Path) -> None:
    report = _report(pairs=[RemovedPair("fuzzy", 4, "café au lait", 0, "Café au lait", 1)])
    jsonl = write_removed_pairs(report, tmp_path / "pairs.jsonl")
    assert "café au lait" in jsonl.read_text(encoding="utf-8")  # UTF-8 as written, not \u escapes
    assert json.loads(jsonl.read_text())["removed_text"] == "café au lait"
    expected = {"step": "string", "removed_index": "int64", "removed_text": "string", "kept_index": "int64",
                "kept_text": "string", "score": "double"}  # fmt: skip
    for name, report_ in (("pairs.parquet", report), ("none.parquet", _report())):
        table = pq.read_table(write_removed_pairs(report_, tmp_path / name))
        assert {
            f.name: str(f.type) for f in table.schema
        } == expected  # a score of 1 stays a float; no rows, same columns
    with pytest.raises(ValueError, match=r"pairs\.csv: removed pairs are written as \.jsonl or \.parquet$"):
        write_removed_pairs(report, tmp_path / "pairs.csv")


def test_the_summary_line_and_the_kept_mask() -> None:
    report = _report(rejects=[])
    assert report.summary() == "dedup: 5 prompts, exact −1, fuzzy −2, 0 rejected → 2 kept"
    mask = kept_mask(report)
    assert mask.dtype == bool and mask.tolist() == [True, False, False, True, False]


def test_shingles_of_empty_and_unnormalised_texts() -> None:
    for unit in ("char", "word"):
        assert shingle_strings("", 3, unit) == [] and shingle_strings("   ", 3, unit) == []
    assert shingle_strings("Ab  C", 3, "char", normalize=False) == ["Ab ", "b  ", "  C"]
    assert shingle_strings("Ab  C", 3, "char") == ["ab ", "b c"]
    assert shingle_strings("Ab  C", 1, "word", normalize=False) == ["Ab", "C"]
    raw, normalised = shingle_sets(["AB", "ab"], 2, normalize=False), shingle_sets(["AB", "ab"], 2)
    assert not np.array_equal(raw[0], raw[1]) and np.array_equal(normalised[0], normalised[1])


def test_exact_jaccard_takes_plain_ints_up_to_2_to_the_64_and_no_sets() -> None:
    # Mixed int64-sized and uint64-only values must not meet as floats (2^64 − 1 and 2^64 − 2 would merge).
    sets = {0: [1, 2], 1: [3, 2**64 - 1], 2: [3, 2**64 - 2]}  # sorted, as the sets are
    pairs = np.array([[1, 2], [0, 1]])
    assert verify_pairs(sets, pairs).tolist() == [1 / 3, 0.0]
    assert verify_pairs({}, np.zeros((0, 2), dtype=np.int64)).tolist() == []


class _Stop(Exception):
    """Raised by a stand-in once it has recorded its arguments."""


def test_fuzzy_duplicates_passes_every_setting_on_and_shares_the_configs_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from megastyle.curate.dedup import fuzzy
    from megastyle.curate.dedup.steps import FuzzyDedupConfig

    seen: dict = {}

    def record(texts, **settings):
        seen.update(settings)
        raise _Stop

    monkeypatch.setattr(fuzzy, "fuzzy_edges", record)
    settings = {"bands": 5, "rows": 3, "ngram": 7, "unit": "word", "seed": 4, "normalize": False,
                "verify": False, "threshold": 0.5, "max_bucket_size": 7, "batch_size": 9, "threads": 2,
                "hasher": object()}  # fmt: skip
    with pytest.raises(_Stop):
        fuzzy.fuzzy_duplicates(["a", "b"], keep="longest", **settings)
    assert seen == settings
    # The function's defaults are the config's, so library and command line dedup alike.
    defaults = {k: p.default for k, p in inspect.signature(fuzzy.fuzzy_duplicates).parameters.items()}
    config = FuzzyDedupConfig().model_dump(exclude={"enabled"})
    assert {k: defaults[k] for k in config} == config


@pytest.mark.parametrize("installed", [True, False])
def test_the_kmeans_backend_follows_what_is_installed(
    monkeypatch: pytest.MonkeyPatch, installed: bool
) -> None:
    from megastyle.curate.dedup import semantic

    real = semantic.importlib.util.find_spec
    monkeypatch.setattr(
        semantic.importlib.util,
        "find_spec",
        lambda name: (object() if installed else None) if name == "faiss" else real(name),
    )
    assert semantic.resolve_kmeans_backend("auto") == ("faiss" if installed else "sklearn")
    assert semantic.resolve_kmeans_backend("sklearn") == "sklearn"
    if installed:
        assert semantic.resolve_kmeans_backend("faiss") == "faiss"
    else:
        with pytest.raises(
            ImportError,
            match=r"^kmeans backend 'faiss' needs faiss-cpu \(pip install 'megastyle\[search\]'\)$",
        ):
            semantic.resolve_kmeans_backend("faiss")
    with pytest.raises(ValueError, match=r"^unknown kmeans backend 'gpu': use 'auto', 'faiss' or 'sklearn'$"):
        semantic.resolve_kmeans_backend("gpu")


def test_deduplicate_embeds_with_the_given_model_runs_every_step_through_run_task_and_times_the_embedding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple] = []

    def embed(texts, model, *, batch_size, device):
        calls.append((list(texts), model, batch_size, device))
        time.sleep(0.05)
        return np.eye(len(texts))

    monkeypatch.setattr(steps, "embed_texts", embed)
    ran: list[str] = []

    def run_task(fn, *args):
        ran.append(fn.__name__)
        if fn is steps.semantic_step:
            time.sleep(0.05)
        return fn(*args)

    config = DedupConfig.model_validate(
        {"semantic": {"enabled": True, "batch_size": 3, "device": "cpu", "model_path": "models/m"}}
    )
    texts = ["one prompt", "another prompt", "one prompt"]
    model = object()
    started = time.perf_counter()
    report = steps.deduplicate(texts, config, embedder=model, run_task=run_task)
    wall = time.perf_counter() - started
    assert calls == [(["one prompt", "another prompt"], model, 3, "cpu")]
    assert ran == ["text_step", "text_step", "semantic_step"]
    assert 0.1 <= report.seconds["semantic"] <= wall  # the embedding's 0.05 s count with the step's 0.05 s
    steps.deduplicate(texts, config)
    assert calls[-1][1] == "models/m"  # no embedder given: the configured model


def test_exact_steps_normalise_by_default_and_follow_the_setting() -> None:
    from megastyle.curate.dedup.exact import exact_duplicates, exact_groups, exact_hash

    assert exact_groups(["A  cat.", "a cat"]) == [[0, 1]]
    assert exact_duplicates(["A  cat.", "a cat"], normalize=False).kept.tolist() == [0, 1]
    with pytest.raises(TypeError, match=r"^exact_hash needs a str, got int$"):
        exact_hash(3)  # type: ignore[arg-type]
    config = DedupConfig.model_validate({"exact": {"normalize": False}, "fuzzy": {"enabled": False}})
    assert steps.deduplicate(["A  cat.", "a cat"], config).kept_indices == [0, 1]


def test_text_steps_pass_the_fuzzy_section_name_rejects_and_record_scores_and_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = DedupConfig.model_validate({"fuzzy": {"bands": 4, "rows": 2, "threshold": 0.5}})
    seen: dict = {}
    real = steps.fuzzy_duplicates
    monkeypatch.setattr(steps, "fuzzy_duplicates", lambda texts, **kw: seen.update(kw) or real(texts, **kw))
    started = time.perf_counter()
    report = steps.dedup_text_steps([7, "  ", "a cat", "A cat"], config)
    wall = time.perf_counter() - started
    assert seen == config.fuzzy.model_dump(exclude={"enabled"})
    assert [(r.item, r.cause) for r in report.rejects] == [
        ("prompt 0", "dedup: not a string but int"),
        ("prompt 1", "dedup: empty prompt"),
    ]
    assert [(p.step, p.removed_index, p.kept_index, p.score) for p in report.pairs] == [("exact", 3, 2, 1.0)]
    assert all(0 <= report.seconds[step] <= wall for step in ("exact", "fuzzy"))


def test_step_results_are_equal_only_when_count_survivors_and_pairs_all_are() -> None:
    from megastyle.curate.dedup.pairs import DuplicatePair

    base = StepResult(3, np.array([0, 1]), [DuplicatePair(2, 0, 1.0)])
    assert base == StepResult(3, np.array([0, 1]), [DuplicatePair(2, 0, 1.0)])
    assert base != StepResult(4, np.array([0, 1]), [DuplicatePair(2, 0, 1.0)])
    assert base != StepResult(3, np.array([0, 2]), [DuplicatePair(2, 0, 1.0)])
    assert base != StepResult(3, np.array([0, 1]), [DuplicatePair(2, 1, 1.0)])
