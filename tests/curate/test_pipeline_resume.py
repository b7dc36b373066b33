"""``megastyle curate`` end to end: stage outputs, rejects, summary, and exact resume after kill -9."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_watch import wait_for_file

from megastyle.curate.config import CurateConfig
from megastyle.curate.pipeline import CurateStateError, run_curate
from megastyle.data import ShardReader, list_shards
from megastyle.quickstart.pools import make_procedural_pools


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    return make_procedural_pools(tmp_path_factory.mktemp("pools"), 24, 24, seed=5, size=64)


def _config(run_dir: Path, pools, **overrides) -> CurateConfig:
    data = {
        "run_dir": run_dir,
        "seed": 3,
        "workers": 2,
        "progress": False,
        "pools": {
            "style": [{"path": pools.style_dir, "role": "style"}],
            "content": [{"path": pools.content_dir, "role": "content", "require_caption": True}],
        },
        "caption": {"batch_size": 4, "part_size": 8},
        "balance": {"style": {"target": 10}, "content": {"target": 12}},
        "combine": {"contents_per_style": 3},
        "generate": {"image_size": 32, "batch_size": 2, "staging_shard_rows": 4},
        "write": {"shard_size": 7, "row_group_size": 5},
    }
    data.update(overrides)
    return CurateConfig.model_validate(data)


def _dataset_digest(run_dir: Path) -> list[tuple[str, str, str, str]]:
    reader = ShardReader(run_dir / "dataset")
    return [(r.id, r.style, r.content, hashlib.sha256(r.image).hexdigest()) for r in reader]


@pytest.fixture(scope="module")
def reference(pools, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference")
    summary = run_curate(_config(run_dir, pools))
    return run_dir, summary


def test_a_full_run_writes_every_stage_and_a_consistent_dataset(reference):
    run_dir, summary = reference
    stages = summary["stages"]
    assert (
        stages["ingest"]["style"]["items"] == 25
    )  # 24 images + the planted corrupt file, which fails at caption
    assert stages["ingest"]["content"]["rejected"] >= 1  # the planted empty caption
    rows = _dataset_digest(run_dir)
    styles = {style for _, style, _, _ in rows}
    assert len(rows) == stages["write"]["rows"] == len(styles) * 3
    assert len({row_id for row_id, *_ in rows}) == len(rows)
    assert len(styles) == stages["balance"]["style"]["n_selected"] <= 10
    assert (
        stages["write"]["shards"] == len(list_shards(run_dir / "dataset")) >= 1
    )  # the last shard counts too
    causes = [json.loads(line)["cause"] for line in (run_dir / "rejects.jsonl").read_text().splitlines()]
    assert any("zz_corrupt" in line or "decode" in line.lower() for line in causes) or any(
        "caption[style]" in c for c in causes
    )
    card = (run_dir / "dataset" / "README.md").read_text()
    assert "## Stages" in card and "heuristic" in card and "procedural" in card
    assert (run_dir / "dataset" / "contact_sheet.png").exists()


def test_rerunning_a_finished_run_does_nothing(reference, pools):
    run_dir, _ = reference
    before = {p: p.stat().st_mtime_ns for p in (run_dir / "dataset").glob("train-*.parquet")}
    run_curate(_config(run_dir, pools, resume=True))
    after = {p: p.stat().st_mtime_ns for p in (run_dir / "dataset").glob("train-*.parquet")}
    assert before == after


def test_existing_state_needs_resume(reference, pools):
    run_dir, _ = reference
    with pytest.raises(CurateStateError, match="--resume"):
        run_curate(_config(run_dir, pools))


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_gives_identical_rows(reference, pools, tmp_path):
    reference_dir, _ = reference
    expected = _dataset_digest(reference_dir)
    run_dir = tmp_path / "killed"
    config_path = tmp_path / "curate.toml"
    config_path.write_text(_config(run_dir, pools).to_toml())  # a file without a [curate] table is read whole
    start = [sys.executable, "-m", "megastyle.cli.app", "curate", "--config", str(config_path)]
    command = [*start, "--resume"]  # every later invocation continues the run the first one started
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    rng = random.Random(1234)
    # Kill the whole process group (workers too) shortly after each milestone, at a random delay,
    # so kills land inside captioning, inside rendering and inside the final write.
    milestones = [
        (run_dir / "stages" / "02_caption" / "style", "part-*.parquet"),
        (run_dir / "stages" / "06_generate" / "shards", "train-*.parquet"),
        (run_dir / "dataset", "train-*.parquet"),
    ]
    kills = 0
    for number, milestone in enumerate(milestones):
        process = subprocess.Popen(command if number else start, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
        if wait_for_file(*milestone, process):
            time.sleep(rng.uniform(0.0, 0.3))
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                kills += 1
        process.wait(timeout=120)
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 2, f"only {kills} kills landed before the run finished"
    assert _dataset_digest(run_dir) == expected


def test_filter_stage_drops_styles_from_the_final_dataset(pools, tmp_path):
    # An absolute cut above every score drops every style with 2+ images: nothing may leak through.
    cfg = _config(
        tmp_path / "filtered", pools, filter={"enabled": True, "mode": "absolute", "threshold": 1.01}
    )
    summary = run_curate(cfg)
    assert summary["stages"]["filter"]["dropped"] == summary["stages"]["filter"]["styles"] > 0
    assert summary["stages"]["write"]["rows"] == 0
    dropped = json.loads((tmp_path / "filtered" / "stages" / "07_filter" / "dropped.json").read_text())
    assert all("reason" in d and d["reason"] for d in dropped)


def _finished_at(run_dir: Path) -> dict[str, float]:
    return {
        folder.name: json.loads((folder / "manifest.json").read_text())["finished_at"]
        for folder in sorted((run_dir / "stages").iterdir())
        if (folder / "manifest.json").is_file()
    }


@pytest.mark.parametrize(
    ("change", "first_rerun"),
    [
        ({"balance": {"style": {"target": 8}, "content": {"target": 12}}}, "04_balance"),
        ({"combine": {"contents_per_style": 2}}, "05_combine"),
        ({"generate": {"image_size": 48, "batch_size": 2, "staging_shard_rows": 4}}, "06_generate"),
        ({"write": {"shard_size": 5, "row_group_size": 5}}, "08_write"),
    ],
    ids=["balance", "combine", "generate", "write"],
)
def test_a_changed_section_reruns_exactly_its_stage_and_those_after(
    reference, pools, tmp_path, change, first_rerun
):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(reference[0], run_dir)  # a finished run of the reference config
    before = _finished_at(run_dir)
    summary = run_curate(_config(run_dir, pools, resume=True, **change))
    after = _finished_at(run_dir)
    assert set(after) == set(before) == {f.name for f in (run_dir / "stages").iterdir()}
    for stage in sorted(before):
        if stage < first_rerun:
            assert after[stage] == before[stage], (
                f"{stage} ran again, though nothing before {first_rerun} changed"
            )
        else:
            assert after[stage] > before[stage], f"{stage} was reused, though {first_rerun} changed"
    assert summary["stages"]["write"]["rows"] == len(ShardReader(run_dir / "dataset"))
