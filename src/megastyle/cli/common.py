"""Glue between typer and the typed configs: one command = one config class."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from megastyle.config import CommandConfig, ConfigError, describe_fields, load_config

console = Console(stderr=True)

OVERRIDE_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def fields_epilog(config_cls: type[CommandConfig]) -> str:
    """Help text listing every config field with its default and description."""
    lines = ["Config fields (set in --config TOML or as --field value):\n\n"]
    for option, default, description in describe_fields(config_cls):
        text = f"{option} [default {default}]"
        if description:
            text += f": {description}"
        lines.append(f"{escape(text)}\n\n")  # typer renders help as rich markup: keep [..] literal
    return "".join(lines)


def config_command(
    app: typer.Typer, name: str, config_cls: type[CommandConfig], help: str
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Register ``run(config)`` as command ``name`` with ``--config FILE`` and per-field overrides."""

    def decorator(run: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def command(
            ctx: typer.Context,
            config: Annotated[
                Path | None, typer.Option("--config", "-c", help="TOML file with this command's fields.")
            ] = None,
            print_config: Annotated[
                bool, typer.Option("--print-config", help="Print the resolved config as TOML and exit.")
            ] = False,
        ) -> None:
            try:
                cfg = load_config(config_cls, config, list(ctx.args))
            except ConfigError as err:
                console.print(f"[red]error:[/red] {err}")
                raise typer.Exit(2) from err
            if print_config:
                typer.echo(cfg.to_toml())
                return
            try:
                run(cfg)
            except ConfigError as err:
                console.print(f"[red]error:[/red] {err}")
                raise typer.Exit(2) from err

        command.__doc__ = help
        app.command(name, help=help, epilog=fields_epilog(config_cls), context_settings=OVERRIDE_SETTINGS)(
            command
        )
        return run

    return decorator


def split_positionals(args: list[str], config_cls: type[CommandConfig]) -> tuple[list[str], list[str]]:
    """Separate positional tokens from ``--field value`` overrides; bool fields are bare flags.

    Click keeps unknown options and positionals in one list, so this walks it knowing which fields
    take no value (a bare ``--json-output`` must not swallow the image path after it).
    """
    flags = {
        name.replace("_", "-") for name, info in config_cls.model_fields.items() if info.annotation is bool
    }
    positionals: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":  # everything after a bare -- is positional
            positionals.extend(args[i + 1 :])
            break
        if not token.startswith("--"):
            positionals.append(token)
        elif "=" in token:
            overrides.append(token)
        elif token[2:] in flags:
            overrides.append(token)
            if i + 1 < len(args) and args[i + 1].lower() in ("true", "false"):
                overrides.append(args[i + 1])
                i += 1
        else:
            overrides.append(token)
            if i + 1 < len(args):
                overrides.append(args[i + 1])
                i += 1
        i += 1
    return positionals, overrides
