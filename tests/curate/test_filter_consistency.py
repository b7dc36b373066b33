"""Filter stage: intra-style consistency, threshold modes, edge groups, embedder failures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from megastyle.curate.filter import (
    FilterConfig,
    StyleGroup,
    color_texture_stats,
    decide_styles,
    filter_style_groups,
    group_records_by_style,
    score_style_groups,
)
from megastyle.curate.generators import GenerationRequest, load_backend
from megastyle.data import StyleRecord, encode_png
from megastyle.prompts import sample_content_prompts, sample_style_prompts

SIZE = 96
PER_STYLE = 6


@pytest.fixture(scope="module")
def procedural_groups() -> tuple[list[StyleGroup], StyleGroup]:
    """Six coherent style groups and one planted group whose images come from six other style prompts."""
    renderer = load_backend("procedural")
    styles = sample_style_prompts(12, seed=5)
    contents = sample_content_prompts(PER_STYLE, seed=1)

    def render(style: str, k: int, seed: int) -> Image.Image:
        return renderer.generate([GenerationRequest(style, contents[k], seed, SIZE)])[0]

    coherent = [
        StyleGroup(s, [render(styles[s], k, 100 * s + k) for k in range(PER_STYLE)]) for s in range(6)
    ]
    planted = StyleGroup(99, [render(styles[6 + k], k, k) for k in range(PER_STYLE)])
    return coherent, planted


def test_planted_inconsistent_group_is_dropped_in_every_mode(procedural_groups) -> None:
    coherent, planted = procedural_groups
    groups = [*coherent, planted]
    configs = [
        FilterConfig(),  # zscore 2.0
        FilterConfig(mode="absolute", threshold=0.8),
        FilterConfig(mode="percentile", threshold=10),
    ]
    for config in configs:
        result = filter_style_groups(groups, color_texture_stats, config)
        assert result.kept == [g.style_id for g in coherent], config.mode
        assert [d.style_id for d in result.dropped] == [99]
        assert "mean pairwise cosine" in result.dropped[0].reason
    zscore = filter_style_groups(groups)
    assert max(zscore.z_scores[99], 0.0) < 1.0 < min(zscore.z_scores[g.style_id] for g in coherent)


def test_an_intruder_image_is_an_outlier(procedural_groups) -> None:
    coherent, planted = procedural_groups
    mixed = StyleGroup(7, [*coherent[0].images[:5], planted.images[3]])
    score = score_style_groups([mixed], color_texture_stats)[0]
    assert score.outliers == (5,)
    assert score_style_groups([coherent[0]], color_texture_stats)[0].outliers == ()
    strict = FilterConfig(mode="absolute", threshold=0.0, max_outlier_fraction=0.1)
    result = filter_style_groups([coherent[0], mixed], config=strict)
    assert result.kept == [coherent[0].style_id] and "outliers [5]" in result.dropped[0].reason
    by_pair = filter_style_groups(
        [coherent[0], mixed], config=FilterConfig(mode="absolute", threshold=0.0, min_pair_cosine=0.85)
    )
    assert [d.style_id for d in by_pair.dropped] == [7] and "least similar pair" in by_pair.dropped[0].reason


# -- exact checks with a lookup embedder ----------------------------------------------------------
def tagged(index: int) -> Image.Image:
    """A 2x2 image whose red value names a row of the lookup table."""
    return Image.new("RGB", (2, 2), (index, 0, 0))


def lookup(table: np.ndarray):
    def embed(images: list[Image.Image]) -> np.ndarray:
        return table[[image.getpixel((0, 0))[0] for image in images]]

    return embed


def random_setup(num_styles: int = 8, per_style: int = 4, dim: int = 6, seed: int = 0):
    """Styles = noisy copies of a style direction; noise grows with the style index (less consistent)."""
    rng = np.random.default_rng(seed)
    rows, groups = [], []
    for s in range(num_styles):
        base = rng.normal(size=dim)
        images = []
        for _ in range(per_style):
            rows.append(base + rng.normal(size=dim) * (0.1 + 0.3 * s))
            images.append(tagged(len(rows) - 1))
        groups.append(StyleGroup(s, images))
    return np.array(rows), groups


def test_scores_are_exact_pairwise_statistics() -> None:
    table, groups = random_setup()
    scores = score_style_groups(groups, lookup(table))
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    for score in scores:
        members = unit[score.style_id * 4 : score.style_id * 4 + 4]
        pairs = [float(members[i] @ members[j]) for i, j in itertools.combinations(range(4), 2)]
        assert score.mean_cosine == pytest.approx(np.mean(pairs))
        assert score.min_cosine == pytest.approx(min(pairs))
    one_by_one = [score_style_groups([g], lookup(table))[0] for g in groups]
    assert [s.mean_cosine for s in one_by_one] == pytest.approx([s.mean_cosine for s in scores])


def test_threshold_modes_resolve_their_cuts() -> None:
    table, groups = random_setup(num_styles=10)
    scores = score_style_groups(groups, lookup(table))
    values = {s.style_id: s.mean_cosine for s in scores}
    ranked = sorted(values, key=values.get)

    absolute = decide_styles(scores, FilterConfig(mode="absolute", threshold=0.5))
    assert absolute.cut == 0.5
    assert sorted(d.style_id for d in absolute.dropped) == sorted(s for s, v in values.items() if v < 0.5)

    percentile = decide_styles(scores, FilterConfig(mode="percentile", threshold=30))
    assert percentile.cut == pytest.approx(np.percentile(list(values.values()), 30))
    assert sorted(d.style_id for d in percentile.dropped) == sorted(ranked[:3])

    # The inter-style distribution is the mean cosine over image pairs of two different styles.
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    cross = [
        np.mean(unit[a * 4 : a * 4 + 4] @ unit[b * 4 : b * 4 + 4].T)
        for a, b in itertools.combinations(range(10), 2)
    ]
    loose = decide_styles(scores, FilterConfig(mode="zscore", threshold=0.5))
    assert loose.inter_mean == pytest.approx(np.mean(cross)) and loose.inter_std == pytest.approx(
        np.std(cross)
    )
    assert loose.cut == pytest.approx(np.mean(cross) + 0.5 * np.std(cross))
    strict = decide_styles(scores, FilterConfig(mode="zscore", threshold=3.0))
    assert set(d.style_id for d in loose.dropped) < set(d.style_id for d in strict.dropped)
    assert all(strict.z_scores[d.style_id] < 3.0 for d in strict.dropped)
    assert all(strict.z_scores[k] >= 3.0 for k in strict.kept)
    sampled = decide_styles(scores, FilterConfig(mode="zscore", threshold=0.5, inter_pairs=20))
    assert (
        sampled.inter_mean == pytest.approx(np.mean(cross), abs=0.15)
        and sampled.inter_mean != loose.inter_mean
    )


def test_empty_and_singleton_groups_are_dropped_and_left_out_of_the_distribution() -> None:
    table, groups = random_setup(num_styles=4)
    edge = [StyleGroup(50, []), StyleGroup(51, [groups[0].images[0]])]
    result = filter_style_groups(
        [*groups, *edge], lookup(table), FilterConfig(mode="percentile", threshold=0)
    )
    reasons = {d.style_id: d.reason for d in result.dropped}
    assert reasons == {50: "empty group", 51: "only 1 image(s); consistency needs at least 2"}
    assert result.kept == [0, 1, 2, 3]  # the 0th percentile is the lowest valid score: nothing else dropped
    assert np.isnan(result.scores[51].mean_cosine) and 51 not in result.z_scores
    three = filter_style_groups(
        groups, lookup(table), FilterConfig(mode="absolute", threshold=-1, min_images=5)
    )
    assert three.kept == [] and all("at least 5" in d.reason for d in three.dropped)
    with pytest.raises(ValueError, match="zscore mode needs at least 2 styles"):
        filter_style_groups([groups[0], *edge], lookup(table))
    assert filter_style_groups([], lookup(table), FilterConfig(mode="absolute")).kept == []


def test_embedder_failures_drop_only_the_affected_group() -> None:
    table, groups = random_setup(num_styles=3)
    table[5] = 0.0  # image 5 (style 1) embeds to the zero vector

    def fragile(images: list[Image.Image]) -> np.ndarray:
        if any(image.getpixel((0, 0))[0] == 9 for image in images):  # an image of style 2
            raise RuntimeError("cannot embed image 9")
        return lookup(table)(images)

    result = filter_style_groups(groups, fragile, FilterConfig(mode="absolute", threshold=-1))
    reasons = {d.style_id: d.reason for d in result.dropped}
    assert result.kept == [0]
    assert "zero or non-finite" in reasons[1] and "cannot embed image 9" in reasons[2]
    wrong_shape = score_style_groups(groups[:1], lambda images: np.zeros((1, 3)))
    assert "shape" in (wrong_shape[0].error or "")


def test_color_texture_stats_properties() -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    stripes = Image.fromarray(
        np.tile((np.arange(40) // 4 % 2 * 255).astype(np.uint8)[None, :, None], (40, 1, 3))
    )
    flat_red, flat_blue = Image.new("RGB", (40, 40), (220, 30, 30)), Image.new("RGB", (40, 40), (30, 30, 220))
    emb = color_texture_stats([noise, noise, stripes, flat_red, flat_blue])
    assert emb.shape == (5, 4**3 + 2 * (8 + 8)) and np.isfinite(emb).all()
    np.testing.assert_array_equal(emb[0], emb[1])
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    assert unit[3] @ unit[4] < 0.55  # same (flat) texture, disjoint colours: only the texture half agrees
    assert unit[0] @ unit[2] < 0.5  # noise vs stripes: different colours and gradients
    resized = color_texture_stats([noise.resize((80, 80))])[0]
    assert resized @ unit[0] / np.linalg.norm(resized) > 0.98  # compared at one working size
    assert color_texture_stats([]).shape == (0, emb.shape[1])


def test_group_records_by_style_rejects_bad_rows() -> None:
    image = encode_png(Image.new("RGB", (4, 4), (1, 2, 3)))
    records = [
        StyleRecord("s0_c0", image, "a", "b", style_id=0),
        StyleRecord("s1_c0", image, "a", "b", style_id=1),
        StyleRecord("s0_c1", image, "a", "b", style_id=0),
        StyleRecord("s1_c1", b"not a png", "a", "b", style_id=1),
        StyleRecord("x", image, "a", "b"),
    ]
    groups, rejects = group_records_by_style(records)
    assert [(g.style_id, len(g.images)) for g in groups] == [(0, 2), (1, 1)]
    assert [r.item for r in rejects] == ["s1_c1", "x"]
