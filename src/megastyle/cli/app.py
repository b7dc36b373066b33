"""The ``megastyle`` command line: it parses and registers commands; each command's config and work live
in its part's package (``<part>.commands``, ``quickstart``)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from megastyle import __version__
from megastyle.app.config import AppConfig
from megastyle.bench.commands import (
    DatasetQualityConfig,
    RetrievalConfig,
    TransferBenchConfig,
    run_bench_transfer,
    run_dataset_quality,
    run_retrieval,
)
from megastyle.cli.common import (
    DEBUG_ENV,
    config_command,
)
from megastyle.curate.commands import RenderConfig, run_curate_command, run_render
from megastyle.curate.config import CurateConfig
from megastyle.data.commands import ImportConfig, InspectConfig, run_import, run_inspect
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

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    name="megastyle",
    help="MegaStyle end to end: curate style datasets, train and use style encoders, benchmark, transfer style.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # failures are one line (fail); --debug prints the plain traceback
    context_settings=HELP_OPTIONS,
)
bench_app = typer.Typer(
    help="Benchmarks: style retrieval, dataset quality, style transfer.",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
)
app.add_typer(bench_app, name="bench", context_settings=HELP_OPTIONS)


def _run_app(cfg: AppConfig) -> None:
    from megastyle.app.server import run_app

    run_app(cfg)


def _run_quickstart(cfg: QuickstartConfig) -> None:
    from megastyle.quickstart.run import run_quickstart

    run_quickstart(cfg)


COMMANDS = (
    (app, "quickstart", QuickstartConfig, _run_quickstart, "Run the main job end to end on the embedded offline backends."),
    (app, "curate", CurateConfig, run_curate_command,
     "Curate a style dataset: pools → captions → dedup → balance → combine → generate → filter → shards."),
    (app, "render", RenderConfig, run_render, "Render style × content prompts into MegaStyle shards."),
    (app, "inspect", InspectConfig, run_inspect, "Summarise a folder of MegaStyle-layout shards."),
    (app, "import", ImportConfig, run_import,
     "Write your labelled images (a folder per style, a CSV/JSONL manifest, labelled Parquet) as MegaStyle shards."),
    (app, "train-encoder", TrainEncoderConfig, run_train_encoder,
     "Train the MegaStyle style encoder (SupCon + SigLIP loss, P×K batches, gradient caching)."),
    (app, "embed", EmbedConfig, run_embed, "Embed an image folder or MegaStyle shards with a style encoder."),
    (app, "search", SearchConfig, run_search, "Search a collection by style: top-k with thumbnails in HTML."),
    (app, "transfer", TransferConfig, run_transfer, "Style transfer: style images × prompts → images, sheet, manifest."),
    (app, "train-transfer", TrainTransferConfig, run_train_transfer,
     "Train a MegaStyle-FLUX LoRA (paired style references, flow matching on the target tokens)."),
    (app, "app", AppConfig, _run_app,
     "A web page on this machine: style transfer, style search, dataset explorer (needs megastyle[app])."),
    (bench_app, "retrieval", RetrievalConfig, run_retrieval, "StyleRetrieval: Recall@k, mAP@k, mAP on held-out styles."),
    (bench_app, "dataset", DatasetQualityConfig, run_dataset_quality, "Dataset quality: consistency, diversity, leakage."),
    (bench_app, "transfer", TransferBenchConfig, run_bench_transfer,
     "Style transfer: style score, text score, content leakage."),
)  # fmt: skip
# Bare arguments: the fields they fill (`megastyle score A B`, `megastyle inspect PATH`).
POSITIONALS: dict[str, tuple[str, ...]] = {
    "score": ("image_a", "image_b"),
    "inspect": ("source",),
    "import": ("source",),
    "embed": ("source",),
    "search": ("queries",),
}
EXAMPLES: dict[str, str] = {
    "quickstart": "megastyle quickstart                       # about 1½ minutes on 2 cores, offline\n"
    "megastyle quickstart --preset study --seed 1  # the research scale of docs/results.md",
    "curate": "megastyle curate --config my.toml\n"
    "megastyle curate --config my.toml --resume      # continue a killed run\n"
    "megastyle curate --run-dir runs/a --pools.style imgs/style --pools.content imgs/content",
    "render": "megastyle render --style-prompts styles.txt --content-prompts contents.txt --output-dir runs/r",
    "inspect": "megastyle inspect runs/quickstart/curate/dataset --verify-images",
    "import": "megastyle import my_images/ --output-dir runs/my_images      # one subfolder per style\n"
    "megastyle import photos/ --output-dir runs/photos          # with photos/labels.csv: path,style[,content]\n"
    "megastyle import table.parquet --style-column artist --output-dir runs/table",
    "train-encoder": "megastyle train-encoder --source runs/quickstart/curate/dataset --output-dir runs/enc",
    "embed": "megastyle embed imgs/ --encoder runs/enc/encoder --output runs/emb/imgs.safetensors",
    "search": "megastyle search q.png --embeddings runs/emb/imgs.safetensors --encoder runs/enc/encoder\n"
    "megastyle search q.png --source imgs/ --encoder runs/enc/encoder   # embeds imgs/ first",
    "score": "megastyle score a.png b.png --encoder runs/enc/encoder\n"
    "megastyle score a.png b.png --official-pth megastyle_encoder.pth --base-model models/siglip-so400m",
    "transfer": "megastyle transfer --style ref.png --prompt 'A bench' --model models/FLUX.1-dev "
    "--lora megastyle_flux.safetensors",
    "train-transfer": "megastyle train-transfer --source runs/quickstart/curate/dataset --model models/FLUX.1-dev",
    "app": "megastyle app                         # the quickstart's run, on http://127.0.0.1:7860\n"
    "megastyle app --flux models/FLUX.1-dev --lora megastyle_flux.safetensors --encoder runs/enc/encoder",
    "bench retrieval": "megastyle bench retrieval --source runs/quickstart/curate/dataset --holdout-styles 0.2\n"
    "megastyle bench retrieval --source my_images/ --all-styles   # every style of your own labelled folder",
    "bench dataset": "megastyle bench dataset --source runs/quickstart/curate/dataset",
    "bench transfer": "megastyle bench transfer --source refs/ --model models/FLUX.1-dev --lora megastyle_flux.safetensors "
    "--style-encoder runs/enc/encoder --clip-model models/clip-vit-large-patch14",
}
for parent, name, config_cls, run, help_text in COMMANDS:
    full_name = f"bench {name}" if parent is bench_app else name
    config_command(
        parent,
        name,
        config_cls,
        help_text,
        positionals=POSITIONALS.get(full_name, ()),
        examples=EXAMPLES.get(full_name, ""),
    )(run)
config_command(
    app,
    "score",
    ScoreConfig,
    "Style score of two images (cosine of normalised pooled outputs, as the official style_score.py).",
    positionals=POSITIONALS["score"],
    examples=EXAMPLES["score"],
)(run_score)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"megastyle {__version__}")
        raise typer.Exit()


@app.callback(context_settings=HELP_OPTIONS)
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of a failure.")] = False,
) -> None:
    """MegaStyle end to end: curate style datasets, train and use style encoders, benchmark, transfer style."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``--debug`` is read wherever it stands)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        args.remove("--debug")
        os.environ[DEBUG_ENV] = "1"
    configure_logging()  # progress lines on stderr when it is not a terminal (CI logs, redirected runs)
    app(args=args, prog_name="megastyle")


if __name__ == "__main__":
    main()
