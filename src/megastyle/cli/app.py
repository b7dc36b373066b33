"""The ``megastyle`` command line: one sub-command per job, each with a typed config."""

from __future__ import annotations

import typer

from megastyle.cli import (
    bench_commands,
    curate_command,
    dataset_commands,
    encoder_commands,
    quickstart_command,
    train_encoder_command,
    transfer_commands,
    transfer_train_command,
)

app = typer.Typer(
    name="megastyle",
    help="MegaStyle end to end: curate style datasets, train and use style encoders, benchmark, transfer style.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

quickstart_command.register(app)
curate_command.register(app)
dataset_commands.register(app)
encoder_commands.register(app)
train_encoder_command.register(app)
bench_commands.register(app)
transfer_commands.register(app)
transfer_train_command.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
