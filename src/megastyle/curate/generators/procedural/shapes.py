"""Object silhouettes: every name in ``OBJECTS`` as a few drawing primitives with colour-role parts.

Coordinates are in units of the object's height: x in [0, aspect], y in [0, 1] (down), so that
circles stay round. Parts pick colours: 0 body, 1 accent, 2 dark detail, 3 light detail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import ImageDraw

from megastyle.prompts.vocabulary import OBJECTS, stable_hash

BODY, ACCENT, DARK, LIGHT = 0, 1, 2, 3
N_PARTS = 4

Prim = tuple  # (kind, part, *geometry); kinds: poly, ellipse, rect, line, ring, pie, arc


@dataclass(frozen=True)
class Shape:
    """A silhouette: primitives, width/height ``aspect``, nominal ``size``, top surface ``support``."""

    prims: tuple[Prim, ...]
    aspect: float = 1.0
    size: float = 0.5  # height relative to a house (1.0); layout compresses the spread
    support: float = 0.0  # y of the surface things rest "on"
    floating: bool = False  # sky things float above the ground when nothing places them


def P(part: int, *pts: tuple[float, float]) -> Prim:
    """Polygon primitive."""
    return ("poly", part, pts)


def E(part: int, x0: float, y0: float, x1: float, y1: float) -> Prim:
    """Ellipse primitive from its bounding box."""
    return ("ellipse", part, (x0, y0, x1, y1))


def C(part: int, cx: float, cy: float, r: float) -> Prim:
    """Circle primitive."""
    return E(part, cx - r, cy - r, cx + r, cy + r)


def R(part: int, x0: float, y0: float, x1: float, y1: float) -> Prim:
    """Rectangle primitive."""
    return ("rect", part, (x0, y0, x1, y1))


def L(part: int, width: float, *pts: tuple[float, float]) -> Prim:
    """Polyline primitive with a width in height units."""
    return ("line", part, pts, width)


def RING(part: int, cx: float, cy: float, r: float, width: float) -> Prim:
    """Circle outline primitive."""
    return ("ring", part, (cx - r, cy - r, cx + r, cy + r), width)


def PIE(part: int, box: tuple[float, float, float, float], start: float, end: float) -> Prim:
    """Pie-slice primitive (angles in degrees, clockwise from 3 o'clock as in PIL)."""
    return ("pie", part, box, start, end)


def ARC(part: int, box: tuple[float, float, float, float], start: float, end: float, width: float) -> Prim:
    """Arc outline primitive."""
    return ("arc", part, box, start, end, width)


def _star(cx: float, cy: float, r_out: float, r_in: float, n: int = 5) -> tuple[tuple[float, float], ...]:
    pts = []
    for k in range(2 * n):
        r = r_out if k % 2 == 0 else r_in
        a = -math.pi / 2 + k * math.pi / n
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return tuple(pts)


def _crescent() -> tuple[tuple[float, float], ...]:
    outer = [(0.5 + 0.45 * math.cos(a), 0.5 + 0.45 * math.sin(a)) for a in np.linspace(-2.2, 2.2, 24)]
    inner = [(0.3 + 0.38 * math.cos(a), 0.5 + 0.36 * math.sin(a)) for a in np.linspace(1.35, -1.35, 18)]
    return tuple(outer + inner)


def _leaf(cx: float, w: float, top: float, bottom: float) -> tuple[tuple[float, float], ...]:
    ts = np.linspace(0, math.pi, 14)
    right = [(cx + w * math.sin(t), top + (bottom - top) * (1 - math.cos(t)) / 2) for t in ts]
    left = [(cx - w * math.sin(t), top + (bottom - top) * (1 - math.cos(t)) / 2) for t in ts[::-1]]
    return tuple(right + left)


def _rays(cx: float, cy: float, r0: float, r1: float, n: int) -> list[Prim]:
    out = []
    for k in range(n):
        a = 2 * math.pi * k / n
        da = math.pi / n * 0.45
        out.append(
            P(
                ACCENT,
                (cx + r0 * math.cos(a - da), cy + r0 * math.sin(a - da)),
                (cx + r1 * math.cos(a), cy + r1 * math.sin(a)),
                (cx + r0 * math.cos(a + da), cy + r0 * math.sin(a + da)),
            )
        )
    return out


def _ticks() -> list[Prim]:
    out = []
    for k in range(12):
        a = 2 * math.pi * k / 12
        out.append(
            L(
                DARK,
                0.03,
                (0.5 + 0.34 * math.cos(a), 0.5 + 0.34 * math.sin(a)),
                (0.5 + 0.41 * math.cos(a), 0.5 + 0.41 * math.sin(a)),
            )
        )
    return out


# fmt: off
SHAPES: dict[str, Shape] = {
    "house": Shape((R(ACCENT, 0.68, 0.1, 0.8, 0.4), R(BODY, 0.15, 0.45, 0.85, 1.0),
                    P(ACCENT, (0.03, 0.48), (0.5, 0.05), (0.97, 0.48)), R(DARK, 0.43, 0.68, 0.57, 1.0),
                    R(LIGHT, 0.22, 0.56, 0.36, 0.7), R(LIGHT, 0.64, 0.56, 0.78, 0.7)), 1.0, 1.0, 0.1),
    "tree": Shape((R(DARK, 0.32, 0.5, 0.44, 1.0), C(BODY, 0.22, 0.42, 0.2), C(BODY, 0.54, 0.42, 0.2),
                   C(BODY, 0.38, 0.24, 0.24), C(BODY, 0.38, 0.52, 0.16)), 0.76, 1.25, 0.1),
    "car": Shape((P(BODY, (0.45, 0.47), (0.65, 0.12), (1.35, 0.12), (1.62, 0.47)),
                  R(BODY, 0.04, 0.45, 1.96, 0.8), P(LIGHT, (0.6, 0.45), (0.74, 0.2), (0.97, 0.2), (0.97, 0.45)),
                  P(LIGHT, (1.05, 0.45), (1.05, 0.2), (1.3, 0.2), (1.47, 0.45)), C(DARK, 0.45, 0.8, 0.2),
                  C(DARK, 1.55, 0.8, 0.2), C(LIGHT, 0.45, 0.8, 0.08), C(LIGHT, 1.55, 0.8, 0.08),
                  E(ACCENT, 1.82, 0.5, 1.96, 0.6)), 2.0, 0.6, 0.12),
    "bench": Shape((R(DARK, 0.2, 0.1, 0.28, 0.55), R(DARK, 1.52, 0.1, 1.6, 0.55), R(BODY, 0.08, 0.12, 1.72, 0.22),
                    R(BODY, 0.08, 0.28, 1.72, 0.38), R(BODY, 0.02, 0.5, 1.78, 0.6), R(DARK, 0.15, 0.6, 0.25, 1.0),
                    R(DARK, 1.55, 0.6, 1.65, 1.0)), 1.8, 0.5, 0.5),
    "cat": Shape((L(BODY, 0.08, (0.22, 0.92), (0.05, 0.8), (0.03, 0.55), (0.12, 0.4)), E(BODY, 0.15, 0.42, 0.8, 1.0),
                  P(BODY, (0.38, 0.25), (0.41, -0.0), (0.53, 0.14)), P(BODY, (0.58, 0.14), (0.7, 0.0), (0.73, 0.25)),
                  C(BODY, 0.55, 0.3, 0.2), C(ACCENT, 0.48, 0.27, 0.04), C(ACCENT, 0.63, 0.27, 0.04),
                  P(DARK, (0.52, 0.36), (0.58, 0.36), (0.55, 0.4))), 0.85, 0.45),
    "dog": Shape((L(BODY, 0.07, (0.3, 0.42), (0.12, 0.18)), E(BODY, 0.22, 0.32, 1.08, 0.7),
                  R(BODY, 0.3, 0.55, 0.42, 1.0), R(BODY, 0.86, 0.55, 0.98, 1.0), E(BODY, 0.9, 0.08, 1.32, 0.45),
                  E(BODY, 1.15, 0.24, 1.45, 0.44), P(DARK, (0.98, 0.12), (0.9, 0.46), (1.08, 0.38)),
                  C(DARK, 1.17, 0.2, 0.035), C(DARK, 1.43, 0.3, 0.04), R(ACCENT, 0.88, 0.42, 1.0, 0.5)),
                 1.45, 0.5),
    "bird": Shape((P(BODY, (0.3, 0.48), (0.0, 0.3), (0.04, 0.62)), E(BODY, 0.2, 0.28, 1.0, 0.76),
                   C(BODY, 0.95, 0.3, 0.18), P(ACCENT, (1.08, 0.23), (1.32, 0.32), (1.08, 0.4)),
                   P(DARK, (0.35, 0.45), (0.72, 0.42), (0.48, 0.1)), C(DARK, 1.0, 0.26, 0.035),
                   L(DARK, 0.03, (0.55, 0.72), (0.5, 1.0)), L(DARK, 0.03, (0.7, 0.72), (0.73, 1.0))),
                  1.32, 0.28, floating=True),
    "fish": Shape((P(ACCENT, (0.55, 0.5), (0.05, 0.12), (0.18, 0.5), (0.05, 0.88)), E(BODY, 0.4, 0.18, 1.72, 0.82),
                   P(ACCENT, (0.85, 0.22), (1.05, 0.02), (1.25, 0.22)), C(LIGHT, 1.42, 0.42, 0.09),
                   C(DARK, 1.44, 0.42, 0.045), L(DARK, 0.03, (0.95, 0.25), (0.9, 0.5), (0.95, 0.75))),
                  1.8, 0.35),
    "flower": Shape((L(DARK, 0.05, (0.35, 0.45), (0.35, 1.0)), P(DARK, *_leaf(0.5, 0.06, 0.62, 0.9)),
                     *(C(BODY, 0.35 + 0.17 * math.cos(k * math.pi / 3), 0.3 + 0.17 * math.sin(k * math.pi / 3), 0.12)
                       for k in range(6)), C(ACCENT, 0.35, 0.3, 0.1)), 0.7, 0.45),
    "boat": Shape((P(BODY, (0.0, 0.6), (1.6, 0.6), (1.35, 0.95), (0.25, 0.95)), L(DARK, 0.035, (0.8, 0.02), (0.8, 0.6)),
                   P(ACCENT, (0.84, 0.04), (0.84, 0.55), (1.38, 0.55)), P(LIGHT, (0.76, 0.12), (0.76, 0.55), (0.3, 0.55)),
                   R(DARK, 0.15, 0.66, 1.45, 0.71)), 1.6, 0.6),
    "mountain": Shape((P(BODY, (0.0, 1.0), (0.55, 0.08), (0.8, 0.45), (1.05, 0.25), (1.6, 1.0)),
                       P(LIGHT, (0.42, 0.3), (0.55, 0.08), (0.68, 0.3), (0.6, 0.26), (0.55, 0.34), (0.5, 0.27)),
                       P(LIGHT, (0.95, 0.38), (1.05, 0.25), (1.15, 0.4), (1.05, 0.36))), 1.6, 1.5),
    "sun": Shape((*_rays(0.5, 0.5, 0.3, 0.5, 12), C(ACCENT, 0.5, 0.5, 0.3)), 1.0, 0.5, floating=True),
    "moon": Shape((P(LIGHT, *_crescent()),), 1.0, 0.45, floating=True),
    "star": Shape((P(ACCENT, *_star(0.5, 0.53, 0.5, 0.2)),), 1.0, 0.3, floating=True),
    "cloud": Shape((E(LIGHT, 0.1, 0.45, 0.7, 0.95), E(LIGHT, 0.45, 0.12, 1.15, 0.85), E(LIGHT, 0.95, 0.35, 1.7, 0.95),
                    R(LIGHT, 0.4, 0.6, 1.4, 0.95)), 1.8, 0.45, floating=True),
    "cup": Shape((RING(BODY, 0.82, 0.52, 0.18, 0.08), P(BODY, (0.15, 0.25), (0.85, 0.25), (0.75, 0.92), (0.25, 0.92)),
                  R(ACCENT, 0.17, 0.38, 0.83, 0.46), E(ACCENT, 0.0, 0.88, 1.0, 1.0), E(DARK, 0.17, 0.2, 0.83, 0.3)),
                 1.05, 0.3, 0.88),
    "bottle": Shape((R(BODY, 0.05, 0.4, 0.4, 1.0), P(BODY, (0.05, 0.42), (0.16, 0.24), (0.29, 0.24), (0.4, 0.42)),
                     R(BODY, 0.16, 0.06, 0.29, 0.27), R(ACCENT, 0.14, 0.0, 0.31, 0.08), R(LIGHT, 0.05, 0.56, 0.4, 0.76)),
                    0.45, 0.45),
    "chair": Shape((R(DARK, 0.12, 0.0, 0.2, 0.5), R(DARK, 0.6, 0.0, 0.68, 0.5), R(BODY, 0.12, 0.04, 0.68, 0.36),
                    R(ACCENT, 0.22, 0.12, 0.58, 0.28), R(BODY, 0.04, 0.46, 0.76, 0.56), R(DARK, 0.08, 0.56, 0.16, 1.0),
                    R(DARK, 0.64, 0.56, 0.72, 1.0)), 0.8, 0.6, 0.46),
    "table": Shape((R(BODY, 0.0, 0.3, 1.6, 0.42), R(ACCENT, 0.1, 0.42, 1.5, 0.5), R(DARK, 0.1, 0.42, 0.22, 1.0),
                    R(DARK, 1.38, 0.42, 1.5, 1.0)), 1.6, 0.55, 0.3),
    "lamp": Shape((R(DARK, 0.32, 0.38, 0.38, 0.92), E(BODY, 0.1, 0.88, 0.6, 1.0),
                   P(ACCENT, (0.12, 0.42), (0.58, 0.42), (0.46, 0.04), (0.24, 0.04))), 0.7, 0.6),
    "umbrella": Shape((L(DARK, 0.04, (0.6, 0.35), (0.6, 0.9)), ARC(DARK, (0.42, 0.78, 0.62, 1.0), 0, 180, 0.04),
                       PIE(BODY, (0.0, 0.0, 1.2, 0.8), 180, 360), PIE(ACCENT, (0.4, 0.0, 0.8, 0.8), 180, 360),
                       L(DARK, 0.03, (0.6, -0.02), (0.6, 0.05))), 1.2, 0.7),
    "bicycle": Shape((RING(DARK, 0.32, 0.7, 0.3, 0.06), RING(DARK, 1.48, 0.7, 0.3, 0.06),
                      L(BODY, 0.055, (0.32, 0.7), (0.8, 0.72), (0.7, 0.28), (0.32, 0.7)),
                      L(BODY, 0.055, (0.7, 0.28), (1.32, 0.3), (0.8, 0.72)), L(BODY, 0.055, (1.32, 0.3), (1.48, 0.7)),
                      L(DARK, 0.05, (1.25, 0.18), (1.3, 0.3), (1.45, 0.2)), R(ACCENT, 0.58, 0.2, 0.82, 0.27)),
                     1.8, 0.6),
    "apple": Shape((C(BODY, 0.36, 0.6, 0.34), C(BODY, 0.64, 0.6, 0.34), L(DARK, 0.05, (0.5, 0.32), (0.55, 0.04)),
                    P(ACCENT, *_leaf(0.7, 0.07, 0.02, 0.26)), E(LIGHT, 0.22, 0.42, 0.34, 0.58)), 1.0, 0.3),
    "pear": Shape((C(BODY, 0.4, 0.7, 0.3), E(BODY, 0.22, 0.14, 0.58, 0.66), L(DARK, 0.05, (0.4, 0.16), (0.46, 0.0)),
                   P(ACCENT, *_leaf(0.58, 0.05, 0.0, 0.2))), 0.8, 0.35),
    "heart": Shape((C(ACCENT, 0.3, 0.32, 0.25), C(ACCENT, 0.7, 0.32, 0.25), P(ACCENT, (0.07, 0.42), (0.93, 0.42),
                                                                            (0.5, 0.96))), 1.0, 0.4),
    "key": Shape((RING(ACCENT, 0.35, 0.5, 0.28, 0.14), R(ACCENT, 0.62, 0.43, 1.95, 0.57),
                  R(ACCENT, 1.55, 0.57, 1.65, 0.82), R(ACCENT, 1.76, 0.57, 1.86, 0.74)), 2.0, 0.25),
    "bell": Shape((RING(DARK, 0.5, 0.07, 0.07, 0.035),
                   P(ACCENT, (0.1, 0.86), (0.22, 0.7), (0.25, 0.3), (0.35, 0.13), (0.5, 0.09), (0.65, 0.13),
                     (0.75, 0.3), (0.78, 0.7), (0.9, 0.86)),
                   C(DARK, 0.5, 0.91, 0.09), R(ACCENT, 0.05, 0.8, 0.95, 0.88), R(LIGHT, 0.3, 0.45, 0.7, 0.52)),
                  1.0, 0.4),
    "kite": Shape((L(DARK, 0.02, (0.4, 0.75), (0.3, 0.84), (0.46, 0.92), (0.34, 1.0)),
                   P(BODY, (0.4, 0.0), (0.75, 0.3), (0.4, 0.3)), P(ACCENT, (0.4, 0.0), (0.05, 0.3), (0.4, 0.3)),
                   P(ACCENT, (0.75, 0.3), (0.4, 0.75), (0.4, 0.3)), P(BODY, (0.05, 0.3), (0.4, 0.75), (0.4, 0.3)),
                   P(ACCENT, (0.3, 0.8), (0.38, 0.86), (0.3, 0.9))), 0.8, 0.45, floating=True),
    "balloon": Shape((L(DARK, 0.015, (0.33, 0.72), (0.28, 0.85), (0.36, 1.0)), E(ACCENT, 0.05, 0.0, 0.63, 0.7),
                      P(ACCENT, (0.34, 0.68), (0.28, 0.76), (0.4, 0.76)), E(LIGHT, 0.16, 0.12, 0.26, 0.28)),
                     0.68, 0.5, floating=True),
    "clock": Shape((C(BODY, 0.5, 0.5, 0.5), C(LIGHT, 0.5, 0.5, 0.42), *_ticks(), L(DARK, 0.05, (0.5, 0.5), (0.5, 0.2)),
                    L(DARK, 0.04, (0.5, 0.5), (0.74, 0.58)), C(ACCENT, 0.5, 0.5, 0.05)), 1.0, 0.45),
    "book": Shape((P(BODY, (0.0, 0.16), (0.65, 0.26), (1.3, 0.16), (1.3, 0.9), (0.65, 1.0), (0.0, 0.9)),
                   P(LIGHT, (0.06, 0.2), (0.63, 0.3), (0.63, 0.92), (0.06, 0.83)),
                   P(LIGHT, (0.67, 0.3), (1.24, 0.2), (1.24, 0.83), (0.67, 0.92)),
                   *(L(DARK, 0.02, (0.14, 0.34 + 0.1 * k), (0.55, 0.41 + 0.1 * k)) for k in range(4)),
                   *(L(DARK, 0.02, (0.75, 0.41 + 0.1 * k), (1.16, 0.34 + 0.1 * k)) for k in range(4))),
                  1.3, 0.35, 0.16),
    "candle": Shape((R(LIGHT, 0.1, 0.36, 0.4, 1.0), L(DARK, 0.025, (0.25, 0.36), (0.25, 0.28)),
                     P(ACCENT, (0.25, 0.0), (0.35, 0.18), (0.25, 0.3), (0.15, 0.18)), R(ACCENT, 0.1, 0.36, 0.4, 0.42),
                     E(BODY, 0.03, 0.92, 0.47, 1.0)), 0.5, 0.4),
    "tower": Shape((P(BODY, (0.04, 1.0), (0.09, 0.26), (0.36, 0.26), (0.41, 1.0)), R(BODY, 0.01, 0.15, 0.44, 0.27),
                    *(R(BODY, 0.01 + 0.1 * k, 0.06, 0.07 + 0.1 * k, 0.16) for k in range(0, 5, 2)),
                    R(DARK, 0.17, 0.4, 0.27, 0.52), R(DARK, 0.17, 0.62, 0.27, 0.74), PIE(DARK, (0.14, 0.82, 0.3, 0.98), 180, 360),
                    R(DARK, 0.14, 0.9, 0.3, 1.0), R(ACCENT, 0.07, 0.26, 0.38, 0.3)), 0.45, 1.4),
    "bridge": Shape((ARC(BODY, (0.2, 0.44, 2.2, 1.6), 180, 360, 0.12), R(BODY, 0.1, 0.47, 0.35, 1.0),
                     R(BODY, 2.05, 0.47, 2.3, 1.0), R(BODY, 0.0, 0.35, 2.4, 0.47),
                     *(L(DARK, 0.03, (0.15 + 0.3 * k, 0.35), (0.15 + 0.3 * k, 0.2)) for k in range(8)),
                     L(DARK, 0.03, (0.05, 0.2), (2.35, 0.2))), 2.4, 0.7, 0.35),
    "mushroom": Shape((R(LIGHT, 0.36, 0.4, 0.64, 1.0), PIE(ACCENT, (0.0, 0.06, 1.0, 0.8), 180, 360),
                       C(LIGHT, 0.3, 0.3, 0.07), C(LIGHT, 0.55, 0.18, 0.06), C(LIGHT, 0.75, 0.34, 0.07),
                       R(DARK, 0.0, 0.43, 1.0, 0.46)), 1.0, 0.4),
    "leaf": Shape((P(BODY, *_leaf(0.4, 0.3, 0.0, 0.92)), L(DARK, 0.03, (0.4, 0.05), (0.4, 1.0)),
                   *(L(DARK, 0.02, (0.4, 0.3 + 0.15 * k), (0.4 + s * 0.2, 0.2 + 0.15 * k)) for k in range(3)
                     for s in (-1, 1))), 0.8, 0.35),
    "vase": Shape((P(BODY, (0.2, 0.0), (0.5, 0.0), (0.47, 0.12), (0.65, 0.45), (0.55, 0.9), (0.45, 1.0), (0.25, 1.0),
                     (0.15, 0.9), (0.05, 0.45), (0.23, 0.12)), R(ACCENT, 0.06, 0.42, 0.64, 0.52),
                   R(DARK, 0.19, 0.0, 0.51, 0.04)), 0.7, 0.5),
    "hat": Shape((E(BODY, 0.0, 0.78, 1.5, 1.0), R(BODY, 0.35, 0.08, 1.15, 0.88), R(ACCENT, 0.35, 0.64, 1.15, 0.78),
                  E(BODY, 0.35, 0.02, 1.15, 0.14)), 1.5, 0.35),
    "guitar": Shape((R(DARK, 0.23, 0.06, 0.32, 0.5), R(DARK, 0.19, 0.0, 0.36, 0.09), C(BODY, 0.275, 0.76, 0.25),
                     C(BODY, 0.275, 0.45, 0.19), C(DARK, 0.275, 0.52, 0.07), R(ACCENT, 0.18, 0.76, 0.37, 0.8)),
                    0.55, 0.8),
    "butterfly": Shape((E(BODY, 0.05, 0.05, 0.68, 0.55), E(BODY, 0.72, 0.05, 1.35, 0.55), E(ACCENT, 0.18, 0.45, 0.68, 0.92),
                        E(ACCENT, 0.72, 0.45, 1.22, 0.92), C(LIGHT, 0.35, 0.3, 0.08), C(LIGHT, 1.05, 0.3, 0.08),
                        E(DARK, 0.64, 0.12, 0.76, 0.92), L(DARK, 0.025, (0.68, 0.14), (0.55, 0.0)),
                        L(DARK, 0.025, (0.72, 0.14), (0.85, 0.0))), 1.4, 0.35, floating=True),
}
# fmt: on

assert set(SHAPES) == set(OBJECTS), set(OBJECTS) ^ set(SHAPES)


@lru_cache(maxsize=1024)
def unknown_shape(name: str) -> Shape:
    """A deterministic made-up silhouette for an object name outside the vocabulary."""
    rng = np.random.default_rng(stable_hash(name, "shape"))
    aspect = float(rng.uniform(0.6, 1.6))
    n = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.55, 1.0, n)
    pts = tuple(
        (aspect / 2 * (1 + 0.95 * r * math.cos(a)), 0.5 + 0.48 * r * math.sin(a))
        for a, r in zip(angles, radii, strict=True)
    )
    prims: list[Prim] = [P(BODY, *pts)]
    kind = int(rng.integers(0, 3))
    if kind == 0:
        prims.append(C(ACCENT, aspect / 2, 0.5, 0.16))
    elif kind == 1:
        prims.append(R(ACCENT, aspect * 0.2, 0.45, aspect * 0.8, 0.58))
    else:
        prims.append(P(ACCENT, *_star(aspect / 2, 0.5, 0.2, 0.09, int(rng.integers(3, 7)))))
    prims.append(L(DARK, 0.04, (aspect * 0.3, 0.3), (aspect * 0.7, 0.7)))
    return Shape(tuple(prims), aspect, float(rng.uniform(0.3, 0.9)), floating=bool(rng.random() < 0.2))


def shape_for(name: str) -> Shape:
    """The silhouette for an object name (vocabulary or made up)."""
    return SHAPES.get(name) or unknown_shape(name)


def draw_shape(
    draw: ImageDraw.ImageDraw, shape: Shape, x0: float, y0: float, h: float, label: int, mirror: bool = False
) -> None:
    """Draw ``shape`` with its top-left at (x0, y0) and height ``h`` px; part p gets value ``label + p``."""
    a = shape.aspect

    def px(x: float) -> float:
        """Shape x → pixel x (mirrored if asked)."""
        return x0 + ((a - x) if mirror else x) * h

    def box(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """Shape bounding box → pixel bounding box with x0 <= x1 (PIL requires it)."""
        xa, xb = sorted((px(b[0]), px(b[2])))
        return (xa, y0 + b[1] * h, xb, y0 + b[3] * h)

    def width(w: float) -> int:
        """Line width in height units → whole pixels, at least 1."""
        return max(1, round(w * h))

    for prim in shape.prims:
        kind, value = prim[0], label + prim[1]
        if kind == "poly":
            draw.polygon([(px(x), y0 + y * h) for x, y in prim[2]], fill=value)
        elif kind == "ellipse":
            draw.ellipse(box(prim[2]), fill=value)
        elif kind == "rect":
            draw.rectangle(box(prim[2]), fill=value)
        elif kind == "line":
            draw.line(
                [(px(x), y0 + y * h) for x, y in prim[2]], fill=value, width=width(prim[3]), joint="curve"
            )
        elif kind == "ring":
            draw.ellipse(box(prim[2]), outline=value, width=width(prim[3]))
        elif kind in ("pie", "arc"):
            start, end = (180 - prim[4], 180 - prim[3]) if mirror else (prim[3], prim[4])
            if kind == "pie":
                draw.pieslice(box(prim[2]), start, end, fill=value)
            else:
                draw.arc(box(prim[2]), start, end, fill=value, width=width(prim[5]))
