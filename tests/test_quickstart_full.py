"""The whole quickstart at a small scale: curate → train encoder → retrieval benchmark → style transfer → report."""

import json

import pytest

from megastyle.quickstart import QuickstartConfig, run_quickstart


@pytest.mark.slow
def test_quickstart_runs_every_stage_and_reports_them(tmp_path):
    cfg = QuickstartConfig(
        output_dir=tmp_path / "qs",
        style_pool_images=24,
        content_pool_images=24,
        num_styles=12,
        num_content_prompts=16,
        contents_per_style=4,
        image_size=64,
        encoder_epochs=2,
        holdout_fraction=0.34,
        progress=False,
    )
    results = run_quickstart(cfg)
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
    for metrics in encoder["retrieval"].values():
        assert 0.0 <= metrics["recall@1"] <= 1.0
    assert results["transfer"] == {"images": 6, "untrained": True}
    report = (tmp_path / "qs" / "report.html").read_text()
    for heading in ("1. Curation", "StyleRetrieval", "4. Style transfer"):
        assert heading in report
    heldout = json.loads((tmp_path / "qs" / "benchmark" / "heldout_styles.json").read_text())
    assert heldout  # the benchmark's held-out styles were written for train-encoder to exclude
