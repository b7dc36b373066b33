"""The FLUX GPU benchmark's training section on a tiny config (CPU): child processes, fallbacks, containment."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

pytestmark = pytest.mark.slow  # see docs/testing.md: plain `pytest` skips it, `make test` runs it

FAST = ["--tiny", "--iters", "1", "--warmup", "0"]


@pytest.fixture
def cudnn_sdp_flag() -> Iterator[None]:
    """``--no-cudnn-sdpa`` flips a process-wide flag: put it back for the other tests."""
    before = torch.backends.cuda.cudnn_sdp_enabled()
    yield
    torch.backends.cuda.enable_cudnn_sdp(before)


def test_training_runs_in_a_child_after_inference_and_stops_at_the_first_success(
    flux_bench_script: ModuleType, tmp_path: Path
) -> None:
    out = flux_bench_script.main([*FAST, "--max-batch-512", "1", "--max-batch-train", "2",
                                   "--train-variants", "trainer", "blocking", "--json", str(tmp_path / "r.json")])  # fmt: skip
    assert out["errors"] == []
    seen = {(r["mode"], r["reference"], r["batch"], r.get("variant")) for r in out["rows"]}
    infer = {("infer", ref, 1, None) for ref in (True, False)}
    # "blocking" is a fallback: it must not run once "trainer" completed.
    assert seen == infer | {("train", True, 1, "trainer"), ("train", True, 2, "trainer")}
    assert all(r["samples_per_s"] > 0 for r in out["rows"] if r["mode"] == "train")
    assert out["ratios"]["train_64_ref_best"]["variant"] == "trainer"
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["rows"] == out["rows"] and saved["errors"] == []
    child = json.loads((tmp_path / "r.train-trainer.json").read_text())  # written by the child as it went
    assert child["rows"] == [r for r in out["rows"] if r["mode"] == "train"]
    assert child["environment"]["train_child"] == "trainer"
    assert not (tmp_path / "r.train-blocking.json").exists()


def test_a_failing_training_child_loses_nothing_and_the_next_variant_is_tried(
    flux_bench_script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cudnn_sdp_flag: None
) -> None:
    launched: list[list[str]] = []

    def child_in_process(cmd: list[str], env: dict[str, str], timeout: float, check: bool) -> Any:
        # The real spawn is covered above; here the child's main runs in this process (no second import).
        assert cmd[:2] == [sys.executable, flux_bench_script.__file__] and not check and timeout > 0
        launched.append(cmd[2:])
        return subprocess.CompletedProcess(cmd, flux_bench_script.main(cmd[2:])["returncode"])

    monkeypatch.setattr(flux_bench_script.subprocess, "run", child_in_process)
    # Rank 0 makes peft raise inside the child, a real failure of the training section only.
    out = flux_bench_script.main([*FAST, "--max-batch-512", "1", "--lora-rank", "0",
                                   "--train-variants", "trainer", "blocking", "--json", str(tmp_path / "r.json")])  # fmt: skip
    assert [cmd[cmd.index("--train-child") + 1] for cmd in launched] == ["trainer", "blocking"]
    assert {(r["mode"], r["reference"], r["batch"]) for r in out["rows"]} == {
        ("infer", True, 1),
        ("infer", False, 1),
    }
    assert [(e["variant"], e["phase"]) for e in out["errors"]] == [
        ("trainer", "LoRA injection"),
        ("blocking", "LoRA injection"),
    ]
    assert all("ValueError" in e["traceback"] and "update_layer" in e["traceback"] for e in out["errors"])
    assert "training variant trainer: exit code 1" in out["notes"]
    assert "training variant blocking: exit code 1" in out["notes"]
    assert "goal_64_ref_best_over_b1_eager" in out["ratios"]
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["errors"] == out["errors"] and saved["ratios"] == out["ratios"]


@pytest.mark.parametrize(
    ("variant", "dtype", "cap"),
    [("fused-adamw", "bf16", 1), ("cudnn-sdpa", "fp32", 2), ("blocking", "fp32", 2)],
)
def test_every_fallback_variant_completes_in_process(
    flux_bench_script: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cudnn_sdp_flag: None,
    variant: str,
    dtype: str,
    cap: int,
) -> None:
    flags, env = flux_bench_script.TRAIN_VARIANTS[variant]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "child.json"
    # bf16 (the GPU's base dtype: bf16 autocast over fp32 LoRA weights) is slow on a CPU: batch 1 only there.
    out = flux_bench_script.main([*FAST, "--dtype", dtype, "--max-batch-train", str(cap), "--train-child", variant, *flags,
                                   "--json", str(path)])  # fmt: skip
    assert out["returncode"] == 0 and out["errors"] == []
    batches = [r["batch"] for r in out["rows"] if r["mode"] == "train" and r["variant"] == variant]
    assert batches == ([1] if variant == "blocking" else list(range(1, cap + 1)))
    assert [r["mode"] for r in out["rows"]] == ["train"] * len(batches)  # the child runs training only
    saved = json.loads(path.read_text())
    assert saved["environment"]["dtype"] == dtype
    assert saved["environment"]["sdpa_enabled"]["cudnn"] is (variant != "trainer")


def test_a_hung_training_child_is_killed_and_noted(flux_bench_script: ModuleType, tmp_path: Path) -> None:
    runner = flux_bench_script.Runner(
        flux_bench_script.parse_args([*FAST, "--train-timeout-s", "0.2", "--json", str(tmp_path / "r.json")])
    )
    assert runner.train_child("trainer", FAST) is False
    assert runner.rows == []
    assert runner.notes[-1].startswith("training variant trainer: killed after --train-timeout-s")
    assert json.loads((tmp_path / "r.json").read_text())["notes"] == runner.notes
