"""The quickstart: the whole MegaStyle loop offline in minutes (pools → curate → encoder → transfer → report)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from megastyle._lazy import lazy_exports

_EXPORTS = {"QuickstartConfig": "config", "run_quickstart": "run"}
__all__ = ["QuickstartConfig", "run_quickstart"]

if TYPE_CHECKING:
    from megastyle.quickstart.config import QuickstartConfig
    from megastyle.quickstart.run import run_quickstart

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
