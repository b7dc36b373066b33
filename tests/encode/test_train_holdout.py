"""Held-out styles: chosen by file (ids or texts) and seeded fraction, never in a training batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from megastyle.config import ConfigError
from megastyle.curate.generate import plan_images, run_generate
from megastyle.data import ShardReader
from megastyle.data.styles import match_styles, read_holdout_file, scan_styles, select_holdout_styles
from megastyle.encode.sampler import PKBatchSampler
from megastyle.encode.train import resolve_split
from megastyle.encode.train_config import TrainEncoderConfig
from megastyle.prompts import sample_content_prompts, sample_style_prompts

STYLES = sample_style_prompts(10, seed=11)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("holdout-data") / "shards"
    plan = plan_images(STYLES, sample_content_prompts(8, seed=12), 4, seed=2)
    # Small shards: the styles and held-out rows spread over several files.
    run_generate(plan, out, size=16, shard_size=9, row_group_size=4, show_progress=False)
    return out


def test_select_holdout_is_seeded_sized_and_order_free() -> None:
    names = [f"style {i}" for i in range(20)]
    picked = select_holdout_styles(names, 0.25, seed=1)
    assert len(picked) == 5 and set(picked) <= set(names)
    assert select_holdout_styles(list(reversed(names)), 0.25, seed=1) == picked
    assert select_holdout_styles(names, 0.25, seed=2) != picked
    assert select_holdout_styles(names, 0.0, seed=1) == []
    assert len(select_holdout_styles(names[:3], 0.01, seed=1)) == 1
    with pytest.raises(ValueError, match="fraction"):
        select_holdout_styles(names, 1.0, seed=1)


def test_holdout_file_formats_and_matching(shards: Path, tmp_path: Path) -> None:
    data = scan_styles([shards])
    (tmp_path / "list.json").write_text(json.dumps([3, STYLES[5]]))
    (tmp_path / "object.json").write_text(json.dumps({"heldout_styles": ["3", STYLES[5]], "seed": 0}))
    (tmp_path / "lines.txt").write_text(f"3\n\n{STYLES[5]}\nno such style\n")
    for name in ("list.json", "object.json", "lines.txt"):
        matched, unmatched = match_styles(read_holdout_file(tmp_path / name), data)
        assert matched == {STYLES[3], STYLES[5]}, name
    assert unmatched == ["no such style"]
    with pytest.raises(FileNotFoundError):
        read_holdout_file(tmp_path / "missing.txt")


def test_heldout_styles_never_reach_a_training_batch(shards: Path, tmp_path: Path) -> None:
    (tmp_path / "bench.txt").write_text(f"1\n{STYLES[7]}\n")
    cfg = TrainEncoderConfig(
        data_dirs=[shards],
        output_dir=tmp_path / "run",
        holdout_styles_file=tmp_path / "bench.txt",
        holdout_fraction=0.25,
        styles_per_batch=3,
        images_per_style=2,
    )
    train_rows, heldout_rows, heldout = resolve_split(cfg)
    assert {STYLES[1], STYLES[7]} < set(heldout) and len(heldout) == 4  # 2 by file + 2 of the other 8
    assert set(heldout_rows.styles) == set(heldout)
    assert not set(train_rows.styles) & set(heldout)
    reader = ShardReader(shards)
    sampler = PKBatchSampler(train_rows.labels, 3, 2, seed=0)
    seen: set[str] = set()
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for batch in sampler:
            for index, _ in batch:
                _, row = train_rows.rows[index]
                seen.add(reader.get_row(int(row), columns=["style"])["style"])  # the shard's own text
    assert seen and not seen & set(heldout)
    assert seen == set(train_rows.styles)


def test_a_holdout_file_matching_nothing_is_an_error(shards: Path, tmp_path: Path) -> None:
    (tmp_path / "other.txt").write_text("a style from another dataset\n")
    cfg = TrainEncoderConfig(data_dirs=[shards], holdout_styles_file=tmp_path / "other.txt")
    with pytest.raises(ConfigError, match="matches"):
        resolve_split(cfg)
