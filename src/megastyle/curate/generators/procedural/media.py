"""The 16 media of ``MEDIA`` as vectorised techniques over a flat-coloured scene."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from megastyle.curate.generators.procedural.layout import LabelMap
from megastyle.curate.generators.procedural.style import StyleSpec
from megastyle.curate.generators.procedural.textures import (
    F32,
    Grid,
    blur,
    boundaries,
    channel_max,
    channel_min,
    dilate,
    dot_field,
    grid,
    lum,
    mix,
    noise,
    rotated,
    saturate,
    screen,
    smoothstep,
    streaks,
    strokes,
    take,
    tri,
    voronoi,
)
from megastyle.prompts.vocabulary import MEDIA, stable_hash

_U64 = (1 << 64) - 1


@dataclass
class Canvas:
    """Per-render context shared by media and effects: layout, style, randomness and derived masks."""

    size: int
    layout: LabelMap
    spec: StyleSpec
    seed: int
    rng: np.random.Generator  # re-seeded per stage by ``stage``: one attribute's noise never shifts another's
    variant: int  # small seed-derived index choosing among cached texture variants
    lines: np.ndarray  # (H, W) colour-edge strength of the flat scene, pattern included
    pattern: np.ndarray | None  # (H, W) background pattern mask

    def stage(self, name: str) -> Canvas:
        """Give the next stage its own random stream, keyed by stage name and seed (not by the content)."""
        self.rng = np.random.default_rng([stable_hash(name, "stage"), self.seed & _U64, self.size])
        return self

    @property
    def s(self) -> float:
        """Scale of pixel-sized parameters relative to a 256 px canvas."""
        return self.size / 256.0

    @property
    def grid(self) -> Grid:
        """Cached coordinate grids of this size."""
        return grid(self.size)

    @property
    def labels(self) -> np.ndarray:
        """The (H, W) label map."""
        return self.layout.labels

    @property
    def objects(self) -> np.ndarray:
        """(H, W) float mask of object pixels."""
        return (self.layout.labels >= 2).astype(F32)

    @property
    def angle_deg(self) -> int:
        """The style's stroke direction in whole degrees, quantised so cached stroke grids are reused."""
        return int(round(np.degrees(self.spec.angle) / 15) * 15) % 180


def _paper(cv: Canvas, whiteness: float = 0.6) -> np.ndarray:
    return mix(cv.spec.palette.paper, np.ones(3, F32), whiteness).astype(F32)


def _tint(out: np.ndarray, img: np.ndarray, amount: float) -> np.ndarray:
    """Carry a little of the scene's hue into a monochrome medium so that palettes stay tellable apart."""
    chroma = np.clip(img / np.maximum(lum(img)[..., None], 0.05), 0, 2.5)
    return out * mix(1.0, chroma, amount)


def watercolor(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Transparent washes bleeding at the edges, pigment pooling at region borders, paper granulation."""
    n, s = cv.size, cv.s
    bled = blur(mix(img, 1.0, 0.2), 2.4 * s)
    wash = 0.7 + 0.6 * noise(cv.rng, n, 40 * s, 2)
    gran = 0.8 + 0.4 * blur(cv.rng.random((n, n), dtype=F32), 0.8 * s)
    rim = 1 + 1.4 * blur(cv.lines, 1.3 * s)
    absorb = np.clip((1 - bled) * (wash * gran * rim)[..., None], 0, 1)
    return _paper(cv, 0.8) * (1 - absorb)


def ink_wash(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Monochrome ink in a few diluted tones, soft bleeding and brushed contour strokes."""
    n, s = cv.size, cv.s
    d = blur(1 - lum(img), 1.6 * s)
    d = 0.55 * np.round(d * 4) / 4 + 0.45 * d  # banded dilutions
    d = d * (0.7 + 0.6 * noise(cv.rng, n, 30 * s))
    stroke = blur(cv.lines, 0.7 * s) * (0.5 + 0.9 * noise(cv.rng, n, 10 * s))
    d = np.clip(0.8 * d + 1.2 * stroke, 0, 1)[..., None]
    ink = mix(cv.spec.palette.ink, np.array([0.04, 0.04, 0.06], F32), 0.6)
    return _tint(_paper(cv, 0.7) * (1 - d) + ink * d, img, 0.12)


def oil_impasto(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Thick directional strokes that each carry one colour, with embossed paint ridges."""
    s = cv.s
    st = strokes(cv.size, cv.angle_deg, max(4, round(11 * s)), max(3, round(4.5 * s)))
    col = take(img, st.idx) * (0.9 + 0.2 * st.value)[..., None]
    col = mix(col, img, 0.3)  # keep contours legible under the strokes
    bristle = streaks(cv.rng, cv.size, np.radians(cv.angle_deg), 24 * s, 0.8 * s)
    height = st.ridge * (0.55 + 0.45 * bristle)
    shade = np.zeros_like(height)
    shade[1:, 1:] = height[1:, 1:] - height[:-1, :-1]  # light from the upper left
    return col * (1 + 0.55 * shade[..., None]) + 0.07 * height[..., None]


def pencil_hatching(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Graphite hatching on white paper: line density follows darkness, cross-hatching in the shadows."""
    n, s = cv.size, cv.s
    d = blur(np.clip((0.95 - lum(img)) / 0.8, 0, 1), 0.8 * s)
    wob = noise(cv.rng, n, 24 * s) * 4 * s
    p = 5 * s
    h1 = smoothstep(0.05, -0.05, tri((rotated(n, 45.0)[1] + wob) / p) - d)
    h2 = smoothstep(0.05, -0.05, tri((rotated(n, 135.0)[1] + wob) / p) - (d - 0.4) * 1.4)
    h3 = smoothstep(0.05, -0.05, tri((rotated(n, 0.0)[1] + wob) / (0.8 * p)) - (d - 0.72) * 2)
    breaks = 0.55 + 0.45 * streaks(cv.rng, n, np.pi / 4, 30 * s, 1.5 * s)
    g = np.maximum(np.maximum(h1, h2), h3) * breaks
    g = np.maximum(g, cv.lines * (0.7 + 0.3 * noise(cv.rng, n, 8 * s)))[..., None] * 0.85
    graphite = mix(np.array([0.22, 0.22, 0.25], F32), cv.spec.palette.ink, 0.3)
    return _tint(np.ones(3, F32) * 0.97 * (1 - g) + graphite * g, img, 0.15)


def _palette_colors(cv: Canvas) -> np.ndarray:
    c = cv.spec.palette.colors
    return np.concatenate([c, c * 0.7, mix(c, 1.0, 0.35)]).astype(F32)


def pixel_art(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Big square pixels, colours snapped to a small palette, dark outline pixels around objects."""
    n = cv.size
    b = max(3, round(6 * cv.s))
    # One sample per block, ceil(n / b) blocks, so the repeated image always covers n pixels.
    centers = np.minimum(np.arange(-(-n // b)) * b + b // 2, n - 1)
    small = img[np.ix_(centers, centers)]
    pal = _palette_colors(cv)
    idx = ((small[..., None, :] - pal) ** 2).sum(-1).argmin(-1)
    q = pal[idx]
    lab = cv.labels[np.ix_(centers, centers)]
    edge = boundaries(lab) & (lab >= 2)
    q[edge] = cv.spec.palette.dark
    return np.repeat(np.repeat(q, b, 0), b, 1)[:n, :n]


@lru_cache(maxsize=8)
def _tiles(size: int, tile: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = grid(size)
    row = np.floor(g.y / tile)
    shift = (row % 2) * tile / 2
    xo = g.x + shift
    col = np.floor(xo / tile)
    sy = np.clip((row + 0.5) * tile, 0, size - 1).astype(np.intp)
    sx = np.clip((col + 0.5) * tile - shift, 0, size - 1).astype(np.intp)
    fx, fy = xo / tile - col, g.y / tile - row
    e = np.minimum(np.minimum(fx, 1 - fx), np.minimum(fy, 1 - fy)) * tile
    h = np.sin(row * 12.9898 + col * 78.233) * 43758.5453
    return sy * size + sx, e.astype(F32), (h - np.floor(h)).astype(F32)


def mosaic(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Square tesserae in offset rows, one colour each, bevelled, set in light grout."""
    s = cv.s
    idx, e, h = _tiles(cv.size, 8 * s)
    e = e + (noise(cv.rng, cv.size, 6 * s) - 0.5) * 1.5 * s  # irregular hand-cut tile edges
    tile = smoothstep(0.6 * s, 1.4 * s, e)[..., None]
    col = take(img, idx) * (0.88 + 0.24 * h)[..., None] * (0.85 + 0.15 * smoothstep(0, 3 * s, e))[..., None]
    grout = mix(np.array([0.78, 0.76, 0.7], F32), cv.spec.palette.light, 0.3)
    return grout * (1 - tile) + col * tile


def stained_glass(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Saturated glass pieces (Voronoi cells split by colour regions) behind dark lead lines."""
    s = cv.s
    cell = max(8, round(22 * s))
    ids, border = voronoi(cv.size, cell, cv.variant % 4)
    patbit = (cv.pattern > 0.5) if cv.pattern is not None else np.zeros(ids.shape, bool)
    piece2d = ids * 512 + cv.labels.astype(np.int32) * 2 + patbit
    piece = piece2d.ravel()
    count = np.maximum(np.bincount(piece), 1)
    mean = np.stack([np.bincount(piece, img[..., c].ravel()) / count for c in range(3)], -1).astype(F32)
    col = mean[piece].reshape(img.shape)
    h = (np.sin(piece * 0.7123) * 43758.5453 % 1).reshape(img.shape[:2]).astype(F32)
    glow = 0.7 + 0.4 * smoothstep(0, cell * 0.35, border) + 0.15 * h
    col = np.clip(saturate(col, 1.7) * 1.1, 0, 1) * glow[..., None]
    lead = (border < 1.1 * s) | dilate(boundaries(cv.labels), max(1, round(0.6 * s))) | boundaries(piece2d)
    col[lead] = np.array([0.06, 0.05, 0.05], F32)
    return col


_INKS = ((15.0, np.array([0.0, 0.66, 0.94], F32)), (75.0, np.array([0.93, 0.05, 0.55], F32)),
         (0.0, np.array([1.0, 0.92, 0.0], F32)), (45.0, np.array([0.1, 0.1, 0.12], F32)))  # fmt: skip


def halftone_print(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """CMYK halftone: four rotated dot screens whose dot sizes follow ink coverage, overprinted."""
    period = 6 * cv.s
    cmy = 1 - np.clip(img, 0, 1)
    k = channel_min(cmy) * 0.8
    cover = [*(np.moveaxis(cmy, -1, 0) - k), k]
    out = np.broadcast_to(_paper(cv, 0.7), img.shape).copy()
    aa = 0.6 / period
    for (angle, ink), c in zip(_INKS, cover, strict=True):
        r = np.sqrt(np.clip(c, 0, 1) / np.pi) * 1.1
        dot = smoothstep(aa, -aa, screen(cv.size, angle, period) - r)
        out *= 1 - dot[..., None] * (1 - ink)
    return out


def woodcut(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Two tones only: carved white lines whose width follows lightness, bold contours with white halos."""
    n, s, g = cv.size, cv.s, cv.grid
    y = lum(blur(img, 1.0 * s))
    y = (y - y.min()) / max(float(y.max() - y.min()), 1e-3)
    obj = cv.labels >= 2
    # Background is gouged in wavy horizontal lines, objects in straight oblique ones.
    wave = g.y + 3 * s * np.sin(g.x / (14 * s)) + 4 * s * noise(cv.rng, n, 50 * s)
    t = np.where(obj, tri(rotated(n, 60.0)[1] / (4 * s)), tri(wave / (5 * s)))
    edge = boundaries(cv.labels)
    contour = dilate(edge, max(1, round(s)))
    halo = dilate(edge, max(2, round(3 * s))) & ~obj & ~contour
    ink = ((t > y * 1.1 - 0.05) | contour) & ~halo
    paper = mix(cv.spec.palette.light, np.array([0.96, 0.93, 0.85], F32), 0.5)
    carve = mix(cv.spec.palette.ink, np.zeros(3, F32), 0.4)
    return np.where(ink[..., None], carve, paper).astype(F32)


def neon_glow(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Glowing tubes along object contours (dimmer ones along the pattern) on a near-black ground."""
    s = cv.s
    bright = ndimage.maximum_filter(img, size=(3, 3, 1))
    vivid = np.clip(saturate(bright, 1.8), 0, None)
    vivid = vivid / np.maximum(channel_max(vivid), 0.3)[..., None]
    near_obj = dilate(boundaries(cv.labels) & (cv.labels >= 1), max(1, round(1.5 * s)))
    core = (dilate(cv.lines, max(1, round(0.6 * s))) > 0.5).astype(F32)
    tube = (core * near_obj)[..., None] * vivid
    faint = (core * ~near_obj)[..., None] * vivid * 0.35  # pattern lines: dim tubes without a halo
    glow = blur(tube, 2.5 * s) * 1.4 + blur(tube, 7 * s) * 1.0
    dark = cv.spec.palette.dark * 0.3 + np.array([0.01, 0.01, 0.03], F32)
    return dark + 0.1 * img * cv.objects[..., None] + glow + tube * 0.9 + faint


def paper_cut(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Stacked flat paper layers (sky bands, pattern, objects) with white cut edges and drop shadows."""
    s, g = cv.s, cv.grid
    height = np.take(cv.layout.order, cv.labels)
    sky = cv.labels == 0
    # Layered paper hills in the sky, each band a separate sheet.
    bands = np.floor(
        (g.y + 10 * s * np.sin(g.x / (26 * s)) + 6 * s * np.sin(g.x / (9 * s))) / (cv.size * 0.13)
    )
    height[sky] += bands[sky] * 0.05
    out = img * np.where(sky, 0.82 + 0.06 * bands, 1.0)[..., None]
    if cv.pattern is not None:
        height += 0.5 * (cv.pattern > 0.5) * (cv.labels < 2)
    d = max(1, round(4 * s))
    shifted = np.zeros_like(height)
    shifted[d:, d:] = height[:-d, :-d]  # layer above, offset down-right: light from the upper left
    shadow = blur((shifted > height + 0.01).astype(F32), 1.8 * s)
    edge = boundaries(height) & (cv.labels >= 2)
    cut = dilate(edge, max(1, round(0.5 * s)))[..., None]  # white paper core at every cut edge
    fibre = 0.94 + 0.1 * blur(cv.rng.random(height.shape, dtype=F32), 0.7 * s)
    out = out * (1 - 0.6 * shadow)[..., None] * fibre[..., None]
    return np.where(cut, mix(out, 1.0, 0.6), out)


def stipple(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Coloured dots on white paper; dot density follows darkness."""
    field = dot_field(cv.size, cv.variant % 4)
    d = np.clip((1 - lum(img)) * 1.3 + 0.08 + 0.6 * cv.lines, 0, 1)
    dots = (field < d)[..., None]
    dot_col = mix(img * 0.8, cv.spec.palette.ink, 0.25)
    return np.where(dots, dot_col, _paper(cv, 0.8)).astype(F32)


def flat_vector(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Clean flat fills, crisp shapes, flat offset shadows and a two-step sky."""
    s = cv.s
    out = np.clip(saturate(img, 1.12), 0, 1)
    obj = cv.labels >= 2
    dx, dy = max(1, round(6 * s)), max(1, round(3 * s))
    shadow = np.zeros_like(obj)
    shadow[dy:, dx:] = obj[:-dy, :-dx]
    out = out * np.where(shadow & ~obj, 0.82, 1.0)[..., None]
    upper = (cv.labels == 0) & (cv.grid.y < cv.layout.horizon * 0.45)
    return blur(out * np.where(upper, 1.07, 1.0)[..., None], 0.5 * s)


def crayon(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Waxy streaked colour that skips over the paper tooth, with rough darker contours."""
    n, s = cv.size, cv.s
    st = streaks(cv.rng, n, cv.spec.angle + 0.4, 16 * s, 1.3 * s)
    tooth = blur(cv.rng.random((n, n), dtype=F32), 0.6 * s)
    cover = np.clip((st * 0.6 + tooth * 0.6 - 0.22) * 2.4, 0, 1)[..., None]
    col = np.clip(saturate(img, 1.2), 0, 1) * (0.88 + 0.24 * st)[..., None]
    out = mix(_paper(cv, 0.85), col, cover)
    contour = (dilate(cv.lines, max(1, round(0.8 * s))) * (st > 0.35))[..., None]
    return mix(out, img * 0.45, contour * 0.9)


def charcoal_sketch(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Smudged charcoal on grey toned paper: soft dark masses, grain skips and heavy contours."""
    n, s = cv.size, cv.s
    d = blur(np.clip((0.98 - lum(img)) * 1.2, 0, 1), 2.5 * s)
    st = streaks(cv.rng, n, cv.spec.angle, 26 * s, 3 * s)
    d = d * (0.55 + 0.7 * st)
    grain = blur(cv.rng.random((n, n), dtype=F32), 0.7 * s)
    contour = dilate(cv.lines, max(1, round(1.2 * s))) * (0.5 + 0.6 * st)
    cover = np.clip(np.maximum(d, contour) * 1.3 - (grain - 0.5) * 0.9, 0, 1)[..., None] * 0.92
    paper = mix(np.array([0.84, 0.83, 0.8], F32), cv.spec.palette.light, 0.2)
    char = mix(np.array([0.07, 0.07, 0.08], F32), cv.spec.palette.ink, 0.2)
    return _tint(paper * (1 - cover) + char * cover, img, 0.1)


def blueprint(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """White technical line drawing, measuring grid and hatched solids on prussian-blue paper."""
    s, g = cv.s, cv.grid
    base = mix(np.array([0.06, 0.2, 0.46], F32), cv.spec.palette.background, 0.25)
    minor = np.maximum(tri(g.x / (8 * s)) < 0.12, tri(g.y / (8 * s)) < 0.12) * 0.12
    major = np.maximum(tri(g.x / (32 * s)) < 0.05, tri(g.y / (32 * s)) < 0.05) * 0.25
    hatch = (tri(rotated(cv.size, 45.0)[1] / (6 * s)) < 0.18) * cv.objects * 0.35
    a = np.clip(np.maximum(np.maximum(minor, major), np.maximum(hatch, cv.lines * 0.95)), 0, 1)[..., None]
    line = mix(np.ones(3, F32), cv.spec.palette.accents[0], 0.2)
    return base * (1 - a) + line * a + 0.05 * cv.objects[..., None]


TECHNIQUES: dict[str, Callable[[np.ndarray, Canvas], np.ndarray]] = {
    "watercolor": watercolor,
    "ink wash": ink_wash,
    "oil impasto": oil_impasto,
    "pencil hatching": pencil_hatching,
    "pixel art": pixel_art,
    "mosaic": mosaic,
    "stained glass": stained_glass,
    "halftone print": halftone_print,
    "woodcut": woodcut,
    "neon glow": neon_glow,
    "paper cut": paper_cut,
    "stipple": stipple,
    "flat vector": flat_vector,
    "crayon": crayon,
    "charcoal sketch": charcoal_sketch,
    "blueprint": blueprint,
}
assert set(TECHNIQUES) == set(MEDIA), set(TECHNIQUES) ^ set(MEDIA)


def apply_medium(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Render the flat scene ``img`` in the style's medium."""
    return TECHNIQUES[cv.spec.medium](img, cv).astype(F32, copy=False)
