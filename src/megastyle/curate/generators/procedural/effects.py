"""Style effects applied after the medium: brushwork, surface texture, lighting and edge treatment."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from megastyle.curate.generators.procedural.media import Canvas
from megastyle.curate.generators.procedural.style import Lighting
from megastyle.curate.generators.procedural.textures import (
    F32,
    blur,
    boundaries,
    grid,
    lum,
    mix,
    noise,
    rotated,
    saturate,
    smoothstep,
    streaks,
    strokes,
    take,
    tri,
    voronoi,
)
from megastyle.prompts.vocabulary import SURFACES

# --- brushwork ---------------------------------------------------------------------------------


def _stroke_resample(img: np.ndarray, cv: Canvas, length: float, width: float, angle: int, amount: float):
    st = strokes(cv.size, angle % 180, max(2, round(length)), max(2, round(width)))
    col = take(img, st.idx) * (0.92 + 0.16 * st.value)[..., None]
    return mix(img, col, amount * (0.6 + 0.4 * st.ridge)[..., None])


def apply_brushwork(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Overlay the style's stroke texture (direction and size from the brushwork phrase)."""
    name, s, n = cv.spec.brushwork, cv.s, cv.size
    if name is None:
        return img
    angle = cv.angle_deg
    if name == "loose expressive strokes":
        # Big sweeping strokes: displace the image along a smooth field, then lay long strokes.
        g = cv.grid
        dx = ((noise(cv.rng, n, 60 * s) - 0.5) * 8 * s + g.x).astype(np.intp)
        dy = ((noise(cv.rng, n, 60 * s) - 0.5) * 8 * s + g.y).astype(np.intp)
        warped = img[np.clip(dy, 0, n - 1), np.clip(dx, 0, n - 1)]
        return _stroke_resample(warped, cv, 22 * s, 7 * s, angle + 20, 0.45)
    if name == "fine precise strokes":
        st = streaks(cv.rng, n, np.radians(angle), 10 * s, 0.8 * s)
        return img * (0.9 + 0.2 * st)[..., None]
    if name == "bold thick strokes":
        return _stroke_resample(img, cv, 16 * s, 7 * s, angle, 0.6)
    if name == "dry brush strokes":
        st = streaks(cv.rng, n, np.radians(angle), 40 * s, 1.2 * s)
        gaps = smoothstep(0.62, 0.75, st)[..., None]  # bristles skipping: paper shows through
        return mix(img, cv.spec.palette.paper, gaps * 0.6)
    if name == "dotted touches":
        g = cv.grid
        p = 7 * s
        fx, fy = g.x / p, g.y / p + 0.5 * (np.floor(g.x / p) % 2)
        d = np.hypot(fx - np.floor(fx) - 0.5, fy - np.floor(fy) - 0.5)
        sy = np.clip((np.floor(fy) + 0.5 - 0.5 * (np.floor(g.x / p) % 2)) * p, 0, n - 1).astype(np.intp)
        sx = np.clip((np.floor(fx) + 0.5) * p, 0, n - 1).astype(np.intp)
        dot = smoothstep(0.45, 0.3, d)[..., None]
        return mix(img * 0.93, take(img, sy * n + sx) * 1.05, dot)
    if name == "cross hatched lines":
        h1 = tri(rotated(n, float(angle))[1] / (4 * s)) < 0.25
        h2 = tri(rotated(n, float(angle + 90))[1] / (4 * s)) < 0.25
        dark = np.clip(1 - lum(img) + 0.2, 0, 1)
        return img * (1 - 0.3 * dark * (h1 | (h2 & (dark > 0.5))))[..., None]
    if name == "smooth blended gradients":
        ramp = mix(
            0.92, 1.08, (cv.grid.u * np.cos(cv.spec.angle) + cv.grid.v * np.sin(cv.spec.angle) + 1) / 2
        )
        return blur(img, 2.0 * s) * ramp[..., None]
    if name == "short choppy dabs":
        a = _stroke_resample(img, cv, 8 * s, 5 * s, angle, 0.8)
        b = _stroke_resample(img, cv, 8 * s, 5 * s, angle + 75, 0.8)
        pick = noise(cv.rng, n, 10 * s) > 0.5
        return np.where(pick[..., None], a, b)
    raise KeyError(name)


# --- surface ------------------------------------------------------------------------------------


def apply_surface(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """The physical surface under the medium: matte, gloss, grain, weave, cracks, crumples, specks, velvet."""
    name, s, n, g = cv.spec.surface, cv.s, cv.size, cv.grid
    if name == "smooth matte":
        m = float(img.mean())
        return (img - m) * 0.88 + m + 0.03
    if name == "glossy":
        band = np.exp(-(((g.u + g.v) * 0.7 + 0.35) ** 2) / 0.02) * 0.22  # a diagonal sheen
        out = np.clip(saturate((img - 0.5) * 1.12 + 0.5, 1.15), 0, 1)
        hi = np.zeros(img.shape[:2], F32)
        obj = cv.labels >= 2
        d = max(1, round(4 * s))
        hi[d:, d:] = (obj[d:, d:] & ~obj[:-d, :-d]).astype(F32)  # upper-left inner rim of each object
        return out + (band + 0.35 * blur(hi, 1.5 * s))[..., None]
    if name == "rough grainy":
        grain = cv.rng.standard_normal((n, n), dtype=F32) * 0.09
        return img * (1 + grain + (noise(cv.rng, n, 12 * s) - 0.5) * 0.15)[..., None]
    if name == "canvas weave":
        p = 4 * s
        wx, wy = np.sin(g.x * (2 * np.pi / p)), np.sin(g.y * (2 * np.pi / p))
        over = np.where((np.floor(g.x / p) + np.floor(g.y / p)) % 2 == 0, wx, wy)
        return img * (1 + 0.12 * over + 0.05 * wx * wy)[..., None]
    if name == "cracked aged":
        # Craquelure: fine, irregular cracks that fade in and out, on yellowed varnish.
        _, border = voronoi(n, max(6, round(15 * s)), cv.variant % 4)
        wobble = (noise(cv.rng, n, 4 * s) - 0.5) * 1.5 * s
        fade = smoothstep(0.25, 0.55, noise(cv.rng, n, 40 * s))
        crack = smoothstep(0.8 * s, 0.1 * s, border + wobble) * fade
        aged = mix(img, img * np.array([1.0, 0.88, 0.66], F32), 0.4)
        return aged * (1 - 0.5 * crack)[..., None] * (0.88 + 0.12 * (1 - g.r * 0.7))[..., None]
    if name == "crumpled paper":
        height = np.abs(noise(cv.rng, n, 36 * s, 3) - 0.5)  # creases at the noise's zero crossings
        gy, gx = np.gradient(height)
        shade = 1 + (gx + gy) * -14 / s
        return img * np.clip(shade, 0.8, 1.15)[..., None]
    if name == "speckled":
        r = cv.rng.random((n, n), dtype=F32)
        specks = blur(((r < 0.012).astype(F32) - (r > 0.988)), 0.6 * s) * 2.2
        return img * (1 - np.clip(specks, -0.6, 0.8))[..., None]
    if name == "velvety":
        soft = blur(img, 1.2 * s)
        sheen = blur(boundaries(cv.labels).astype(F32), 3 * s) * 0.25
        return np.clip(soft, 0, None) ** 1.18 * 0.95 + sheen[..., None] * soft
    raise KeyError(f"{name!r} not in {SURFACES}")


# --- lighting -----------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _light_maps(lt: Lighting, size: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Per-pixel light field, glow falloff and haze amount of a lighting, cached (style-only, no image)."""
    g = grid(size)
    a = np.radians(lt.angle)
    ramp = 1 + lt.directional * (g.u * np.cos(a) + g.v * np.sin(a)) * 0.5
    field = (lt.gain * ramp * (1 - lt.vignette * np.clip(g.r - 0.35, 0, None) ** 2 * 1.4)).astype(F32)
    glow = None
    if lt.glow:
        gx, gy = lt.glow_pos
        glow = (lt.glow * np.exp(-((g.u - gx) ** 2 + (g.v - gy) ** 2) / lt.glow_radius**2)).astype(F32)
    haze = (lt.haze * (1.1 - 0.4 * (g.v + 1) / 2)).astype(F32) if lt.haze else None
    for arr in (field, glow, haze):
        if arr is not None:
            arr.flags.writeable = False
    return field, glow, haze


def apply_lighting(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Global light: directional ramp, vignette, tint, contrast, saturation, haze, glow and rim light."""
    lt = cv.spec.lighting
    field, glow, haze = _light_maps(lt, cv.size)
    # Contrast around mid-grey is folded into the tint: (x * f * t - 0.5) * c + 0.5.
    out = img * field[..., None] * (np.array(lt.tint, F32) * F32(lt.contrast)) + F32(0.5 - 0.5 * lt.contrast)
    if lt.saturation != 1.0:
        out = saturate(out, lt.saturation)
    if haze is not None:
        out = mix(out, np.array(lt.haze_color, F32), haze[..., None])
    if glow is not None:
        out += glow[..., None] * np.array(lt.glow_color, F32)
    if lt.rim:
        rim = blur(boundaries(cv.labels).astype(F32), 1.2 * cv.s) * lt.rim
        out = out + rim[..., None] * np.array(lt.glow_color, F32)
    return out


# --- edges --------------------------------------------------------------------------------------


def apply_edges(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """Soft: feathered, blurred outlines; sharp: unsharp-masked image with crisp dark contours."""
    if cv.spec.edges is None:
        return img
    s = cv.s
    if cv.spec.edges == "soft":
        return blur(img, 1.6 * s)
    crisp = img + (img - blur(img, 1.5 * s)) * 1.2
    line = boundaries(cv.labels)
    return crisp * np.where(line, 0.45, 1.0)[..., None]


def apply_look(img: np.ndarray, cv: Canvas) -> np.ndarray:
    """The identity's mild grade (saturation, contrast, warmth) on the flat scene."""
    sat, contrast, warmth = cv.spec.look
    out = saturate((img - 0.5) * contrast + 0.5, sat)
    return out + np.array([warmth, 0.0, -warmth], F32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Clip a float image to [0, 1] and quantise to uint8."""
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
