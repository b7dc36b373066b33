"""``megastyle curate`` on a real local Ray cluster (127.0.0.1): same rows as the local engine,
a worker killed mid-generate, and a driver killed mid-generate then resumed."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from process_watch import wait_for_file

ray = pytest.importorskip("ray")

from megastyle.curate.config import CurateConfig  # noqa: E402
from megastyle.curate.executor.ray import RayEngine, RaySettings  # noqa: E402
from megastyle.curate.pipeline import run_curate  # noqa: E402
from megastyle.data import ShardReader  # noqa: E402
from megastyle.quickstart.config import QuickstartConfig  # noqa: E402
from megastyle.quickstart.pools import make_procedural_pools  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
LOCAL_CLUSTER = {"num_cpus": 2, "node_ip_address": "127.0.0.1"}


@pytest.fixture(scope="module")
def ray_engine():
    engine = RayEngine(RaySettings(**LOCAL_CLUSTER), default_workers=2)
    engine.connect()
    assert [node["NodeManagerAddress"] for node in ray.nodes()] == ["127.0.0.1"]
    yield engine
    engine.close()
    assert not ray.is_initialized()


def _digest(run_dir: Path) -> list[tuple[str, str, str, str]]:
    reader = ShardReader(run_dir / "dataset")
    return [(r.id, r.style, r.content, hashlib.sha256(r.image).hexdigest()) for r in reader]


def _rejects(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "rejects.jsonl").read_text().splitlines()]


def test_quickstart_curation_on_ray_equals_the_local_engine_row_for_row(ray_engine, tmp_path):
    # The quickstart's own curate config, at a size that keeps the test short.
    quick = QuickstartConfig(output_dir=tmp_path / "qs", style_pool_images=32, content_pool_images=32,
                             num_styles=12, num_content_prompts=16, contents_per_style=4, image_size=64,
                             progress=False)  # fmt: skip
    pools = make_procedural_pools(tmp_path / "pools", quick.style_pool_images, quick.content_pool_images,
                                  seed=quick.seed, size=64, palette_family_size=quick.palette_family_size)  # fmt: skip
    base = quick.curate_config(pools)
    local = base.model_copy(update={"run_dir": tmp_path / "local"})
    on_ray = base.model_copy(update={"run_dir": tmp_path / "ray", "engine": "ray"})
    run_curate(local)
    summary = run_curate(on_ray, engine=ray_engine)

    rows = _digest(tmp_path / "ray")
    assert rows == _digest(tmp_path / "local")
    assert len(rows) == summary["stages"]["write"]["rows"] == 12 * 4
    assert len({r[0] for r in rows}) == len(rows)  # every row exactly once
    # The planted bad pool items are rejects on both engines, for the same causes.
    assert _rejects(tmp_path / "ray") == _rejects(tmp_path / "local") != []
    for kind in ("style", "content"):
        gallery = f"stages/04_balance/{kind}_prompts.txt"
        assert (tmp_path / "ray" / gallery).read_text() == (tmp_path / "local" / gallery).read_text()
    card = (tmp_path / "ray" / "dataset" / "README.md").read_text()
    assert "ray" in card


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small curate config and its local-engine dataset (the reference)."""
    root = tmp_path_factory.mktemp("small")
    pools = make_procedural_pools(root / "pools", 24, 24, seed=5, size=64)

    def config(run_dir: Path, **overrides) -> CurateConfig:
        data = {
            "run_dir": run_dir, "seed": 3, "workers": 2, "progress": False,
            "pools": {"style": [{"path": pools.style_dir, "role": "style"}],
                      "content": [{"path": pools.content_dir, "role": "content", "require_caption": True}]},
            "caption": {"batch_size": 4, "part_size": 8},
            "balance": {"style": {"target": 10}, "content": {"target": 12}},
            "combine": {"contents_per_style": 3},
            "generate": {"image_size": 32, "batch_size": 2, "staging_shard_rows": 4},
            "write": {"shard_size": 7, "row_group_size": 5},
            "ray": LOCAL_CLUSTER,
        }  # fmt: skip
        data.update(overrides)
        return CurateConfig.model_validate(data)

    run_curate(config(root / "reference"))
    return config, root / "reference"


def _with_gallery_of(reference: Path, run_dir: Path) -> Path:
    """A run folder holding ``reference``'s finished stages up to combine: a resume starts at generate."""
    for stage in sorted((reference / "stages").iterdir())[:5]:
        shutil.copytree(stage, run_dir / "stages" / stage.name)
    return run_dir


def test_a_worker_killed_during_generate_costs_nothing(ray_engine, small, tmp_path):
    config, reference = small
    expected = _digest(reference)
    run_dir = _with_gallery_of(reference, tmp_path / "run")
    marker = tmp_path / "died.pid"
    generate = {"image_size": 32, "batch_size": 2, "staging_shard_rows": 4,
                "backend": "megastyle.testing.faults:ProceduralThatDiesOnce",
                "options": {"marker": str(marker), "die_on_call": 3}}  # fmt: skip
    # The filter runs too (mapped over the staging shards), with a cut that keeps every style.
    keep_all = {"enabled": True, "mode": "absolute", "threshold": -1.0}
    cfg = config(run_dir, engine="ray", generate=generate, filter=keep_all, resume=True)
    summary = run_curate(cfg, engine=ray_engine)
    assert summary["stages"]["caption"]["style"]["captioned"] > 0  # stages 1–5 reused, not redone
    assert summary["stages"]["filter"]["styles"] == 10 and summary["stages"]["filter"]["dropped"] == 0

    dead_pid = int(marker.read_text())  # a render worker really was SIGKILLed ...
    with pytest.raises(ProcessLookupError):
        os.kill(dead_pid, 0)
    rows = _digest(run_dir)  # ... and every planned row is there exactly once
    assert rows == expected
    assert summary["stages"]["generate"]["rendered"] == summary["stages"]["generate"]["planned"] == len(rows)
    assert summary["stages"]["generate"]["rejected"] == 0


def test_a_driver_killed_during_generate_resumes_on_ray_without_loss_or_repeats(ray_engine, small, tmp_path):
    config, reference = small
    expected = _digest(reference)
    run_dir = _with_gallery_of(reference, tmp_path / "run")
    # The driver joins the running cluster by its address, as a job on a shared cluster would;
    # one row per call keeps shards coming after the first, so the kill lands mid-stage.
    address = ray.get_runtime_context().gcs_address
    generate = {"image_size": 32, "batch_size": 1, "staging_shard_rows": 4}
    path = tmp_path / "curate.toml"
    path.write_text(config(run_dir, engine="ray", generate=generate, ray={"address": address}).to_toml())
    command = [sys.executable, "-m", "megastyle.cli.app", "curate", "--config", str(path), "--resume"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    shards = run_dir / "stages" / "06_generate" / "shards"
    landed = wait_for_file(shards, "train-*.parquet", driver, timeout=300)
    if landed:
        os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=60)
    assert landed, "the driver finished or failed before its first generate shard"
    written_before = len(list(shards.glob("train-*.parquet")))
    assert not (run_dir / "stages" / "06_generate" / "manifest.json").exists()

    summary = run_curate(config(run_dir, engine="ray", generate=generate, resume=True), engine=ray_engine)
    assert _digest(run_dir) == expected
    assert summary["stages"]["generate"]["rendered"] == len(expected)
    assert written_before >= 1
