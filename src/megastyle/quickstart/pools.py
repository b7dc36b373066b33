"""Offline image pools for the embedded default: procedural renders with alt-text sidecar captions.

Real runs ingest JourneyDB/WikiArt/LAION folders or shards; with nothing downloaded, the quickstart
needs pools too. These are rendered by the ``procedural`` backend and written as ordinary image
folders with ``.txt`` sidecars, so they go through exactly the ingest code a user's folder does.
Alt texts mix style words into the content ("a watercolor painting of ..."), as web captions do,
so the caption stage has to strip them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path

from megastyle.curate.generators import GenerationRequest, load_backend
from megastyle.progress import track
from megastyle.prompts import (
    parse_style_prompt,
    read_style_text,
    render_style_prompt,
    sample_content_prompts,
    sample_style_prompts,
)

_ALT_TEMPLATES = (
    "{medium} artwork: {content}",
    "a {medium} picture of {content_lower}",
    "{content}, {identity} {medium}",
    "{content}",
)


@dataclass(frozen=True)
class SyntheticPools:
    """Where the pools were written and what they hold."""

    style_dir: Path
    content_dir: Path
    style_images: int
    content_images: int
    planted_bad_items: int


def _alt_text(style: str, content: str, rng: random.Random) -> str:
    attrs = read_style_text(style)
    template = rng.choice(_ALT_TEMPLATES)
    return template.format(
        medium=attrs.medium,
        identity=attrs.identity,
        content=content,
        content_lower=content[:1].lower() + content[1:],
    )


def share_palettes(styles: list[str], family_size: int) -> list[str]:
    """Give each run of ``family_size`` style prompts the palette and the lighting of its first member.

    Real style pools hold many styles with the same colours and different media, texture or
    strokes; without such families a colour histogram alone separates every style. The lighting
    goes with the palette because it tints every colour (candlelight turns any palette brown and
    orange), so a family with one palette under different lights would not share its colours.
    """
    if family_size <= 1:
        return list(styles)
    shared = []
    for i, text in enumerate(styles):
        attrs = parse_style_prompt(text)
        head = parse_style_prompt(styles[i - i % family_size])
        attrs = replace(
            attrs,
            dominant_colors=head.dominant_colors,
            accent_colors=head.accent_colors,
            lighting=head.lighting,
        )
        shared.append(render_style_prompt(attrs))
    return list(dict.fromkeys(shared))  # a family member may collapse onto another: keep one


def make_procedural_pools(
    root: str | Path,
    num_style_images: int,
    num_content_images: int,
    seed: int = 0,
    size: int = 192,
    plant_bad_items: bool = True,
    palette_family_size: int = 1,
    progress: bool = False,
) -> SyntheticPools:
    """Write ``root/style_pool`` and ``root/content_pool`` image folders with sidecar captions."""
    root = Path(root)
    rng = random.Random(seed)
    backend = load_backend("procedural")
    # Fewer distinct style prompts than style images: a real pool repeats styles, which is
    # what deduplication is for.
    styles = sample_style_prompts(max(num_style_images * 3 // 4, 1), seed=seed + 11)
    styles = share_palettes(styles, palette_family_size)
    contents = sample_content_prompts(max(num_style_images, num_content_images), seed=seed + 12)
    pools = (("style_pool", num_style_images), ("content_pool", num_content_images))
    with track("pools: render", num_style_images + num_content_images, enabled=progress) as bar:
        for name, count in pools:
            folder = root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                bar.advance()
                image_path = folder / f"{name}_{i:05d}.png"
                # Draw from the rng for every item, so a resumed pool matches a fresh one.
                style = styles[i % len(styles)] if name == "style_pool" else rng.choice(styles)
                content = contents[i % len(contents)]
                alt_text = _alt_text(style, content, rng)
                if image_path.exists():
                    continue
                (image,) = backend.generate(
                    [GenerationRequest(style, content, seed=seed * 100_003 + i, size=size)]
                )
                image_path.with_suffix(".txt").write_text(alt_text + "\n")
                image.save(image_path, format="PNG")
    planted = 0
    if plant_bad_items:
        # One undecodable image and one image whose caption is empty: both must end as rejects.
        (root / "style_pool" / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
        (root / "style_pool" / "zz_corrupt.txt").write_text("a broken file\n")
        blank = root / "content_pool" / "zz_empty_caption.png"
        backend.generate([GenerationRequest(styles[0], contents[0], seed=1, size=size)])[0].save(blank)
        blank.with_suffix(".txt").write_text("   \n")
        planted = 2
    return SyntheticPools(
        root / "style_pool", root / "content_pool", num_style_images, num_content_images, planted
    )
