"""The GPU transfer benchmark script runs end to end on a tiny config (CPU) and targets the official LoRA modules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest
import torch

from megastyle.testing.flux import tiny_flux_transformer
from megastyle.transfer.lora import kohya_targets


@pytest.mark.slow
def test_tiny_run_measures_every_configuration(flux_bench_script: ModuleType, tmp_path: Path) -> None:
    out = flux_bench_script.main(["--tiny", "--no-train", "--max-batch-512", "2", "--iters", "1", "--warmup", "0",
                                   "--json", str(tmp_path / "r.json")])  # fmt: skip
    seen = {(r["mode"], r["size"], r["reference"], r["batch"], r["compiled"]) for r in out["rows"]}
    assert seen == {("infer", 64, ref, batch, False) for ref in (True, False) for batch in (1, 2)}
    assert {"goal_64_ref_best_over_b1_eager", "reference_overhead_64_b1_eager"} <= set(out["ratios"])
    saved = json.loads((tmp_path / "r.json").read_text())
    assert "predict_target_velocity" in saved["environment"]["reference_join"]
    assert saved["rows"] == out["rows"] and saved["ratios"] == out["ratios"]


def test_lora_targets_are_the_official_modules_with_fp32_weights(flux_bench_script: ModuleType) -> None:
    torch.manual_seed(0)
    model = tiny_flux_transformer().eval().to(torch.bfloat16)  # the GPU run's frozen base dtype
    official = {m for group, pieces in kohya_targets(model).items() if "_blocks_" in group for m in pieces}
    pattern = re.compile(flux_bench_script.LORA_TARGETS)
    matched = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and pattern.fullmatch(n)}
    assert matched == official and len(matched) == 14 + 6  # one double block, one single block
    params, source = flux_bench_script.add_lora(model, rank=4)
    assert source == "peft" and len(params) == 2 * len(official)
    assert all(p.dtype == torch.float32 and p.requires_grad for p in params)
    frozen = [p for n, p in model.named_parameters() if "lora_" not in n]
    assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in frozen)


def test_fused_qkv_keeps_the_output_and_is_recorded(flux_bench_script: ModuleType, tmp_path: Path) -> None:
    args = flux_bench_script.parse_args(
        ["--tiny", "--no-train", "--fuse-qkv", "--json", str(tmp_path / "r.json")]
    )
    runner = flux_bench_script.Runner(args)
    step = runner.infer_step(64, 1, reference=True)
    before = step()
    change = runner.fuse_qkv(64)
    fused = [m for m in runner.model.modules() if getattr(m, "fused_projections", False)]
    assert len(fused) == 2 and all(hasattr(m, "to_qkv") for m in fused)  # one double, one single block
    assert change < 1e-5  # fp32: the concatenated GEMM computes the same dot products
    assert not torch.allclose(before, torch.zeros_like(before))
    row = runner.measure_inference(64, True, 1, compiled=False)
    assert row is not None and row["fused_qkv"] is True
    assert "+fq" in flux_bench_script.format_row(row) and "fused q/k/v in 2" in runner.notes[-1]


def test_compiled_sdpa_holds_one_backend_and_is_recorded(
    flux_bench_script: ModuleType, tmp_path: Path
) -> None:
    flags = {
        name: getattr(torch.backends.cuda, f"{name}_sdp_enabled")()
        for name in flux_bench_script.SDPA_BACKENDS
    }
    args = flux_bench_script.parse_args(["--tiny", "--no-train", "--compiled-sdpa", "math"])
    assert args.compiled_sdpa == "math"
    runner = flux_bench_script.Runner(args)
    try:
        runner.sdpa = flux_bench_script.restrict_sdpa("math")
        enabled = {name for name in flags if getattr(torch.backends.cuda, f"{name}_sdp_enabled")()}
        assert enabled == {"math"}
        row = runner.measure_inference(64, True, 1, compiled=False)
        assert row is not None and row["sdpa"] == "math"
        assert "[sdpa math]" in flux_bench_script.format_row(row)
        with pytest.raises(ValueError, match="unknown SDPA backend 'fa3'"):
            flux_bench_script.restrict_sdpa("fa3")
    finally:
        for name, on in flags.items():
            getattr(torch.backends.cuda, f"enable_{name}_sdp")(on)
