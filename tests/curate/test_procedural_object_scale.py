"""The procedural backend's ``object_scale``: the content's objects drawn larger, cropped by the frame."""

import numpy as np
import pytest

from megastyle.curate.generators import load_backend
from megastyle.curate.generators.procedural import ProceduralRenderer, label_map
from megastyle.prompts import parse_content_prompt
from megastyle.quickstart.config import QuickstartConfig

STYLE = "In the style of baroque, red and brown with orange accents, candlelit lighting, velvety surface, in watercolor."
CONTENT = "Two blue lamps next to a wooden guitar and a fish"


def test_one_renders_exactly_the_plain_backend_and_larger_covers_more():
    plain, one = ProceduralRenderer(), load_backend("procedural", object_scale=1.0)
    assert np.array_equal(
        np.asarray(plain.render(STYLE, CONTENT, 3, 64)), np.asarray(one.render(STYLE, CONTENT, 3, 64))
    )
    content = parse_content_prompt(CONTENT)
    coverage = [
        float((label_map(content, 3, 128, scale).labels >= 2).mean()) for scale in (0.5, 1.0, 1.4)
    ]  # much beyond 1.4 the frame crops away more than the objects gain
    assert coverage == sorted(coverage) and coverage[2] > 1.3 * coverage[1]
    big = ProceduralRenderer(object_scale=1.4)
    assert not np.array_equal(
        np.asarray(big.render(STYLE, CONTENT, 3, 64)), np.asarray(plain.render(STYLE, CONTENT, 3, 64))
    )


def test_out_of_range_is_named_and_the_quickstart_passes_it_on(tmp_path):
    with pytest.raises(ValueError, match="object_scale must be in"):
        ProceduralRenderer(object_scale=5.0)
    from megastyle.quickstart.pools import SyntheticPools

    pools = SyntheticPools(
        tmp_path / "s", tmp_path / "c", style_images=4, content_images=4, planted_bad_items=0
    )
    cfg = QuickstartConfig(output_dir=tmp_path, object_scale=1.4).curate_config(pools)
    assert cfg.generate.options["object_scale"] == 1.4
