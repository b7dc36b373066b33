"""Content prompt → scene layout → label map. Only the content prompt and the seed decide the layout."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from megastyle.curate.generators.procedural.shapes import N_PARTS, Shape, draw_shape, shape_for
from megastyle.prompts.content import ContentPrompt
from megastyle.prompts.vocabulary import RELATIONS, stable_hash

MAX_GROUPS = 8
MAX_COUNT = 8
MAX_INSTANCES = 60  # labels 2 + 4 * k must fit in uint8
PER_ROW = 4
GAP = 0.3  # gap between neighbours, in object heights
SKY, GROUND = 0, 1

_SIZE_WORDS = {
    "tiny": 0.6,
    "small": 0.8,
    "little": 0.8,
    "big": 1.25,
    "large": 1.25,
    "huge": 1.5,
    "giant": 1.5,
}
_RELATION_WORDS = {"left": "beside", "right": "beside", "near": "beside", "by": "beside", "top": "on",
                   "atop": "on", "inside": "in front of", "in": "in front of", "beneath": "below",
                   "underneath": "under", "among": "around", "surround": "around", "front": "in front of",
                   "back": "behind", "across": "over"}  # fmt: skip


@dataclass
class _Group:
    name: str
    shape: Shape
    count: int
    h: float
    cx: float = 0.0
    base: float = 0.0
    depth: float = 0.0
    spread: float = 1.0
    ring: tuple[float, float, float] | None = None  # (cx, cy, radius) when arranged "around"
    placed: bool = False
    side: int = 0  # how many "beside" neighbours it has, to alternate right/left
    between: list[int] = field(default_factory=list)

    @property
    def w(self) -> float:
        """Width of one instance."""
        return self.shape.aspect * self.h

    @property
    def rows(self) -> int:
        """Rows of at most ``PER_ROW`` instances."""
        return math.ceil(self.count / PER_ROW)

    @property
    def width(self) -> float:
        """Width of the front row."""
        n = min(self.count, PER_ROW)
        return n * self.w + (n - 1) * GAP * self.h * self.spread

    @property
    def height(self) -> float:
        """Height including the raised back rows."""
        return self.h * (1 + 0.3 * (self.rows - 1))

    @property
    def top(self) -> float:
        """Top y of the group (y grows downwards)."""
        return self.base - self.height


@dataclass(frozen=True)
class Instance:
    """One drawn object in world units (height 1 ≈ a house): left x, top y, height, depth, mirrored."""

    group: int
    shape: Shape
    x: float
    top: float
    h: float
    depth: float
    mirror: bool


def _relation(word: str) -> str:
    text = " ".join(word.lower().split())
    if text in RELATIONS:
        return text
    for key, target in _RELATION_WORDS.items():
        if key in text.split():
            return target
    return RELATIONS[stable_hash(text, "relation") % len(RELATIONS)]


def _groups(content: ContentPrompt) -> list[_Group]:
    groups = []
    for obj in content.objects[:MAX_GROUPS]:
        shape = shape_for(" ".join(obj.name.lower().split()))
        scale = math.prod(_SIZE_WORDS.get(m.lower(), 1.0) for m in obj.modifiers)
        count = min(max(int(obj.count), 1), MAX_COUNT)
        groups.append(_Group(obj.name, shape, count, math.sqrt(shape.size) * scale))
    total = sum(g.count for g in groups)
    while total > MAX_INSTANCES:  # only reachable with many groups of many objects
        biggest = max(groups, key=lambda g: g.count)
        biggest.count -= 1
        total -= 1
    return groups


def _place(s: _Group, rel: str, o: _Group, groups: list[_Group]) -> None:
    """Position group ``s`` relative to the already placed group ``o``."""
    s.depth = o.depth
    s.base = o.base
    s.cx = o.cx
    if rel in ("beside", "next to"):
        side = 1 if o.side % 2 == 0 else -1
        o.side += 1
        s.cx = o.cx + side * (o.width / 2 + GAP * max(o.h, s.h) + s.width / 2)
    elif rel in ("above", "over"):
        s.base = o.top - 0.15 * o.h
    elif rel in ("below", "under"):
        if o.shape.support > 0.2 and not o.shape.floating:
            # Why: "a cat under a table" reads best between the legs, partly hidden by them.
            s.h = min(s.h, (1 - o.shape.support) * o.h * 0.8, o.width * 0.7 / max(s.width / s.h, 1e-6))
            s.depth = o.depth - 0.5
        else:
            s.base = o.base + 0.15 * o.h + s.height
    elif rel == "in front of":
        s.h *= 1.1
        s.cx = o.cx + 0.3 * o.width
        s.base = o.base + 0.2 * o.h
        s.depth = o.depth + 1
    elif rel == "behind":
        s.h *= 0.85
        s.cx = o.cx - 0.3 * o.width
        s.base = o.base - 0.25 * o.h
        s.depth = o.depth - 1
    elif rel == "on":
        s.h = min(s.h, 0.9 * o.width / max(s.width / s.h, 1e-6))
        s.base = o.base - (1 - o.shape.support) * o.h - (o.height - o.h)
        s.depth = o.depth + 0.5
    elif rel == "around":
        s.h = min(s.h, 0.5 * o.height)
        radius = max(o.width, o.height) * 0.5 + s.h * 0.7
        s.ring = (o.cx, o.base - o.height / 2, radius)
    elif rel == "between":
        others = [groups[i] for i in s.between if groups[i].placed]
        if len(others) >= 2:
            s.cx = sum(g.cx for g in others) / len(others)
            s.base = max(g.base for g in others)
        elif o.count >= 2:
            # Spread the object's copies apart and stand in the gap between them.
            o.spread = 1 + (s.width + GAP * s.h) / (GAP * o.h * max(min(o.count, PER_ROW) - 1, 1))
        else:
            s.cx = o.cx + o.width / 2 + GAP * o.h + s.width / 2
        s.depth = o.depth + 0.5
    s.placed = True


def _instances(groups: list[_Group], rng: np.random.Generator) -> list[Instance]:
    out = []
    for gi, g in enumerate(groups):
        mirror = bool(rng.random() < 0.35)
        for k in range(g.count):
            h = g.h * float(rng.uniform(0.94, 1.06))
            if g.ring is not None:
                cx, cy, radius = g.ring
                a = 2 * math.pi * (k + 0.25) / g.count + math.pi / 2
                x = cx + radius * math.cos(a) - g.w / 2
                top = cy + radius * 0.8 * math.sin(a) - h / 2
                out.append(Instance(gi, g.shape, x, top, h, g.depth + math.sin(a), mirror))
                continue
            row, col = divmod(k, PER_ROW)
            in_row = min(g.count - row * PER_ROW, PER_ROW)
            step = g.w + GAP * g.h * g.spread
            x = g.cx - (in_row * g.w + (in_row - 1) * GAP * g.h * g.spread) / 2 + col * step
            x += float(rng.uniform(-0.05, 0.05)) * g.w + (0.5 * step if row % 2 else 0)
            scale = 1 - 0.12 * row  # back rows sit higher and smaller
            base = g.base - 0.3 * g.h * row
            out.append(Instance(gi, g.shape, x, base - h * scale, h * scale, g.depth - 0.1 * row, mirror))
    return out


def plan_layout(content: ContentPrompt, seed: int) -> list[Instance]:
    """World-space instances for a content prompt: relations first, unrelated groups in a row."""
    groups = _groups(content)
    rels = [
        (r.subject, _relation(r.relation), r.object)
        for r in content.relations
        if 0 <= r.subject < len(groups) and 0 <= r.object < len(groups) and r.subject != r.object
    ]
    for s, rel, o in rels:
        if rel == "between":
            groups[s].between.append(o)
    subjects = {s for s, _, _ in rels}
    roots = [i for i in range(len(groups)) if i not in subjects] or [0] * bool(groups)
    tallest = max((g.h for g in groups if not g.shape.floating), default=1.0)
    # Unrelated groups stand side by side; a row that grows too wide wraps into a row further back
    # (higher, smaller, drawn first) so that many objects do not shrink to a thin strip.
    rows: list[list[int]] = [[]]
    width = 0.0
    for i in roots:
        if rows[-1] and width + groups[i].width > 2.6 * tallest:
            rows.append([])
            width = 0.0
        rows[-1].append(i)
        width += groups[i].width + GAP * 2
    cursor = 0.0
    for r, row in enumerate(rows):
        for i in row:
            groups[i].h *= 0.88**r
        total = sum(groups[i].width for i in row) + GAP * 2 * (len(row) - 1)
        x = -total / 2
        for i in row:
            g = groups[i]
            g.cx = x + g.width / 2
            g.base = (-tallest * 1.15 if g.shape.floating else 0.0) - 0.45 * tallest * r
            g.depth = -r
            g.placed = True
            x += g.width + GAP * 2
        cursor = max(cursor, x)
    pending = [(s, rel, o) for s, rel, o in rels if not groups[s].placed]
    while pending:
        progress = False
        for item in list(pending):
            s, rel, o = item
            if groups[s].placed:
                pending.remove(item)
            elif groups[o].placed:
                _place(groups[s], rel, groups[o], groups)
                pending.remove(item)
                progress = True
        if not progress:  # a cycle: anchor one subject as a root and carry on
            s = pending[0][0]
            groups[s].cx, groups[s].placed = cursor + groups[s].width / 2, True
            cursor += groups[s].width + GAP * 2
    rng = np.random.default_rng([stable_hash(repr(content), "layout"), seed & 0xFFFFFFFF])
    return _instances(groups, rng)


@dataclass(frozen=True)
class LabelMap:
    """A rendered layout: ``labels`` (H, W) uint8 (0 sky, 1 ground, 2 + 4k + part objects) and per-label info."""

    labels: np.ndarray
    group: np.ndarray  # (256,) int16: group index of each label, -1 for sky/ground
    part: np.ndarray  # (256,) int8: colour-role part of each label, -1 for sky/ground
    order: np.ndarray  # (256,) float32: stacking height (0 sky, 1 ground, 2 + k for the k-th drawn object)
    horizon: int
    names: tuple[str, ...]


@lru_cache(maxsize=256)
def label_map(content: ContentPrompt, seed: int, size: int, object_scale: float = 1.0) -> LabelMap:
    """Rasterise the layout at ``size`` px with PIL polygons; cached per (content, seed, size, scale).

    ``object_scale`` > 1 draws the objects that much larger about the scene's centre, cropping what
    leaves the frame, as a photographer moving closer would.
    """
    inst = sorted(plan_layout(content, seed), key=lambda i: i.depth)
    names = tuple(o.name for o in content.objects[:MAX_GROUPS])
    rng = np.random.default_rng([stable_hash(repr(content), "frame"), seed & 0xFFFFFFFF])
    margin = 0.07 * size
    if inst:
        x0 = min(i.x for i in inst)
        x1 = max(i.x + i.shape.aspect * i.h for i in inst)
        y0 = min(i.top for i in inst)
        y1 = max(i.top + i.h for i in inst)
        avail = size - 2 * margin
        scale = object_scale * min(
            avail / max(x1 - x0, 1e-6), avail / max(y1 - y0, 1e-6), 0.62 * size / max(i.h for i in inst)
        )
        ox = size / 2 - (x0 + x1) / 2 * scale + float(rng.uniform(-0.03, 0.03)) * size
        oy = size * 0.53 - (y0 + y1) / 2 * scale + float(rng.uniform(-0.03, 0.03)) * size
        horizon = oy  # world y = 0 is the ground line
    else:
        scale, ox, oy = 1.0, 0.0, 0.0
        horizon = size * float(rng.uniform(0.6, 0.72))
    horizon = int(np.clip(horizon, 0.35 * size, 0.9 * size))
    img = Image.new("L", (size, size), SKY)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, horizon, size, size), fill=GROUND)
    group = np.full(256, -1, np.int16)
    part = np.full(256, -1, np.int8)
    order = np.zeros(256, np.float32)
    order[GROUND] = 1
    for k, i in enumerate(inst):
        label = 2 + N_PARTS * k
        draw_shape(draw, i.shape, ox + i.x * scale, oy + i.top * scale, i.h * scale, label, i.mirror)
        group[label : label + N_PARTS] = i.group
        part[label : label + N_PARTS] = np.arange(N_PARTS)
        order[label : label + N_PARTS] = 2 + k + np.arange(N_PARTS) * 0.25
    labels = np.asarray(img)
    for a in (labels, group, part, order):
        a.flags.writeable = False
    return LabelMap(labels, group, part, order, horizon, names)
