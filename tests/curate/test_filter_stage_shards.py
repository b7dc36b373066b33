"""The filter stage's shard-mapped embedding: same scores as the in-memory filter, bad rows as rejects."""

import numpy as np

from megastyle.curate.filter import color_texture_stats, group_records_by_style, score_style_groups
from megastyle.curate.generate import plan_images, run_generate
from megastyle.curate.stages.filter import embed_shards_stage, score_shard_embeddings
from megastyle.data import ShardReader, StyleRecord, list_shards, write_shard
from megastyle.prompts import sample_content_prompts, sample_style_prompts


def test_shard_mapped_scores_equal_the_in_memory_filter(tmp_path):
    plan = plan_images(sample_style_prompts(5, seed=1), sample_content_prompts(6, seed=2), 4, seed=0)
    # Shards of 6 rows split styles of 4 images across shard boundaries on purpose.
    run_generate(plan, tmp_path, size=48, shard_size=6, batch_size=4, show_progress=False)
    shards = [str(p) for p in list_shards(tmp_path)]
    assert len(shards) > 3
    parts = [part for path in shards for part in embed_shards_stage([path], color_texture_stats)]
    mapped = {s.style_id: s for s in score_shard_embeddings(parts)}

    groups, rejects = group_records_by_style(ShardReader(tmp_path))
    in_memory = {s.style_id: s for s in score_style_groups(groups, color_texture_stats)}
    assert rejects == [] and sorted(mapped) == sorted(in_memory) == list(range(5))
    for style_id, score in in_memory.items():
        assert mapped[style_id].n_images == score.n_images == 4
        assert np.isclose(mapped[style_id].mean_cosine, score.mean_cosine, atol=1e-6)
        assert mapped[style_id].outliers == score.outliers


def test_undecodable_and_unlabelled_rows_become_rejects_and_the_rest_are_scored(tmp_path):
    plan = plan_images(sample_style_prompts(2, seed=3), sample_content_prompts(4, seed=4), 3, seed=0)
    run_generate(plan, tmp_path / "ok", size=32, shard_size=100, batch_size=3, show_progress=False)
    records = list(ShardReader(tmp_path / "ok"))
    broken = StyleRecord(
        id="s9_c9", image=b"not a png", image_path="x.png", style="s", content="c", style_id=9
    )
    unlabelled = StyleRecord(id="s8_c8", image=records[0].image, image_path="y.png", style="s", content="c")
    write_shard(tmp_path / "train-00000.parquet", [*records, broken, unlabelled])

    (part,) = embed_shards_stage([str(tmp_path / "train-00000.parquet")], color_texture_stats)
    assert len(part.ids) == len(records)
    causes = {r.item: r.cause for r in part.rejects}
    assert set(causes) == {"s9_c9", "s8_c8"} and "style_id" in causes["s8_c8"]
    assert [s.n_images for s in score_shard_embeddings([part])] == [3, 3]


def test_an_embedder_failure_on_one_image_rejects_that_image_only(tmp_path):
    plan = plan_images(sample_style_prompts(2, seed=5), sample_content_prompts(4, seed=6), 3, seed=0)
    run_generate(plan, tmp_path, size=32, shard_size=100, batch_size=3, show_progress=False)
    shard = str(list_shards(tmp_path)[0])
    victim = next(iter(ShardReader(shard))).pil_image().tobytes()

    def fragile(images):
        if any(image.tobytes() == victim for image in images):
            raise RuntimeError("cannot embed this one")
        return color_texture_stats(images)

    (part,) = embed_shards_stage([shard], fragile)
    assert len(part.rejects) == 1 and "cannot embed" in part.rejects[0].cause
    assert len(part.ids) == 5
