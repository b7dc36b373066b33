"""The procedural backend's ``shade_variation``: one seeded palette shift per image, nothing else moves."""

import colorsys

import numpy as np
import pytest

from megastyle.curate.generators import load_backend
from megastyle.curate.generators.procedural import ProceduralRenderer, style_spec
from megastyle.curate.generators.procedural.style import vary_palette
from megastyle.prompts import read_style_text

STYLE = "In the style of baroque, red and brown with orange accents, candlelit lighting, velvety surface, in watercolor."
CONTENT = "Two lamps next to a guitar"


def hsv(c: np.ndarray) -> np.ndarray:
    return np.array(colorsys.rgb_to_hsv(*np.clip(c, 0, 1).tolist()))


def test_zero_variation_renders_exactly_the_plain_backend():
    plain, zero = ProceduralRenderer(), ProceduralRenderer(shade_variation=0.0)
    for seed in (0, 7):
        assert np.array_equal(
            plain.render_array(*_parsed(), seed, 64), zero.render_array(*_parsed(), seed, 64)
        )


def test_same_seed_same_image_other_seed_other_shades():
    r = ProceduralRenderer(shade_variation=1.0)
    a1, a2 = r.render(STYLE, CONTENT, 3, 64), r.render(STYLE, CONTENT, 3, 64)
    assert np.array_equal(np.asarray(a1), np.asarray(a2))
    palette = style_spec(read_style_text(STYLE)).palette
    shifted = [vary_palette(palette, seed, 1.0) for seed in range(8)]
    backgrounds = np.stack([p.background for p in shifted])
    assert np.ptp(backgrounds, axis=0).max() > 0.05  # the shades differ from image to image


def test_one_shift_moves_every_colour_by_the_same_bounded_hue():
    palette = style_spec(read_style_text(STYLE)).palette
    for seed in range(6):
        shifted = vary_palette(palette, seed, 1.0)
        hue_moves = []
        for before, after in zip(palette.colors, shifted.colors, strict=True):
            h0, s0, _ = hsv(before)
            h1, _, _ = hsv(after)
            if s0 > 0.15:  # hue is defined for coloured entries only
                hue_moves.append((h1 - h0 + 0.5) % 1.0 - 0.5)
        assert hue_moves and max(abs(m) for m in hue_moves) <= 0.06 + 1e-6
        assert np.ptp(hue_moves) < 1e-3  # one hue rotation for the whole palette, not per colour


def test_variation_scales_with_amount():
    palette = style_spec(read_style_text(STYLE)).palette
    assert vary_palette(palette, 4, 0.0) is palette
    small = np.abs(vary_palette(palette, 4, 0.2).colors - palette.colors).mean()
    large = np.abs(vary_palette(palette, 4, 1.0).colors - palette.colors).mean()
    assert 0 < small < large


def test_layout_does_not_depend_on_the_variation():
    """Only colours move: the label layout (content) is the plain backend's."""
    plain = ProceduralRenderer().render_array(*_parsed(), 5, 64).astype(float)
    varied = ProceduralRenderer(shade_variation=1.0).render_array(*_parsed(), 5, 64).astype(float)
    edges = lambda a: np.abs(np.diff(a.mean(-1), axis=1)) > 12  # noqa: E731
    overlap = (edges(plain) & edges(varied)).sum() / max(1, edges(plain).sum())
    assert overlap > 0.6
    assert np.abs(plain - varied).mean() > 1.0


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_out_of_range_variation_is_refused_by_name(value):
    with pytest.raises(ValueError, match="shade_variation"):
        load_backend("procedural", shade_variation=value)


def _parsed():
    from megastyle.curate.generators.procedural.renderer import parse_content, parse_style

    return parse_style(STYLE), parse_content(CONTENT)
