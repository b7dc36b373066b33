"""``megastyle quickstart``."""

from __future__ import annotations

import typer

from megastyle.cli.common import config_command
from megastyle.quickstart import QuickstartConfig


def register(app: typer.Typer) -> None:
    """Add the quickstart command to ``app``."""

    @config_command(
        app, "quickstart", QuickstartConfig, "Run the main job end to end on the embedded offline backends."
    )
    def quickstart(cfg: QuickstartConfig) -> None:
        from megastyle.quickstart import run_quickstart

        run_quickstart(cfg)
