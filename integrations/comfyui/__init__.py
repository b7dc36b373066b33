"""MegaStyle nodes for ComfyUI: MegaStyle-FLUX style transfer and the MegaStyle style score.

ComfyUI imports this file from ``custom_nodes/<folder>/`` and registers ``NODE_CLASS_MAPPINGS``. Importing
it only defines the node classes: it copies no file, downloads nothing and opens no connection; models are
loaded when a loader node runs, from local files only. The work is done by the ``megastyle`` package, which
must be installed into ComfyUI's Python (``pip install megastyle``).
"""

from __future__ import annotations

import importlib.util

if __name__ == "megastyle":  # an old ComfyUI names the module after its folder, which would hide the library
    raise ImportError(
        "this node pack's folder is named 'megastyle', the name of the library it needs: rename it, e.g. "
        "custom_nodes/comfyui-megastyle"
    )
if importlib.util.find_spec("megastyle") is None:
    raise ImportError(
        "the MegaStyle nodes need the megastyle package in ComfyUI's Python: run `pip install megastyle` "
        "with the Python that runs ComfyUI"
    )

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
