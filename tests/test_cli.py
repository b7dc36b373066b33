"""The command line: every command is listed, configs and overrides reach the job, bad input is named."""

import json

from typer.testing import CliRunner

from megastyle.cli.app import app
from megastyle.data import ShardReader

runner = CliRunner()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("quickstart", "render", "inspect"):
        assert name in result.output


def test_command_help_lists_config_fields():
    result = runner.invoke(app, ["quickstart", "--help"])
    assert result.exit_code == 0
    assert "--num-styles" in result.output and "--image-size" in result.output


def test_print_config_applies_file_and_overrides(tmp_path):
    path = tmp_path / "q.toml"
    path.write_text("[quickstart]\nnum_styles = 5\nimage_size = 64\n")
    result = runner.invoke(app, ["quickstart", "--config", str(path), "--image-size", "96", "--print-config"])
    assert result.exit_code == 0, result.output
    assert "num_styles = 5" in result.output and "image_size = 96" in result.output


def test_unknown_override_is_a_clear_error():
    result = runner.invoke(app, ["quickstart", "--num-stylez", "3"])
    assert result.exit_code == 2
    assert "num_stylez" in result.output


def test_quickstart_small_run_writes_dataset_sheet_and_report(tmp_path):
    out = tmp_path / "qs"
    args = [
        "quickstart",
        "--output-dir",
        str(out),
        "--num-styles",
        "4",
        "--num-content-prompts",
        "6",
        "--contents-per-style",
        "3",
        "--image-size",
        "64",
        "--workers",
        "1",
        "--shard-size",
        "5",
        "--progress",
        "false",
        "--style-pool-images",
        "10",
        "--content-pool-images",
        "10",
        "--train-encoder",
        "false",
        "--style-transfer",
        "false",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    reader = ShardReader(out / "curate" / "dataset")
    assert len(reader) == 12 and len(reader.shards) == 3
    assert {r.backend for r in reader} == {"procedural"}
    assert (out / "curate" / "dataset" / "contact_sheet.png").stat().st_size > 0
    report = (out / "report.html").read_text()
    assert "report_files/contact_sheet_01.png" in report and "procedural" in report and "heuristic" in report
    results = json.loads((out / "results.json").read_text())
    assert results["rows"] == 12 and results["rejects"] == 2  # the two planted bad pool items


def test_render_resumes_without_redoing_shards(tmp_path):
    out = tmp_path / "r"
    base = [
        "render",
        "--output-dir",
        str(out),
        "--num-styles",
        "3",
        "--num-content-prompts",
        "4",
        "--contents-per-style",
        "2",
        "--image-size",
        "32",
        "--shard-size",
        "2",
    ]
    assert runner.invoke(app, base).exit_code == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("train-*.parquet")}
    victim = sorted(first)[1]
    (out / victim).unlink()
    result = runner.invoke(app, base)
    assert result.exit_code == 0, result.output
    assert "1 shards written, 2 reused" in " ".join(result.output.split())
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("train-*.parquet")}
    assert set(after) == set(first)
    assert all(after[n] == first[n] for n in first if n != victim)


def test_render_with_missing_prompt_file_names_it(tmp_path):
    result = runner.invoke(app, ["render", "--style-prompts", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert "nope.txt" in result.output


def test_bare_paths_fill_the_commands_obvious_input():
    inspect = runner.invoke(app, ["inspect", "some/shards", "--print-config"])
    assert inspect.exit_code == 0 and 'source = "some/shards"' in inspect.output
    search = runner.invoke(app, ["search", "a.png", "b.png", "--k", "3", "--print-config"])
    assert search.exit_code == 0 and 'queries = [\n    "a.png",\n    "b.png",\n]' in search.output
    score = runner.invoke(app, ["score", "a.png", "b.png", "--encoder", "enc", "--print-config"])
    assert (
        score.exit_code == 0 and 'image_a = "a.png"' in score.output and 'image_b = "b.png"' in score.output
    )


def test_a_wrong_number_of_bare_paths_is_one_line():
    one = runner.invoke(app, ["score", "a.png", "--print-config"])
    assert one.exit_code == 2 and "score takes 2 path(s) (IMAGE_A IMAGE_B), got 1: a.png" in one.output
    stray = runner.invoke(app, ["curate", "stray", "--print-config"])
    assert stray.exit_code == 2 and "stray: unexpected argument; curate takes options only" in stray.output


def test_help_has_examples_and_plain_defaults_and_short_flags():
    result = runner.invoke(app, ["embed", "-h"])
    assert result.exit_code == 0 and "Examples:" in result.output and "megastyle embed imgs/" in result.output
    assert (
        "PosixPath" not in result.output
        and "[default runs/embeddings/embeddings.safetensors]" in result.output
    )
    assert runner.invoke(app, ["--version"]).output.startswith("megastyle ")
    bench = runner.invoke(app, ["bench", "-h"])
    assert all(name in bench.output for name in ("retrieval", "dataset", "transfer"))


def test_every_command_help_shows_examples():
    from megastyle.cli.app import COMMANDS

    names = [["bench", name] if parent is not app else [name] for parent, name, *_ in COMMANDS] + [["score"]]
    for name in names:
        result = runner.invoke(app, [*name, "-h"])
        assert result.exit_code == 0 and "Examples:" in result.output, name
        assert f"megastyle {' '.join(name)}" in result.output, name


def test_every_command_help_shows_its_description_whole():
    """Rich markup would drop a bracketed word ("megastyle[app]"): each description is printed as written."""
    from megastyle.cli.app import COMMANDS

    for parent, name, _config, _run, help_text in COMMANDS:
        words = ["bench", name] if parent is not app else [name]
        result = runner.invoke(app, [*words, "-h"], terminal_width=400)
        shown = " ".join(result.output.split())
        assert " ".join(help_text.split()) in shown, words
