"""A curate stage's files: the fingerprint that keys it, when it counts as done, what a changed key clears, and
the rejects files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from megastyle.curate.runstate import StageDir, fingerprint, read_rejects, write_rejects
from megastyle.data import Reject


def test_the_fingerprint_is_the_sha256_of_the_sorted_json_and_stays_stable() -> None:
    # Written out by hand: keys sorted, json.dumps' default separators, non-JSON values as str.
    canonical = '{"a": 1, "b": [2, "x"], "path": "runs/one"}'
    expected = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert fingerprint({"path": Path("runs/one"), "b": [2, "x"], "a": 1}) == expected
    assert len(expected) == 16 and fingerprint({"a": 2}) != fingerprint({"a": 1})


def test_a_stage_is_done_only_with_a_manifest_of_its_own_key(tmp_path: Path) -> None:
    stage = StageDir(tmp_path, "caption", key="k1")
    assert (
        stage.path == tmp_path / "stages" / "caption" and stage.manifest_path == stage.path / "manifest.json"
    )
    assert not stage.is_done()
    stage.prepare()
    manifest = stage.finish({"rows": 3})
    assert stage.is_done() and stage.stats() == {"rows": 3}
    on_disk = json.loads(stage.manifest_path.read_text())
    assert on_disk == manifest and on_disk["stage"] == "caption" and on_disk["key"] == "k1"
    assert not StageDir(tmp_path, "caption", key="k2").is_done()


def test_preparing_under_a_new_key_clears_the_old_outputs_and_the_same_key_keeps_them(tmp_path: Path) -> None:
    stage = StageDir(tmp_path, "generate", key="k1")
    stage.prepare()
    part = stage.part_path(3)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"rows")
    StageDir(tmp_path, "generate", key="k1").prepare()
    assert part.read_bytes() == b"rows" and (stage.path / "key").read_text() == "k1"
    StageDir(tmp_path, "generate", key="k2").prepare()
    assert not part.exists() and (stage.path / "key").read_text() == "k2"


def test_parts_and_rejects_have_numbered_names(tmp_path: Path) -> None:
    stage = StageDir(tmp_path, "filter", key="k")
    assert stage.part_path(7) == stage.path / "parts" / "part-00007.parquet"
    assert stage.rejects_path(7) == stage.path / "parts" / "part-00007.rejects.jsonl"
    assert stage.rejects_path() == stage.path / "rejects.jsonl"


def test_rejects_round_trip_and_none_is_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    assert read_rejects(path) == []
    rejects = [Reject("a.png", "not an image"), Reject("b.png", "too small: 3×3")]
    write_rejects(path, rejects)
    assert path.read_text().count("\n") == 2 and read_rejects(path) == rejects
    path.write_text(path.read_text() + "\n\n")  # blank lines are not rejects
    assert read_rejects(path) == rejects
    write_rejects(path, [])
    assert path.read_bytes() == b"" and read_rejects(path) == []
