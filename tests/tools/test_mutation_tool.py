"""tools/mutation.py's bookkeeping (no mutmut run): where runs live, how module runs merge, where reports go."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "tools" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_tool"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("mutation_tool", None)


def test_a_module_run_has_its_own_folder_and_a_whole_group_run_the_groups(tool, tmp_path: Path) -> None:
    def folder(only):  # type: ignore[no-untyped-def]
        return tool.run_folder("dedup", tmp_path, tool.selected_modules("dedup", only))

    assert folder(None) == tmp_path / "dedup"
    assert folder(tool.GROUPS["dedup"][0]) == tmp_path / "dedup"
    only = ["curate/dedup/fuzzy.py", "curate/dedup/semantic.py", "encode/losses.py"]
    assert folder(only) == tmp_path / "dedup--fuzzy+semantic"
    for name, age in (("dedup--fuzzy", 30), ("dedup", 20), ("dedup--shingles", 10), ("dedup--semantic", 0)):
        (tmp_path / name).mkdir()
        if name != "dedup--semantic":  # unfinished: no seconds.txt
            (tmp_path / name / "seconds.txt").write_text("1.0\n")
            os.utime(tmp_path / name / "seconds.txt", (1e9 - age, 1e9 - age))
    (tmp_path / "losses").mkdir()
    (tmp_path / "losses" / "seconds.txt").write_text("1.0\n")
    runs = [p.name for p in tool.finished_runs("dedup", tmp_path)]
    assert runs == ["dedup--fuzzy", "dedup", "dedup--shingles"]  # oldest first


def test_the_newest_run_of_a_module_is_the_one_scored(tool, tmp_path: Path, monkeypatch) -> None:
    old, new = tmp_path / "dedup", tmp_path / "dedup--fuzzy"
    fake = {
        old: (
            [
                tool.ModuleScore("curate/dedup/fuzzy.py", 10, 5),
                tool.ModuleScore("curate/dedup/exact.py", 4, 4),
            ],
            [tool.Survivor("f1", "curate/dedup/fuzzy.py", "f", ["a"], ["b"], "survived")],
        ),
        new: ([tool.ModuleScore("curate/dedup/fuzzy.py", 10, 10)], []),
    }
    for run in fake:
        run.mkdir()
        (run / "seconds.txt").write_text("2.5\n")
        mutated = [f"src/megastyle/{s.module}" for s in fake[run][0]]
        (run / "pyproject.toml").write_text(f"[tool.mutmut]\nonly_mutate = {json.dumps(mutated)}\n")
    read: list[Path] = []

    def score_group(work, mutmut, seconds):  # type: ignore[no-untyped-def]
        read.append(work)
        return (*fake[work], seconds)

    monkeypatch.setattr(tool, "score_group", score_group)
    scores, survivors, seconds = tool.score_runs([old, new], "mutmut", tool.GROUPS["dedup"][0])
    assert [(s.module, s.killed) for s in scores] == [
        ("curate/dedup/exact.py", 4),
        ("curate/dedup/fuzzy.py", 10),
    ]
    assert survivors == [] and seconds == 5.0  # both runs supply a module
    read.clear()
    only_new = tool.score_runs([old, new], "mutmut", ["curate/dedup/fuzzy.py"])
    assert only_new[2] == 2.5 and read == [new]  # the superseded run is not read at all


def test_a_group_with_its_own_markers_is_written_there_and_the_rest_between_the_shared_ones(
    tool, tmp_path: Path
) -> None:
    docs = tmp_path / "testing.md"
    start, end = tool.group_markers("dedup")
    docs.write_text(
        f"intro\n{tool.DOCS_START}\nold\n{tool.DOCS_END}\nmiddle\n{start}\nold dedup\n{end}\ntail\n"
    )
    equivalent = tool.Survivor("e", "curate/dedup/exact.py", "g", ["x = 1"], ["x = 2"], "survived", "same")
    missed = tool.Survivor("m", "curate/dedup/exact.py", "h", ["y = 1"], ["y = 2"], "timeout")
    dedup = ([tool.ModuleScore("curate/dedup/exact.py", 10, 8, 1, {"timeout": 1})], [equivalent, missed], 1.0)
    losses = ([tool.ModuleScore("encode/losses.py", 4, 4)], [], 1.0)
    assert tool.write_report(tmp_path, {"dedup": dedup}, 0.9, docs) is False  # 8 / 9 < 0.9
    text = docs.read_text()
    assert "\nold\n" in text and "old dedup" not in text  # only dedup's own section changed
    assert "| `curate/dedup/exact.py` | 10 | 8 | 1 | 1 | 88.9% |" in text
    assert "#### Not killed" in text and "- `curate/dedup/exact.py` `h` (timeout): `y = 1` → `y = 2`" in text
    assert "- `g`: `x = 1` → `x = 2`. same" in text
    assert tool.write_report(tmp_path, {"dedup": dedup, "losses": losses}, 0.8, docs) is True
    shared = docs.read_text().partition(tool.DOCS_START)[2].partition(tool.DOCS_END)[0]
    assert "encode/losses.py" in shared and "dedup" not in shared and "### Not killed" in shared
    assert (tmp_path / "report.md").read_text().count("| `") == 2  # the report holds both
