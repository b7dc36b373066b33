"""Combine and generate stages: counts, uniqueness, even use, per-item rejects and resume."""

from collections import Counter

import numpy as np
import pytest
from PIL import Image

from megastyle.curate.combine import combine_prompts
from megastyle.curate.generate import PlannedImage, plan_images, render_batch, run_generate
from megastyle.curate.generators import GenerationRequest
from megastyle.data import ShardReader


@pytest.mark.parametrize(
    ("styles", "contents", "per_style"), [(50, 8, 8), (37, 20, 8), (200, 400, 8), (9, 3, 2)]
)
def test_combine_counts_uniqueness_and_even_use(styles, contents, per_style):
    table = combine_prompts(styles, contents, per_style, seed=3)
    assert table.shape == (styles, per_style)
    assert all(len(set(row)) == per_style for row in table.tolist())
    assert table.min() >= 0 and table.max() < contents
    uses = Counter(table.ravel().tolist())
    counts = [uses.get(c, 0) for c in range(contents)]
    assert max(counts) - min(counts) <= 1


def test_combine_is_seeded_and_rejects_impossible_requests():
    assert np.array_equal(combine_prompts(10, 12, 4, seed=1), combine_prompts(10, 12, 4, seed=1))
    assert not np.array_equal(combine_prompts(10, 12, 4, seed=1), combine_prompts(10, 12, 4, seed=2))
    with pytest.raises(ValueError, match="at least 5 content prompts"):
        combine_prompts(3, 4, 5, seed=0)


class FlakyBackend:
    """Renders flat colours but fails on one content prompt, in batches and alone."""

    name = "flaky"

    def generate(self, requests: list[GenerationRequest]) -> list[Image.Image]:
        if any(r.content == "broken" for r in requests):
            raise RuntimeError("cannot draw 'broken'")
        return [Image.new("RGB", (r.size, r.size), (r.seed % 256, 0, 0)) for r in requests]


def test_one_failing_item_is_rejected_and_the_rest_is_kept():
    batch = [PlannedImage(0, c, "style", text, seed=c) for c, text in enumerate(["ok", "broken", "fine"])]
    records, rejects = render_batch(batch, FlakyBackend(), size=16)
    assert [r.id for r in records] == ["s0_c0", "s0_c2"]
    assert len(rejects) == 1 and rejects[0].item == "s0_c1" and "broken" in rejects[0].cause
    assert all(r.backend == "flaky" for r in records)


def test_run_generate_resumes_and_refuses_a_different_plan(tmp_path):
    styles = [
        "In the style of pop art, red with blue accents, flat even lighting, glossy surface, in mosaic."
    ] * 1
    styles.append(
        "In the style of baroque, gold with navy accents, candlelit lighting, velvety surface, in oil impasto."
    )
    plan = plan_images(styles, ["a cat", "a car", "a tree"], 3, seed=0)
    summary = run_generate(plan, tmp_path, size=32, shard_size=4, show_progress=False)
    assert (summary.written, summary.shards_written, summary.shards_skipped) == (6, 2, 0)
    again = run_generate(plan, tmp_path, size=32, shard_size=4, show_progress=False)
    assert (again.written, again.shards_written, again.shards_skipped) == (6, 0, 2)
    assert [r.id for r in ShardReader(tmp_path)] == [p.id for p in plan]
    with pytest.raises(ValueError, match="different plan"):
        run_generate(plan[:3], tmp_path, size=32, shard_size=4, show_progress=False)
