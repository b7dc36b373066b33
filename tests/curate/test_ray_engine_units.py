"""The Ray engine's pieces that need no cluster: ordering, duplicates, settings and config wiring."""

import pickle

import pytest

from megastyle.curate.config import CurateConfig
from megastyle.curate.executor import LocalEngine, WorkerSpec, make_engine
from megastyle.curate.executor.ray import RayEngine, RaySettings, _in_order
from megastyle.plugins import load_object


def _stream(order):
    return ((i, pickle.dumps(f"r{i}")) for i in order)


def test_results_come_back_in_input_order_whatever_order_they_finish():
    assert list(_in_order(_stream([2, 0, 3, 1]), 4, pickle.loads)) == ["r0", "r1", "r2", "r3"]


def test_a_retried_batch_that_arrives_twice_is_taken_once():
    assert list(_in_order(_stream([0, 1, 1, 0, 2]), 3, pickle.loads)) == ["r0", "r1", "r2"]


def test_a_batch_that_never_arrives_is_an_error_naming_it():
    with pytest.raises(RuntimeError, match=r"1 of 3 batches never came back \(first: \[1\]\)"):
        list(_in_order(_stream([0, 2]), 3, pickle.loads))


def test_results_stream_as_soon_as_the_prefix_is_complete():
    seen = []

    def source():
        for i in [0, 2, 1]:
            seen.append(i)
            yield i, pickle.dumps(i)

    out = _in_order(source(), 3, pickle.loads)
    assert next(out) == 0 and seen == [0]  # the first result does not wait for the rest


def test_curate_config_selects_ray_with_its_settings_from_toml_and_cli(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[curate]\nengine = "ray"\n[curate.ray]\naddress = "auto"\n[curate.generate]\nnum_gpus = 1\n'
    )
    from megastyle.config import load_config

    cfg = load_config(CurateConfig, path, overrides=["--ray.dedup_cpus", "4", "--generate.workers", "8"])
    assert cfg.engine == "ray" and cfg.ray.address == "auto" and cfg.ray.dedup_cpus == 4
    assert cfg.generate.spec() == WorkerSpec(8, 1.0, 1.0)
    engine = make_engine(cfg.engine, cfg.workers, cfg.ray)
    assert isinstance(engine, RayEngine) and engine.settings.address == "auto"  # nothing started yet


def test_unknown_ray_setting_is_an_error_naming_it():
    with pytest.raises(ValueError, match="adress"):
        RaySettings.model_validate({"adress": "auto"})


def test_worker_spec_rejects_nonsense():
    with pytest.raises(ValueError, match="workers"):
        WorkerSpec(0)
    with pytest.raises(ValueError, match="num_gpus"):
        WorkerSpec(1, 1.0, -1.0)


def test_local_engine_honours_the_per_stage_worker_count_and_run_task():
    engine = LocalEngine(workers=2)
    out = list(engine.map_batches(_double, [[1], [2], [3]], None, WorkerSpec(workers=1)))
    assert out == [[2], [4], [6]]
    assert engine.run_task(sum, [1, 2, 3]) == 6


def _double(batch, _resource):
    return [2 * x for x in batch]


def test_import_path_backends_load_and_bad_paths_say_why():
    assert load_object("megastyle.testing.faults:ProceduralThatDiesOnce").__name__ == "ProceduralThatDiesOnce"
    with pytest.raises(ValueError, match="no attribute 'Nope'"):
        load_object("megastyle.testing.faults:Nope")
    with pytest.raises(ValueError, match="cannot import module"):
        load_object("megastyle.no_such_module:X")


def test_the_ray_engine_without_ray_installed_says_how_to_get_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    with pytest.raises(ValueError, match=r"megastyle\[ray\]"):
        make_engine("ray", 2)


def test_quickstart_passes_its_engine_to_curation(tmp_path):
    from megastyle.quickstart.config import QuickstartConfig
    from megastyle.quickstart.pools import make_procedural_pools

    pools = make_procedural_pools(tmp_path, 2, 2, size=32, plant_bad_items=False)
    assert QuickstartConfig(engine="ray").curate_config(pools).engine == "ray"
    assert QuickstartConfig().curate_config(pools).engine == "local"
