"""The controlled leakage grid: requests, rendering, and leakage that separates a content-sensitive embedder."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from megastyle.bench.baselines import RandomEmbedder
from megastyle.bench.leakage_grid import grid_leakage, grid_requests, render_grid
from megastyle.curate.generators.base import GenerationRequest
from megastyle.curate.generators.procedural import ProceduralRenderer

STYLES = [
    "In the style of baroque, red and brown with orange accents, candlelit lighting, in watercolor.",
    "In the style of pop art, blue and yellow palette, flat even lighting, in halftone print.",
    "In the style of minimalism, green palette, soft daylight, in flat vector.",
    "In the style of expressionism, purple and pink palette, glowing neon lighting, in oil impasto.",
]
CONTENTS = ["A bench", "Two fish above a boat", "A house with a tree beside", "Three lamps around a guitar"]


def test_requests_are_style_major_seeded_per_cell_and_checked() -> None:
    requests = grid_requests(STYLES[:2], CONTENTS[:3], size=32, seed=5)
    assert [(r.style, r.content) for r in requests] == [(s, c) for s in STYLES[:2] for c in CONTENTS[:3]]
    assert len({r.seed for r in requests}) == 6 and all(0 <= r.seed < 2**31 for r in requests)
    assert [r.seed for r in grid_requests(STYLES[:2], CONTENTS[:3], size=32, seed=5)] == [
        r.seed for r in requests
    ]
    assert [r.seed for r in grid_requests(STYLES[:2], CONTENTS[:3], size=32, seed=6)] != [
        r.seed for r in requests
    ]
    with pytest.raises(ValueError, match="content prompts repeat"):
        grid_requests(STYLES, ["A bench", "A bench"], size=32)
    with pytest.raises(ValueError, match="style prompt #1 is empty"):
        grid_requests([STYLES[0], "  "], CONTENTS, size=32)
    with pytest.raises(ValueError, match="needs styles and contents"):
        grid_requests([], CONTENTS, size=32)


def test_render_grid_labels_every_cell_and_each_cell_renders_alone() -> None:
    backend = ProceduralRenderer(shade_variation=1.0, content_color=1.0)
    grid = render_grid(backend, STYLES[:3], CONTENTS, size=32, seed=1, batch_size=5)
    assert len(grid.images) == 12 and grid.styles.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert grid.contents.tolist() == [0, 1, 2, 3] * 3
    cell = grid_requests(STYLES[:3], CONTENTS, size=32, seed=1)[6]  # style 1, content 2
    alone = backend.generate([cell])[0]
    assert np.array_equal(np.asarray(alone), np.asarray(grid.images[6]))

    class ShortBackend:
        def generate(self, requests: list[GenerationRequest]) -> list[Image.Image]:
            return [Image.new("RGB", (8, 8))] * (len(requests) - 1)

    with pytest.raises(RuntimeError, match="ShortBackend returned 3 images for 4 requests"):
        render_grid(ShortBackend(), STYLES[:1], CONTENTS, size=32)


def test_grid_leakage_separates_a_layout_embedder_from_chance(layout_embedder) -> None:
    contents = [*CONTENTS, "A clock next to two pears", "A butterfly in front of a large leaf",
                "Two dogs beside two towers", "A red umbrella over a cat"]  # fmt: skip
    grid = render_grid(ProceduralRenderer(shade_variation=1.0, content_color=1.0), STYLES, contents, size=48)
    qualities, matched = grid_leakage(grid, {"layout": layout_embedder, "random": RandomEmbedder()})
    assert len(matched["layout"].values) == 6 * 8  # every pair of the 4 styles shares all 8 contents
    # Measured: layout 0.692 (0.533–0.821), random 0.580 (0.392–0.759).
    layout, chance = matched["layout"].interval(), matched["random"].interval()
    assert layout is not None and chance is not None
    assert layout[0] > 0.5 and chance[0] < 0.5 < chance[1]
    assert qualities["layout"].leakage_matched_auc == pytest.approx(matched["layout"].auc)
