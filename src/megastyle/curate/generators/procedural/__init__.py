"""The ``procedural`` text-to-image backend: an offline, deterministic renderer of (style, content) prompts.

The style prompt decides palette, lighting, pattern, surface, edges, brushwork and medium; the
content prompt decides which objects are drawn, how many, where and how large.
"""

from megastyle.curate.generators.procedural.layout import LabelMap, label_map, plan_layout
from megastyle.curate.generators.procedural.media import TECHNIQUES
from megastyle.curate.generators.procedural.renderer import ProceduralRenderer
from megastyle.curate.generators.procedural.shapes import SHAPES, shape_for
from megastyle.curate.generators.procedural.style import StyleSpec, color_rgb, style_spec

__all__ = [
    "SHAPES",
    "TECHNIQUES",
    "LabelMap",
    "ProceduralRenderer",
    "StyleSpec",
    "color_rgb",
    "label_map",
    "plan_layout",
    "shape_for",
    "style_spec",
]
