"""Palette families of the offline style pool: shared palette and light, own medium, surface and strokes."""

from __future__ import annotations

from pathlib import Path

from megastyle.prompts import parse_style_prompt, sample_style_prompts
from megastyle.quickstart.config import QuickstartConfig
from megastyle.quickstart.pools import SyntheticPools, share_palettes


def test_each_family_shares_the_palette_and_light_of_its_first_member() -> None:
    styles = sample_style_prompts(12, seed=3)
    shared = share_palettes(styles, 4)
    assert len(shared) == 12  # distinct media keep the members apart
    for i, (before, after) in enumerate(zip(styles, shared, strict=True)):
        head, own, new = (parse_style_prompt(t) for t in (styles[i - i % 4], before, after))
        assert (new.dominant_colors, new.accent_colors) == (head.dominant_colors, head.accent_colors)
        assert new.lighting == head.lighting
        assert (new.medium, new.surface, new.brushwork, new.pattern) == (
            own.medium, own.surface, own.brushwork, own.pattern
        )  # fmt: skip
    assert len({parse_style_prompt(t).lighting for t in shared[::4]}) > 1  # families differ from each other


def test_family_size_one_leaves_the_prompts_alone() -> None:
    styles = sample_style_prompts(5, seed=4)
    assert share_palettes(styles, 1) == styles


def test_quickstart_captions_with_the_basic_colour_vocabulary(tmp_path: Path) -> None:
    pools = SyntheticPools(tmp_path / "s", tmp_path / "c", 4, 4, 0)
    cfg = QuickstartConfig(output_dir=tmp_path / "qs")
    assert cfg.curate_config(pools).caption.options == {"color_vocabulary": "basic"}
    full = QuickstartConfig(output_dir=tmp_path / "qs", caption_colors="full").curate_config(pools)
    assert full.caption.options == {"color_vocabulary": "full"}
