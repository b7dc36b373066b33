"""``megastyle curate``."""

from __future__ import annotations

import typer

from megastyle.cli.common import config_command
from megastyle.config import ConfigError
from megastyle.curate.config import CurateConfig


def register(app: typer.Typer) -> None:
    """Add the curate command to ``app``."""

    @config_command(
        app,
        "curate",
        CurateConfig,
        "Curate a style dataset: pools → captions → dedup → balance → combine → generate → filter → shards.",
    )
    def curate(cfg: CurateConfig) -> None:
        from megastyle.curate.pipeline import CurateStateError, run_curate

        try:
            run_curate(cfg)
        except CurateStateError as err:
            raise ConfigError(str(err)) from err
