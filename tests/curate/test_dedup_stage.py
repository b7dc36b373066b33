"""The deduplicate stage: exact → fuzzy → semantic on survivors, indices, rejects, reports, config."""

import json

import pyarrow.parquet as pq
import pytest

from megastyle.config import ConfigError, load_config
from megastyle.curate.dedup import DedupConfig, deduplicate, kept_mask, write_removed_pairs
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.prompts.embedding import load_text_embedder


@pytest.fixture(scope="module")
def planted() -> tuple[list, dict[int, tuple[str, int]]]:
    """Distinct prompts plus one planted duplicate per step: index → (step, index of the original)."""
    styles = sample_style_prompts(30, seed=31)
    contents = sample_content_prompts(30, seed=32)
    texts: list = [*styles, *contents]
    plants = {
        "exact": (styles[4], f"  {styles[4].upper()} "),
        "fuzzy": (styles[9], "Artwork: " + styles[9]),
        "semantic": ("A cat sitting on a red chair", "A cat is sitting on a red chair"),
    }
    expected = {}
    for step, (original, copy) in plants.items():
        if original not in texts:
            texts.append(original)
        expected[len(texts)] = (step, texts.index(original))
        texts.append(copy)
    texts += [None, "   "]  # rejected, never deduplicated
    return texts, expected


def _config() -> DedupConfig:
    return DedupConfig.model_validate(
        {"semantic": {"eps": 0.03, "keep": "first", "kmeans_backend": "sklearn"}}
    )


def test_each_step_removes_its_planted_duplicate(planted):
    texts, expected = planted
    report = deduplicate(texts, _config(), embedder=load_text_embedder())
    assert report.removed_counts == {"exact": 1, "fuzzy": 1, "semantic": 1}
    assert {p.removed_index: (p.step, p.kept_index) for p in report.pairs} == expected
    for pair in report.pairs:
        assert pair.removed_text == texts[pair.removed_index] and pair.kept_text == texts[pair.kept_index]
    assert [r.item for r in report.rejects] == [f"prompt {len(texts) - 2}", f"prompt {len(texts) - 1}"]
    assert "not a string" in report.rejects[0].cause and "empty" in report.rejects[1].cause
    removed = {p.removed_index for p in report.pairs}
    assert report.kept_indices == [i for i in range(len(texts) - 2) if i not in removed]
    assert report.kept_texts == [texts[i] for i in report.kept_indices]
    assert kept_mask(report).sum() == len(report.kept_indices)
    assert report.summary().endswith(f"→ {len(report.kept_indices)} kept")
    again = deduplicate(texts, _config(), embedder=load_text_embedder())
    assert again.pairs == report.pairs and again.kept_indices == report.kept_indices


def test_disabled_steps_are_skipped(planted):
    texts, _ = planted
    config = DedupConfig.model_validate({"fuzzy": {"enabled": False}, "semantic": {"enabled": False}})
    report = deduplicate(texts, config)
    assert report.removed_counts == {"exact": 1}
    assert [p.step for p in report.pairs] == ["exact"]
    assert set(report.seconds) == {"exact"}


def test_removed_pairs_are_written_for_inspection(planted, tmp_path):
    texts, _ = planted
    report = deduplicate(texts, DedupConfig.model_validate({"semantic": {"enabled": False}}))
    lines = write_removed_pairs(report, tmp_path / "pairs.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(r["step"], r["removed_index"], r["kept_index"]) for r in rows] == [
        (p.step, p.removed_index, p.kept_index) for p in report.pairs
    ]
    table = pq.read_table(write_removed_pairs(report, tmp_path / "sub" / "pairs.parquet"))
    assert table.column_names == ["step", "removed_index", "removed_text", "kept_index", "kept_text", "score"]
    assert table.column("removed_text").to_pylist() == [p.removed_text for p in report.pairs]
    with pytest.raises(ValueError, match=r"\.jsonl or \.parquet"):
        write_removed_pairs(report, tmp_path / "pairs.csv")


def test_config_round_trips_through_toml_and_rejects_unknown_keys(tmp_path):
    config = DedupConfig.model_validate({"fuzzy": {"ngram": 5, "unit": "char"}, "semantic": {"eps": 0.02}})
    path = tmp_path / "dedup.toml"
    path.write_text(config.to_toml())
    assert load_config(DedupConfig, path) == config
    assert load_config(DedupConfig, overrides=["--fuzzy.bands", "16"]).fuzzy.bands == 16
    with pytest.raises(ConfigError, match=r"fuzzy\.shingle"):
        load_config(DedupConfig, overrides={"fuzzy": {"shingle": 3}})
    with pytest.raises(ConfigError, match=r"semantic\.keep"):
        load_config(DedupConfig, overrides={"semantic": {"keep": "hardest"}})
