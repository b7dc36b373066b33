"""The whole quickstart at a small scale: curate → train encoder → retrieval benchmark → style transfer → report."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from megastyle.quickstart.config import QuickstartConfig
from megastyle.quickstart.run import run_quickstart

EXPERIMENTS = Path(__file__).resolve().parents[1] / "benchmarks" / "experiments"
VARIANTS_SCRIPT = EXPERIMENTS / "bench_encoder_variants.py"
LEAKAGE_SCRIPT = EXPERIMENTS / "bench_leakage_runs.py"
LOO_SCRIPT = EXPERIMENTS / "bench_retrieval_loo.py"
SPLIT_SCRIPT = EXPERIMENTS / "bench_split_runs.py"


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    """One small quickstart run (every stage) and its results."""
    tmp_path = tmp_path_factory.mktemp("quickstart")
    cfg = QuickstartConfig(
        output_dir=tmp_path / "qs",
        style_pool_images=24,
        content_pool_images=24,
        num_styles=12,
        num_content_prompts=16,
        contents_per_style=4,
        image_size=64,
        encoder_epochs=2,
        encoder_caption_epochs=1,
        holdout_fraction=0.34,
        progress=True,  # not a terminal under pytest: log lines only, into quickstart.log
    )
    return tmp_path, run_quickstart(cfg)


@pytest.mark.slow
def test_quickstart_runs_every_stage_and_reports_them(quickstart_run):
    tmp_path, results = quickstart_run
    assert results["rows"] == results["style_prompts"] * 4
    encoder = results["encoder"]
    assert encoder["heldout_styles"] >= 2 and encoder["train_steps"] > 0
    assert set(encoder["retrieval"]) == set(encoder["leakage"]) == {
        "megastyle-tiny (SSCL)", "same tower, untrained", "colour histogram", "Gram (random conv)",
        "same tower, caption-trained",
    }  # fmt: skip
    caption_log = (tmp_path / "qs" / "encoder_caption" / "train_log.jsonl").read_text().splitlines()
    steps = [r for r in map(json.loads, caption_log) if r["event"] == "step"]
    assert steps and all(r["supcon"] == 0 and r["siglip"] > 0 for r in steps)  # the CLIP-style comparator
    assert 2 * len(steps) == encoder["train_steps"]  # its own schedule: 1 epoch against the encoder's 2
    for metrics in encoder["retrieval"].values():
        assert 0.0 <= metrics["recall@1"] <= 1.0
    # The trained encoder minus each other one, per metric, with its interval.
    sscl = encoder["retrieval"]["megastyle-tiny (SSCL)"]
    for d in encoder["paired"]:
        assert d["encoder"] == "megastyle-tiny (SSCL)" and d["ci95"][0] <= d["difference"] <= d["ci95"][1]
        other = encoder["retrieval"][d["other"]]
        assert d["difference"] == pytest.approx(sscl[d["metric"]] - other[d["metric"]])
    assert {d["other"] for d in encoder["paired"]} == set(encoder["retrieval"]) - {"megastyle-tiny (SSCL)"}
    # Matched leakage: the trained encoder minus each other one over the same same-content pairs.
    leakage_file = json.loads((tmp_path / "qs" / "retrieval" / "leakage.json").read_text())
    as_json = json.loads(json.dumps({"encoders": encoder["leakage"], "paired": encoder["leakage_paired"]}))
    assert leakage_file == as_json
    assert {d["other"] for d in encoder["leakage_paired"]} == set(encoder["leakage"]) - {
        "megastyle-tiny (SSCL)"
    }
    for d in encoder["leakage_paired"]:
        assert d["pairs"] > 0 and d["ci95"][0] <= d["difference"] <= d["ci95"][1]
    # The controlled grid: every held-out style with every content prompt of the dataset.
    grid = encoder["leakage_grid"]
    assert grid["images"] == grid["styles"] * grid["contents"] and grid["styles"] == encoder["heldout_styles"]
    assert set(grid["matched_auc"]) == set(encoder["leakage"])
    assert {d["other"] for d in grid["paired"]} == set(encoder["leakage"]) - {"megastyle-tiny (SSCL)"}
    assert all(
        d["pairs"] == grid["contents"] * grid["styles"] * (grid["styles"] - 1) // 2 for d in grid["paired"]
    )
    grid_file = json.loads((tmp_path / "qs" / "retrieval" / "leakage_grid.json").read_text())
    assert grid_file == json.loads(json.dumps(grid))
    assert results["transfer"] == {"images": 6, "untrained": True}
    report = (tmp_path / "qs" / "report.html").read_text()
    summary = report[: report.index("1. Curation</h2>")]  # the summary box comes before every section
    for text in ("What ran:", "procedural: a deterministic offline renderer", "not a vision-language model",
                 "random weights", "Headline numbers", "style retrieval", "Where the outputs are",
                 'href="curate/rejects.jsonl"', 'href="quickstart.log"'):  # fmt: skip
        assert text in summary, text
    for heading in ("1. Curation", "2. Encoder and style retrieval", "3. Style transfer", "Content leakage",
                    "Controlled leakage grid", "Rejected items: 2"):  # fmt: skip
        assert heading in report, heading
    assert '{"style"' not in report  # stage numbers as sentences, not raw JSON
    pages = sorted((tmp_path / "qs" / "report_files").glob("contact_sheet_*.png"))
    assert pages and all(f"report_files/{p.name}" in report for p in pages)
    log = (tmp_path / "qs" / "quickstart.log").read_text()
    for line in ("pools: render: started", "generate [procedural]: started", "train-encoder: started",
                 "leakage grid: render: started", "quickstart: done in"):  # fmt: skip
        assert line in log, line
    heldout = json.loads((tmp_path / "qs" / "benchmark" / "heldout_styles.json").read_text())
    assert heldout  # the benchmark's held-out styles were written for train-encoder to exclude


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_script(path: Path, monkeypatch, args: list[str]) -> None:
    module = _load_script(path)
    monkeypatch.setattr(sys, "argv", [path.name, *args])
    module.main()


def _run_twice_with_markdown(path: Path, run: Path, tmp_path: Path, monkeypatch, capsys) -> str:
    """Run a pooling script on ``run`` twice over with ``--markdown``; its stdout, checked equal to the file."""
    markdown = tmp_path / f"{path.stem}.md"
    _run_script(path, monkeypatch, [str(run), str(run), "--markdown", str(markdown)])
    text = capsys.readouterr().out
    assert text == markdown.read_text() + "\n"  # print adds one newline
    return text


@pytest.mark.slow
def test_variants_script_reproduces_the_quickstart_row_records_failures_and_resumes(
    quickstart_run, tmp_path, monkeypatch, capsys
):
    run_dir, results = quickstart_run
    run = run_dir / "qs"
    variants = tmp_path / "variants.toml"
    variants.write_text(
        '[[variant]]\nname = "default"\n\n'
        '[[variant]]\nname = "bad patch"\ntiny = { patch_size = 7 }\n\n'  # 64 px is not a multiple of 7
        '[[variant]]\nname = "one epoch"\nepochs = 1\n'
    )
    out = tmp_path / "out"
    _run_script(VARIANTS_SCRIPT, monkeypatch, [str(run), "--variants", str(variants), "--out", str(out)])
    table = capsys.readouterr().out
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by_name = {r.get("variant", r["key"]): r for r in records}
    assert set(by_name) == {"baselines", "default", "bad patch", "one epoch"}

    # "default" is the quickstart's own training: the same scores as the quickstart's SSCL row.
    quickstart_row = results["encoder"]["retrieval"]["megastyle-tiny (SSCL)"]
    for metric, value in by_name["default"]["scores"].items():
        assert value == pytest.approx(quickstart_row[metric], abs=1e-6), metric
    assert by_name["baselines"]["scores"]["colour histogram"]["mAP"] == pytest.approx(
        results["encoder"]["retrieval"]["colour histogram"]["mAP"], abs=1e-6
    )
    assert "patch_size" in by_name["bad patch"]["error"] and "scores" not in by_name["bad patch"]
    assert by_name["one epoch"]["steps"] < by_name["default"]["steps"]
    assert "failed:" in table and "| default | (quickstart) |" in table

    # A rerun finds every result on disk: nothing is trained or appended again.
    _run_script(VARIANTS_SCRIPT, monkeypatch, [str(run), "--variants", str(variants), "--out", str(out)])
    assert len((out / "results.jsonl").read_text().splitlines()) == len(records)


@pytest.mark.slow
def test_leakage_script_reproduces_the_quickstart_and_pools_runs(
    quickstart_run, tmp_path, monkeypatch, capsys
):
    run_dir, results = quickstart_run
    run = run_dir / "qs"
    text = _run_twice_with_markdown(LEAKAGE_SCRIPT, run, tmp_path, monkeypatch, capsys)
    # The saved encoders, rebuilt untrained tower and baselines give the quickstart's own leakage numbers.
    for name, values in results["encoder"]["leakage"].items():
        row = f"| {run} | {name} | {values['content_leakage_auc']:.3f} ("
        assert row in text
        assert f"| {values['content_leakage_matched_auc']:.3f} (" in text.split(row)[1].splitlines()[0]
    for d in results["encoder"]["leakage_paired"]:
        assert f"| {run} | {d['other']} | {d['difference']:+.3f} |" in text
        # The same run twice pools to the same mean difference (only the clusters double).
        assert f"| pooled (2 runs) | {d['other']} | {d['difference']:+.3f} |" in text
    with pytest.raises(SystemExit, match="not a quickstart output folder"):
        _run_script(LEAKAGE_SCRIPT, monkeypatch, [str(tmp_path)])
    # --grid renders the run's grid with its own backend and settings: the quickstart's grid numbers.
    _run_script(LEAKAGE_SCRIPT, monkeypatch, [str(run), "--grid"])
    text = capsys.readouterr().out
    assert "style × content grid" in text
    for d in results["encoder"]["leakage_grid"]["paired"]:
        assert f"| {run} | {d['other']} | {d['difference']:+.3f} |" in text

    # --extra-styles widens the grid with styles of another run's dataset that this run never held.
    from megastyle.curate.generate import plan_images, run_generate
    from megastyle.prompts import sample_content_prompts, sample_style_prompts

    other = tmp_path / "other"
    fresh = sample_style_prompts(3, seed=77)
    plan = plan_images(fresh, sample_content_prompts(4, seed=78), 2, seed=1)
    run_generate(plan, other / "curate" / "dataset", size=32, shard_size=8, show_progress=False)
    args = [str(run), "--grid", "--extra-styles", "2", "--extra-styles-from", str(other)]
    _run_script(LEAKAGE_SCRIPT, monkeypatch, args)
    text = capsys.readouterr().out
    assert "and 2 unseen styles of other runs" in text
    from megastyle.bench.retrieval import RetrievalBenchmark
    from megastyle.quickstart.encoder import grid_prompts

    styles, contents = grid_prompts(RetrievalBenchmark.load(run / "benchmark"), run / "curate" / "dataset")
    n = len(styles) + 2  # every pair of two of the n styles shares every content
    assert f"| {run} | megastyle-tiny (SSCL) |" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| {run} | megastyle-tiny (SSCL) |"))
    assert row.rstrip(" |").endswith(f"| {len(contents) * n * (n - 1) // 2}")
    module = _load_script(LEAKAGE_SCRIPT)
    chosen = module.unseen_styles(run, [other, run], 2, seed=0)
    assert len(set(chosen)) == 2 and set(chosen) <= set(fresh)  # this run's own styles never count
    with pytest.raises(SystemExit, match="hold only 3 unseen styles"):
        module.unseen_styles(run, [other], 4, seed=0)
    with pytest.raises(SystemExit):  # argparse: --extra-styles needs --grid
        _run_script(LEAKAGE_SCRIPT, monkeypatch, [str(run), "--extra-styles", "2"])


@pytest.mark.slow
def test_leave_one_out_script_matches_the_trainers_heldout_eval(
    quickstart_run, tmp_path, monkeypatch, capsys
):
    run_dir, _ = quickstart_run
    run = run_dir / "qs"
    text = _run_twice_with_markdown(LOO_SCRIPT, run, tmp_path, monkeypatch, capsys)
    # The trainer's last held-out eval is the same leave-one-out Recall@1 of the trained encoder.
    summary = json.loads((run / "encoder" / "train_summary.json").read_text())
    final = summary["evals"][-1]
    queries = int(final["images"])
    assert f"| {run} | megastyle-tiny (SSCL) | {final['recall_at_1']:.3f} | {queries} |" in text
    rows = [line for line in text.splitlines() if line.startswith(f"| {run} | colour histogram |")]
    assert len(rows) == 4  # the run twice: two Recall@1 rows and two difference rows
    difference = rows[-1].split(" | ")[2]
    assert f"| pooled (2 runs) | colour histogram | {difference} |" in text
    with pytest.raises(SystemExit, match="not a quickstart output folder"):
        _run_script(LOO_SCRIPT, monkeypatch, [str(tmp_path)])


@pytest.mark.slow
def test_leave_one_out_script_scores_an_added_encoder_against_the_others(
    quickstart_run, tmp_path, monkeypatch, capsys
):
    run_dir, _ = quickstart_run
    run = run_dir / "qs"
    copy = ["--add", "copy", str(run), str(run / "encoder" / "encoder")]
    _run_script(LOO_SCRIPT, monkeypatch, [str(run), *copy, "--reference", "copy"])
    text = capsys.readouterr().out
    recall_table = text.split("minus each encoder")[0]
    rows = {
        line.split(" | ")[1]: line.split(" | ")[2]
        for line in recall_table.splitlines()
        if line.startswith(f"| {run} |")
    }
    # The trained encoder loaded again under another name: same Recall@1, and no query differs.
    trained = "megastyle-tiny (SSCL)"
    assert rows["copy"] == rows[trained]
    assert f"| {run} | {trained} | +0.000 | [+0.000, +0.000] | 0 / 0 |" in text
    assert "copy minus each encoder, query by query (positive: copy finds more)" in text
    with pytest.raises(SystemExit, match="is not one of the runs given"):
        _run_script(LOO_SCRIPT, monkeypatch, [str(run), "--add", "copy", str(tmp_path), str(tmp_path)])
    with pytest.raises(SystemExit, match="no encoder named 'absent'"):
        _run_script(LOO_SCRIPT, monkeypatch, [str(run), "--reference", "absent"])


@pytest.mark.slow
def test_split_script_reproduces_the_quickstart_table_and_paired_differences(
    quickstart_run, tmp_path, monkeypatch, capsys
):
    from megastyle.bench.report import format_interval

    run_dir, results = quickstart_run
    run = run_dir / "qs"
    text = _run_twice_with_markdown(SPLIT_SCRIPT, run, tmp_path, monkeypatch, capsys)
    rows = [line for line in text.splitlines() if line.startswith(f"| {run} |")]
    assert len(rows) == 2 and rows[0] == rows[1]  # the same saved encoders score the same twice
    row = rows[0].split(" | ")
    table = results["encoder"]["retrieval"]
    for column, name in enumerate(
        ["megastyle-tiny (SSCL)", "colour histogram", "Gram (random conv)"], start=1
    ):
        assert row[column] == f"{table[name]['mAP']:.3f} / {table[name]['map@1']:.3f}"
    paired = {(d["other"], d["metric"]): d for d in results["encoder"]["paired"]}
    histogram_map = paired[("colour histogram", "mAP")]
    expected = f"{histogram_map['difference']:+.3f} {format_interval(histogram_map['ci95'], signed=True)}"
    assert row[5] == expected  # the quickstart's own paired interval, recomputed from the saved encoders
    with pytest.raises(SystemExit, match="not a quickstart output folder"):
        _run_script(SPLIT_SCRIPT, monkeypatch, [str(tmp_path)])
