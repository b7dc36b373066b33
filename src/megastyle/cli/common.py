"""Glue between typer and the typed configs: one command = one config class, and one line per failure."""

from __future__ import annotations

import os
import re
import traceback
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from megastyle.config import CommandConfig, ConfigError, describe_fields, load_config, parse_overrides

console = Console(stderr=True)

OVERRIDE_SETTINGS = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": ["-h", "--help"],
}
DEBUG_ENV = "MEGASTYLE_DEBUG"
# Failures a user can cause and fix: one line and exit 2. Anything else is a bug: one line and exit 1.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ConfigError, OSError, ValueError)
_ADDRESS = re.compile(r"<([\w.]+) object at 0x[0-9a-f]+>")


def debugging() -> bool:
    """True when the user asked for tracebacks (``--debug`` or ``MEGASTYLE_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")


def error_line(err: BaseException) -> str:
    """The failure as one line: the item and the cause, no internal reprs, no newlines."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        text = f"{err.filename}: {err.strerror.lower()}"
    else:
        text = str(err) or type(err).__name__
    if not isinstance(err, EXPECTED_ERRORS):
        text = (
            f"internal error ({type(err).__name__}: {text}); run with --debug for the traceback and report it"
        )
    text = _ADDRESS.sub(lambda m: f"<{m.group(1).rsplit('.', 1)[-1]}>", text)
    return " ".join(text.split())


def fail(err: BaseException) -> typer.Exit:
    """Print ``err`` as one line on stderr (with its traceback under --debug) and return the exit to raise."""
    if debugging():
        traceback.print_exception(err)
    console.print(f"error: {escape(error_line(err))}", soft_wrap=True, highlight=False)
    return typer.Exit(2 if isinstance(err, EXPECTED_ERRORS) else 1)


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
    app: typer.Typer,
    name: str,
    config_cls: type[CommandConfig],
    help: str,
    *,
    positionals: tuple[str, ...] = (),
    examples: str = "",
) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Register ``run(config)`` as command ``name`` with ``--config FILE``, per-field overrides, and
    ``positionals``: the fields that bare arguments fill (a list field takes them all)."""

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
                cfg = load_config(config_cls, config, command_line(ctx.args, config_cls, name, positionals))
                if print_config:
                    typer.echo(cfg.to_toml())
                    return
                run(cfg)
            except (typer.Exit, typer.Abort):
                raise
            except KeyboardInterrupt:
                console.print(
                    "error: interrupted; finished work is kept (rerun with --resume where the command has it)"
                )
                raise typer.Exit(130) from None
            except Exception as err:
                raise fail(err) from err

        command.__doc__ = help
        usage = " ".join(p.upper() for p in positionals)
        epilog = (f"Examples:\n\n{escape(examples)}\n\n" if examples else "") + fields_epilog(config_cls)
        app.command(
            name,
            help=escape(help),  # rich markup would eat "[app]" of "megastyle[app]"
            epilog=epilog,
            context_settings=OVERRIDE_SETTINGS,
            options_metavar=f"[{usage}] [OPTIONS]" if usage else "[OPTIONS]",
        )(command)
        return run

    return decorator


def command_line(
    args: list[str], config_cls: type[CommandConfig], name: str, positionals: tuple[str, ...]
) -> dict[str, Any]:
    """The command line's overrides, with bare arguments placed in the ``positionals`` fields."""
    given, options = split_positionals(list(args), config_cls)
    overrides = parse_overrides(options)
    if not given:
        return overrides
    if not positionals:
        raise ConfigError(f"{given[0]}: unexpected argument; {name} takes options only (--field value)")
    fields = config_cls.model_fields
    if len(positionals) == 1 and typing.get_origin(fields[positionals[0]].annotation) is list:
        overrides[positionals[0]] = given  # a list field takes every bare argument
    elif len(given) == len(positionals):
        overrides.update(zip(positionals, given, strict=True))
    else:
        wanted = " ".join(p.upper() for p in positionals)
        raise ConfigError(
            f"{name} takes {len(positionals)} path(s) ({wanted}), got {len(given)}: {' '.join(given)}"
        )
    return overrides


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
