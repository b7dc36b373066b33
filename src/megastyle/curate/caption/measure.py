"""Pixel measurements behind the ``heuristic`` captioner: colour clusters, light, edges, texture, periodicity.

Everything is plain numpy/scipy on a working copy whose longest side is ``WORK_SIDE`` pixels, so the
numbers are comparable across input sizes. These are measurements, not recognition: they say how
bright, warm, sharp, periodic or stroke-like an image is, and ``style_words.py`` turns them into words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy import ndimage

from megastyle.prompts.vocabulary import nearest_color_name

WORK_SIDE = 256  # measurements run at this longest side
MIN_SIDE = 16  # smaller inputs are stretched to this (nearest neighbour) before measuring
COLOR_SIDE = 48  # colour clustering runs on a copy this small (2304 pixels)
F32 = np.float32
_LUMA = np.array([0.299, 0.587, 0.114], F32)

# A coarse colour vocabulary: every ``COLORS`` name → one of 15 basic names (four neutrals by
# lightness and the basic hues), as a plain-spoken captioner would name them. Light, medium and noise
# shift a measured colour a little; among ~50 fine names that often flips the word ("olive" ↔
# "moss green"), among these few it rarely does, so styles painted with one palette keep one set
# of colour words. Clusters are named with the fine vocabulary first, then coarsened by this table.
BASIC_COLORS: dict[str, str] = {
    "black": "black", "charcoal": "black", "slate gray": "slate gray", "silver": "silver",
    "white": "white", "ivory": "white", "cream": "white",
    "beige": "beige", "sand": "beige", "peach": "beige",
    "tan": "brown", "brown": "brown", "sepia": "brown", "umber": "brown", "rust": "brown",
    "ochre": "orange", "amber": "orange", "orange": "orange", "coral": "orange", "salmon": "orange",
    "mustard": "yellow", "gold": "yellow", "yellow": "yellow", "lemon": "yellow",
    "red": "red", "crimson": "red", "scarlet": "red", "burgundy": "red", "maroon": "red",
    "pink": "pink", "rose": "pink", "magenta": "pink",
    "lavender": "purple", "lilac": "purple", "violet": "purple", "purple": "purple", "plum": "purple",
    "indigo": "purple",
    "navy": "navy", "cobalt blue": "blue", "blue": "blue", "sky blue": "blue",
    "cyan": "teal", "turquoise": "teal", "teal": "teal", "aquamarine": "teal",
    "mint": "green", "sage green": "green", "olive": "green", "green": "green", "emerald": "green",
    "forest green": "green", "lime": "green", "moss green": "green",
}  # fmt: skip
COLOR_VOCABULARIES: dict[str, dict[str, str] | None] = {"full": None, "basic": BASIC_COLORS}

# sRGB (linear) → LMS → OKLab (Björn Ottosson's published matrices).
_M1 = np.array(
    [[0.4122214708, 0.5363325363, 0.0514459929],
     [0.2119034982, 0.6806995451, 0.1073969566],
     [0.0883024619, 0.2817188376, 0.6299787005]], F32,
)  # fmt: skip
_M2 = np.array(
    [[0.2104542553, 0.7936177850, -0.0040720468],
     [1.9779984951, -2.4285922050, 0.4505937099],
     [0.0259040371, 0.7827717662, -0.8086757660]], F32,
)  # fmt: skip


@dataclass(frozen=True)
class ColorCluster:
    """One colour cluster: its vocabulary name, mean sRGB (0–255), area share and OKLab chroma."""

    name: str
    rgb: tuple[float, float, float]
    share: float
    chroma: float
    lightness: float


@dataclass(frozen=True)
class SpectralPeak:
    """The strongest periodic component in a band of periods: its strength, period and orientation."""

    strength: float  # peak power over the band's mean power (≫ 10 for a clean repeating pattern)
    period: float  # in working pixels
    angle: float  # orientation of the wave vector in degrees, [0, 180)
    directions: int  # distinct strong orientations in the band (1 stripes, 2 grid, 3 hexagonal)


_NO_PEAK = SpectralPeak(0.0, 0.0, 0.0, 0)


@dataclass(frozen=True)
class Measurements:
    """Scalar pixel statistics of one image (all in [0, 1]-ish units unless noted)."""

    clusters: tuple[ColorCluster, ...]  # sorted by share, same-named clusters merged
    palette_size: int  # clusters covering ≥ 2 % of the area
    luma_mean: float
    luma_median: float
    contrast: float  # standard deviation of luma
    dark_share: float  # luma < 0.15
    bright_share: float  # luma > 0.85
    saturation: float  # mean HSV saturation
    vivid_share: float  # saturation > 0.5 and value > 0.5
    warmth: float  # mean(R − B)
    vignette: float  # mean luma of the centre minus the border
    glow: float  # how far the brightest blurred spot stands above the median luma
    sharpness: float  # 1-pixel step over 4-pixel step at strong edges (≈1 sharp, ≈0.3 soft)
    edge_density: float  # share of pixels with a luma step > 0.1
    fine_texture: float  # median |luma − blur(luma, 1)|
    speckle: float  # kurtosis-like outlier score of the fine residual
    coherence: float  # energy-weighted structure-tensor coherence (stroke orientation order)
    cross: float  # share of orientation energy at ±90° from the main orientation
    fine_peak: SpectralPeak  # strongest repeating component with a period of 3–12 working pixels
    coarse_peak: SpectralPeak  # ... and with a period of 12–48 working pixels
    blockiness: float  # step energy on the best block lattice beyond chance (noise ≈ 0, pixel art ≳ 0.06)
    block: int  # that lattice's period
    two_tone: float  # share of pixels within ±0.08 luma of the two main luma modes
    neutral_light: float  # share of near-white, unsaturated pixels (paper)


def to_working_array(image: Image.Image, side: int = WORK_SIDE) -> np.ndarray:
    """RGB float32 array in [0, 1]: longest side at most ``side`` (box-filtered), shortest ≥ ``MIN_SIDE``."""
    image = image.convert("RGB")
    scale = side / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX)
    if min(image.size) < MIN_SIDE:  # tiny or strip-like inputs: stretch so every filter has room
        image = image.resize(
            (max(image.width, MIN_SIDE), max(image.height, MIN_SIDE)), Image.Resampling.NEAREST
        )
    return np.asarray(image, dtype=F32) / 255.0


def srgb_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """OKLab of sRGB values in [0, 1] (any leading shape)."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return np.cbrt(linear @ _M1.T) @ _M2.T


def _kmeans(points: np.ndarray, k: int, iterations: int = 8) -> np.ndarray:
    """Labels of a small deterministic k-means (farthest-point initialisation)."""
    centers = [points[np.argmin(np.abs(points[:, 0] - np.median(points[:, 0])))]]
    nearest = ((points - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        centers.append(points[int(np.argmax(nearest))])
        nearest = np.minimum(nearest, ((points - centers[-1]) ** 2).sum(1))
    c = np.stack(centers)
    norms = (points**2).sum(1)[:, None]
    labels = np.full(len(points), -1, np.intp)
    for _ in range(iterations):
        # |x - c|² = |x|² - 2 x·c + |c|²: one small matrix product instead of an (N, k, 3) tensor.
        new = (norms - 2 * points @ c.T + (c**2).sum(1)[None]).argmin(1)
        if np.array_equal(new, labels):
            break  # converged
        labels = new
        counts = np.bincount(labels, minlength=k).astype(F32)
        sums = np.stack([np.bincount(labels, points[:, d], minlength=k) for d in range(3)], 1)
        c = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], c).astype(F32)
    return labels


def color_name(rgb: tuple[float, float, float], coarse: Mapping[str, str] | None = None) -> str:
    """Nearest ``COLORS`` name of an sRGB colour (0–255), mapped through ``coarse`` when given."""
    name = nearest_color_name(rgb)
    return name if coarse is None else coarse.get(name, name)


def color_clusters(
    rgb: np.ndarray, k: int = 8, coarse: Mapping[str, str] | None = None
) -> tuple[ColorCluster, ...]:
    """Named colour clusters of an image by area share (k-means in OKLab, same names merged).

    ``coarse`` maps the fine names to a smaller vocabulary (e.g. ``BASIC_COLORS``) before merging.
    """
    small = np.asarray(
        Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).resize(
            (COLOR_SIDE, COLOR_SIDE), Image.Resampling.BOX
        ),
        F32,
    ).reshape(-1, 3)
    lab = srgb_to_oklab(small / 255.0)
    # Why lightness is down-weighted: names should follow hue first, light/dark shades second.
    labels = _kmeans(lab * np.array([0.7, 1.0, 1.0], F32), min(k, len(lab)))
    merged: dict[str, list[np.ndarray]] = {}
    for j in np.unique(labels):
        members = small[labels == j]
        name = color_name(tuple(float(v) for v in members.mean(0)), coarse)  # type: ignore[arg-type]
        merged.setdefault(name, []).append(members)
    out = []
    for name, parts in merged.items():
        members = np.concatenate(parts)
        mean_lab = srgb_to_oklab(members.mean(0) / 255.0)
        out.append(
            ColorCluster(
                name=name,
                rgb=tuple(float(v) for v in members.mean(0)),  # type: ignore[arg-type]
                share=len(members) / len(small),
                chroma=float(np.hypot(mean_lab[1], mean_lab[2])),
                lightness=float(mean_lab[0]),
            )
        )
    return tuple(sorted(out, key=lambda c: (-c.share, c.name)))


def _sharpness(y: np.ndarray) -> tuple[float, float]:
    """(1-px step / 4-px step at the strongest edges, share of pixels with a clear step)."""
    ratios, dense = [], []
    for d1, d4 in (
        (np.abs(y[1:] - y[:-1]), np.abs(y[4:] - y[:-4])),
        (np.abs(y[:, 1:] - y[:, :-1]), np.abs(y[:, 4:] - y[:, :-4])),
    ):
        top4 = _quantile(d4, 0.99)
        # Why a ratio: a step edge changes fully within one pixel, a blurred one over several.
        ratios.append(0.0 if top4 < 0.05 else _quantile(d1, 0.995) / top4)
        dense.append(float((d1 > 0.1).mean()))
    return min(max(ratios), 1.5), float(np.mean(dense))


def _quantile(a: np.ndarray, q: float) -> float:
    """``q``-quantile by partition (no interpolation; faster than ``np.percentile``)."""
    flat = a.ravel()
    k = min(len(flat) - 1, int(q * len(flat)))
    return float(np.partition(flat, k)[k])


def _structure(smooth: np.ndarray) -> tuple[float, float]:
    """Energy-weighted orientation coherence and the share of energy orthogonal to the main direction."""
    gy, gx = np.gradient(smooth)
    gxx, gyy, gxy = gx * gx, gy * gy, gx * gy
    # The structure tensor averaged over ~9×9 windows (2×2 block means, then 5×5 boxes: 4× cheaper);
    # (Jxx − Jyy, 2 Jxy) is its anisotropic part.
    h, w = (smooth.shape[0] // 2) * 2, (smooth.shape[1] // 2) * 2
    a = np.stack([gxx - gyy, 2 * gxy])[:, :h, :w]
    quarter = a[:, ::2, ::2] + a[:, 1::2, ::2] + a[:, ::2, 1::2] + a[:, 1::2, 1::2]  # 4 × 2×2 means
    j = ndimage.uniform_filter(quarter, (0, 5, 5))
    weight = gxx + gyy
    total = float(weight.sum())
    if total < 1e-8:
        return 0.0, 0.0
    coherence = float(np.hypot(j[0], j[1]).sum() / total)
    # Doubled-angle orientation histogram of the per-pixel gradients, weighted by their energy.
    angle = np.arctan2(2 * gxy, gxx - gyy)  # 2θ in (-π, π]
    bins = np.minimum(((angle + np.pi) * (36 / (2 * np.pi))).astype(np.intp), 35)
    hist = np.bincount(bins.ravel(), weight.ravel(), minlength=36)
    main = int(hist.argmax())
    ortho = np.roll(hist, 18 - main)[16:21].sum()  # 2θ + π ≙ θ + 90°
    return coherence, float(ortho / max(hist.sum(), 1e-8))


@dataclass(frozen=True)
class _Frequencies:
    """Per-shape constants of the spectrum: window, frequency grids and the two band masks."""

    window: np.ndarray
    angle: np.ndarray  # wave-vector orientation in degrees, [0, 180)
    radius: np.ndarray  # cycles per pixel
    bands: tuple[np.ndarray, np.ndarray]  # fine (periods 3–12 px) and coarse (12–48 px)


@lru_cache(maxsize=8)
def _frequencies(h: int, w: int) -> _Frequencies:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    radius = np.hypot(fy, fx)
    bands = tuple((radius > 1 / hi) & (radius <= 1 / lo) for lo, hi in ((3, 12), (12, 48)))
    angle = np.degrees(np.arctan2(fy, fx)) % 180
    return _Frequencies(np.outer(np.hanning(h), np.hanning(w)).astype(F32), angle, radius, bands)  # type: ignore[arg-type]


def _band_peak(
    power: np.ndarray, local_max: np.ndarray, freq: _Frequencies, band: np.ndarray
) -> SpectralPeak:
    values = np.where(band, power, 0.0)
    mean = float(values.sum() / max(int(band.sum()), 1))
    if mean <= 0:
        return _NO_PEAK
    peak = np.unravel_index(int(values.argmax()), values.shape)
    top = float(values[peak])
    # Orientations of the strong local maxima (≥ 30 % of the peak and ≥ 8× the mean), merged within 15°.
    strong = local_max & (values >= max(0.3 * top, 8 * mean))
    directions: list[float] = []
    for a in freq.angle[strong]:
        if all(min(abs(a - b), 180 - abs(a - b)) > 15 for b in directions):
            directions.append(float(a))
    period = 1.0 / max(float(freq.radius[peak]), 1e-6)
    return SpectralPeak(top / mean, period, float(freq.angle[peak]), len(directions))


def _spectrum(y: np.ndarray) -> tuple[SpectralPeak, SpectralPeak]:
    """Strongest periodic components of the luma: fine (periods 3–12 px) and coarse (12–48 px)."""
    h, w = y.shape
    if min(h, w) < 16:
        return _NO_PEAK, _NO_PEAK
    freq = _frequencies(h, w)
    power = np.abs(np.fft.rfft2((y - y.mean()) * freq.window)) ** 2
    local_max = power == ndimage.maximum_filter(power, size=3)
    fine, coarse = (_band_peak(power, local_max, freq, band) for band in freq.bands)
    return fine, coarse


def _blockiness(y: np.ndarray) -> tuple[float, int]:
    """Best share of horizontal+vertical step energy that falls on a block lattice of period 3–12."""
    dx = np.abs(np.diff(y, axis=1)).sum(0)
    dy = np.abs(np.diff(y, axis=0)).sum(1)
    total = float(dx.sum() + dy.sum())
    if total < 1e-6:
        return 0.0, 0
    best, best_b = 0.0, 0
    for b in range(3, 13):
        # Lattice offsets may differ per axis; take the best offset of each axis separately.
        on = max(dx[o::b].sum() for o in range(b)) + max(dy[o::b].sum() for o in range(b))
        score = float(on / total) - 1.0 / b  # minus what a random texture would put there
        if score > best:
            best, best_b = score, b
    return best, best_b


def _two_tone(y: np.ndarray) -> float:
    """Share of pixels within ±0.08 luma of the two most common, well separated luma levels."""
    q = np.minimum((y * 32).astype(np.intp), 31).ravel()
    hist = np.bincount(q, minlength=32)
    order = np.argsort(hist)[::-1]
    first = int(order[0])
    second = next((int(i) for i in order[1:] if abs(int(i) - first) > 4), int(order[1]))
    # Count the histogram bins within ±0.08 (≈ 2.5 bins) of each mode instead of touching pixels.
    near = np.zeros(32, bool)
    for mode in (first, second):
        near[max(0, mode - 2) : mode + 3] = True
    return float(hist[near].sum() / len(q))


def _block_means(y: np.ndarray, blocks: int) -> np.ndarray:
    """Means of a ``blocks``×``blocks`` grid of tiles (a cheap large-scale blur)."""
    h, w = (y.shape[0] // blocks) * blocks, (y.shape[1] // blocks) * blocks
    if h == 0 or w == 0:
        return y
    return y[:h, :w].reshape(blocks, h // blocks, blocks, w // blocks).mean((1, 3))


@lru_cache(maxsize=8)
def _radius(h: int, w: int) -> np.ndarray:
    """Distance of each pixel from the centre, 1 at the middle of each border (cached per shape)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(F32)
    r = np.hypot((xx + 0.5) / w * 2 - 1, (yy + 0.5) / h * 2 - 1)
    r.flags.writeable = False
    return r


def measure(image: Image.Image, coarse_colors: Mapping[str, str] | None = None) -> Measurements:
    """All pixel measurements of one image (deterministic, ~10 ms at 256² on one core).

    ``coarse_colors`` maps colour names to a smaller vocabulary (None: the fine ``COLORS`` names).
    """
    rgb = to_working_array(image)
    y = rgb @ _LUMA
    h, w = y.shape
    clusters = color_clusters(rgb, coarse=coarse_colors)
    # Elementwise max/min of the channels: numpy's reductions over a length-3 last axis are slow.
    r_, g_, b_ = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cmax, cmin = np.maximum(np.maximum(r_, g_), b_), np.minimum(np.minimum(r_, g_), b_)
    sat = (cmax - cmin) / np.maximum(cmax, 1e-3)
    r = _radius(h, w)
    blurred = ndimage.gaussian_filter(y, 1.0)
    residual = y - blurred
    abs_res = np.abs(residual)
    mad = _quantile(abs_res, 0.5)
    spread = _quantile(abs_res, 0.995)
    coarse = _block_means(y, 16)
    median = _quantile(y, 0.5)
    sharpness, edge_density = _sharpness(y)
    coherence, cross = _structure(blurred)
    fine_peak, coarse_peak = _spectrum(y)
    blockiness, block = _blockiness(y)
    return Measurements(
        clusters=clusters,
        palette_size=sum(c.share >= 0.02 for c in clusters),
        luma_mean=float(y.mean()),
        luma_median=median,
        contrast=float(y.std()),
        dark_share=float((y < 0.15).mean()),
        bright_share=float((y > 0.85).mean()),
        saturation=float(sat.mean()),
        vivid_share=float(((sat > 0.5) & (cmax > 0.5)).mean()),
        warmth=float((rgb[..., 0] - rgb[..., 2]).mean()),
        vignette=float(y[r < 0.4].mean() - y[r > 0.85].mean()),
        glow=float(coarse.max() - median),
        sharpness=sharpness,
        edge_density=edge_density,
        fine_texture=mad,
        speckle=spread / max(mad, 1e-3),
        coherence=coherence,
        cross=cross,
        fine_peak=fine_peak,
        coarse_peak=coarse_peak,
        blockiness=blockiness,
        block=block,
        two_tone=_two_tone(y),
        neutral_light=float(((y > 0.75) & (sat < 0.15)).mean()),
    )
