"""User-supplied backends named by import path (``package.module:ClassName``).

Lets a config point a stage at a backend that lives outside megastyle (a house captioner, a
custom renderer); on Ray the workers import it, so it must be installed on every node.
"""

from __future__ import annotations

import importlib
from typing import Any


def is_import_path(name: str) -> bool:
    """True for ``module:attribute`` names."""
    return ":" in name


def load_object(path: str) -> Any:
    """The attribute named by ``module.path:attribute``, with an error naming what is missing."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not an import path of the form 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{path!r}: cannot import module {module_name!r} ({err})") from err
    try:
        return getattr(module, attribute)
    except AttributeError as err:
        raise ValueError(f"{path!r}: module {module_name!r} has no attribute {attribute!r}") from err
