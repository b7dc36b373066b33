"""``trim_jsonl_log``: a resumed trainer's log keeps the records up to its checkpoint, nothing else."""

import json

from megastyle.data import trim_jsonl_log


def test_trim_keeps_records_up_to_the_step_and_drops_a_line_cut_short(tmp_path):
    log = tmp_path / "train_log.jsonl"
    records = [{"event": "eval", "step": 0}, *({"event": "step", "step": s} for s in range(1, 6))]
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"event": "step", "st')
    kept = trim_jsonl_log(log, 3)
    assert [r["step"] for r in kept] == [0, 1, 2, 3]
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [0, 1, 2, 3]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temp file left
    assert trim_jsonl_log(tmp_path / "absent.jsonl", 3) == [] and not (tmp_path / "absent.jsonl").exists()
