"""The ``megastyle`` command line: it parses and registers commands; each command's config and work live
in its part's package (``<part>.commands``, ``quickstart``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from megastyle.bench.commands import (
    DatasetQualityConfig,
    RetrievalConfig,
    TransferBenchConfig,
    run_bench_transfer,
    run_dataset_quality,
    run_retrieval,
)
from megastyle.cli.common import OVERRIDE_SETTINGS, config_command, console, fields_epilog, split_positionals
from megastyle.config import ConfigError, load_config
from megastyle.curate.commands import RenderConfig, run_curate_command, run_render
from megastyle.curate.config import CurateConfig
from megastyle.data.commands import InspectConfig, run_inspect
from megastyle.encode.commands import (
    EmbedConfig,
    ScoreConfig,
    SearchConfig,
    run_embed,
    run_score,
    run_search,
    run_train_encoder,
)
from megastyle.encode.train_config import TrainEncoderConfig
from megastyle.progress import configure_logging
from megastyle.quickstart.config import QuickstartConfig
from megastyle.transfer.commands import TransferConfig, run_train_transfer, run_transfer
from megastyle.transfer.train_config import TrainTransferConfig

app = typer.Typer(
    name="megastyle",
    help="MegaStyle end to end: curate style datasets, train and use style encoders, benchmark, transfer style.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(
    help="Benchmarks: style retrieval, dataset quality, style transfer.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


def _run_quickstart(cfg: QuickstartConfig) -> None:
    from megastyle.quickstart.run import run_quickstart

    run_quickstart(cfg)


COMMANDS = (
    (app, "quickstart", QuickstartConfig, _run_quickstart, "Run the main job end to end on the embedded offline backends."),
    (app, "curate", CurateConfig, run_curate_command,
     "Curate a style dataset: pools → captions → dedup → balance → combine → generate → filter → shards."),
    (app, "render", RenderConfig, run_render, "Render style × content prompts into MegaStyle shards."),
    (app, "inspect", InspectConfig, run_inspect, "Summarise a folder of MegaStyle-layout shards."),
    (app, "train-encoder", TrainEncoderConfig, run_train_encoder,
     "Train the MegaStyle style encoder (SupCon + SigLIP loss, P×K batches, gradient caching)."),
    (app, "embed", EmbedConfig, run_embed, "Embed an image folder or MegaStyle shards with a style encoder."),
    (app, "search", SearchConfig, run_search, "Search a collection by style: top-k with thumbnails in HTML."),
    (app, "transfer", TransferConfig, run_transfer, "Style transfer: style images × prompts → images, sheet, manifest."),
    (app, "train-transfer", TrainTransferConfig, run_train_transfer,
     "Train a MegaStyle-FLUX LoRA (paired style references, flow matching on the target tokens)."),
    (bench_app, "retrieval", RetrievalConfig, run_retrieval, "StyleRetrieval: Recall@k, mAP@k, mAP on held-out styles."),
    (bench_app, "dataset", DatasetQualityConfig, run_dataset_quality, "Dataset quality: consistency, diversity, leakage."),
    (bench_app, "transfer", TransferBenchConfig, run_bench_transfer,
     "Style transfer: style score, text score, content leakage."),
)  # fmt: skip
for parent, name, config_cls, run, help_text in COMMANDS:
    config_command(parent, name, config_cls, help_text)(run)


@app.command(
    "score",
    help=(
        "Style score of two images: megastyle score A B [--encoder DIR | --official-pth PTH --base-model DIR] "
        "[--calibration FILE] (cosine of normalised pooled outputs, as the official style_score.py)."
    ),
    epilog=fields_epilog(ScoreConfig),
    context_settings=OVERRIDE_SETTINGS,
)
def score_command(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML file with the score fields.")
    ] = None,
) -> None:
    """Two positional images merged into the typed ScoreConfig with --config and --field overrides."""
    try:
        images, overrides = split_positionals(list(ctx.args), ScoreConfig)
        if len(images) not in (0, 2):
            raise ConfigError(f"score needs exactly two images (A B), got {len(images)}: {images}")
        cfg = load_config(ScoreConfig, config, overrides)
        if images:  # positionals win over --image-a/--image-b from the config
            cfg = cfg.model_copy(update={"image_a": Path(images[0]), "image_b": Path(images[1])})
        run_score(cfg)
    except ConfigError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err


def main() -> None:
    """Console-script entry point."""
    configure_logging()  # progress lines on stderr when it is not a terminal (CI logs, redirected runs)
    app()


if __name__ == "__main__":
    main()
