"""The procedural backend's ``content_color``: objects move from the palette towards their own colour."""

import numpy as np
import pytest

from megastyle.curate.generators import load_backend
from megastyle.curate.generators.procedural import ProceduralRenderer, label_map, style_spec
from megastyle.curate.generators.procedural.renderer import region_colors
from megastyle.curate.generators.procedural.style import color_rgb, object_color
from megastyle.prompts import parse_content_prompt, read_style_text

STYLE = "In the style of baroque, red and brown with orange accents, candlelit lighting, velvety surface, in watercolor."
CONTENT = "Two blue lamps next to a wooden guitar and a fish"


def test_zero_renders_exactly_the_plain_backend():
    plain, zero = (
        ProceduralRenderer(shade_variation=1.0),
        ProceduralRenderer(shade_variation=1.0, content_color=0.0),
    )
    for seed in (0, 7):
        assert np.array_equal(np.asarray(plain.render(STYLE, CONTENT, seed, 64)),
                              np.asarray(zero.render(STYLE, CONTENT, seed, 64)))  # fmt: skip


def test_object_colour_is_a_colour_word_then_a_material_then_the_noun():
    lamp, guitar, fish = parse_content_prompt(CONTENT).objects
    assert np.allclose(object_color(lamp.name, lamp.modifiers), color_rgb("blue"))
    assert np.allclose(object_color(guitar.name, guitar.modifiers), color_rgb("brown"))
    assert np.allclose(object_color(fish.name, fish.modifiers), color_rgb("fish"))  # stable per noun
    assert np.allclose(object_color("fish", ("old",)), object_color("fish", ()))


def test_weight_moves_bodies_and_accents_only():
    content = parse_content_prompt(CONTENT)
    layout = label_map(content, 3, 64)
    palette = style_spec(read_style_text(STYLE)).palette
    own = [object_color(o.name, o.modifiers) for o in content.objects]
    plain, full = region_colors(palette, layout), region_colors(palette, layout, own, 1.0)
    half = region_colors(palette, layout, own, 0.5)
    assert np.allclose(full[:2], plain[:2])  # sky and ground keep the palette
    for label in np.flatnonzero(layout.group >= 0):
        g, part = int(layout.group[label]), int(layout.part[label])
        if part == 0:
            assert np.allclose(full[label], own[g])
        elif part == 1:
            assert np.allclose(full[label], own[g] * 0.75)
        else:
            assert np.allclose(full[label], plain[label])  # outlines and highlights stay the style's
        assert np.allclose(half[label], (plain[label] + full[label]) / 2, atol=1e-6)


def test_same_content_in_two_styles_shares_more_colour_with_it_on():
    other = "In the style of bauhaus, black and teal with red accents, glowing neon lighting, in flat vector."
    gaps = []
    for weight in (0.0, 1.0):
        r = ProceduralRenderer(content_color=weight)
        a, b = (np.asarray(r.render(s, CONTENT, 5, 96), np.float64) for s in (STYLE, other))
        gaps.append(np.abs(a - b).mean())
    assert gaps[1] < gaps[0]


def test_out_of_range_is_refused_by_name_and_the_option_reaches_the_backend():
    with pytest.raises(ValueError, match="content_color must be in"):
        ProceduralRenderer(content_color=1.5)
    backend = load_backend("procedural", content_color=0.4)
    assert backend.content_color == 0.4
