"""Encoder commands: ``embed`` a collection into an embeddings file, ``score`` the style similarity of two images."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

import typer
from PIL import Image
from pydantic import Field
from rich.console import Console

from megastyle.cli.common import OVERRIDE_SETTINGS, config_command, fields_epilog, resolve_device
from megastyle.config import CommandConfig, ConfigError, load_config

if TYPE_CHECKING:
    from megastyle.encode.model import StyleEncoder

console = Console(stderr=True)

Dtype = Literal["float32", "bfloat16", "float16"]


class EncoderSourceMixin(CommandConfig):
    """Where the encoder comes from: our/HF folder, or the official .pth on a base SigLIP folder."""

    encoder: Path | None = Field(
        None, description="Encoder folder (saved by megastyle, or a local HF SigLIP/CLIP folder)."
    )
    official_pth: Path | None = Field(
        None, description="Official megastyle_encoder.pth (or .safetensors) state dict; needs --base-model."
    )
    base_model: Path | None = Field(
        None, description="Local SigLIP folder giving the architecture for --official-pth."
    )
    device: str = Field("auto", description="'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...")
    dtype: Dtype = Field("float32", description="Weights dtype for inference.")


class EmbedConfig(EncoderSourceMixin):
    """Embed an image folder or MegaStyle shards into an embeddings file."""

    toml_section: ClassVar[str] = "embed"

    source: Path | None = Field(None, description="Image folder (recursive) or folder of Parquet shards.")
    output: Path = Field(
        Path("runs/embeddings/embeddings.safetensors"),
        description="Embeddings file (.safetensors; .parquet and .rejects.jsonl sidecars are written beside it).",
    )
    batch_size: int = Field(32, ge=1, description="Images per forward pass.")
    chunk_size: int = Field(4096, ge=1, description="Images per resumable chunk.")
    workers: int = Field(0, ge=0, description="Decode/preprocess threads (0 = in the main thread).")
    keep_chunks: bool = Field(False, description="Keep the per-chunk files after merging.")
    progress: bool = Field(True, description="Show a progress bar.")
    calibration_output: Path | None = Field(
        None,
        description="Also fit a score calibration (JSON for `score --calibration`) on these embeddings, "
        "with style ids as labels when every item has one.",
    )
    calibration_pairs: int = Field(
        100_000, ge=1, description="Random pairs sampled per calibration distribution."
    )


class ScoreConfig(EncoderSourceMixin):
    """Style score of two images: cosine of the normalised pooled outputs (the official style_score.py)."""

    toml_section: ClassVar[str] = "score"

    image_a: Path | None = Field(
        None, description="First image (the official script's real/reference image)."
    )
    image_b: Path | None = Field(
        None, description="Second image (the official script's fake/generated image)."
    )
    calibration: Path | None = Field(
        None, description="Calibration JSON (ScoreCalibration.save) for a percentile / z-score readout."
    )
    json_output: bool = Field(False, description="Print a JSON object instead of the official text line.")


def load_encoder_from_config(cfg: EncoderSourceMixin) -> StyleEncoder:
    """Build the configured encoder (folder, or official .pth + base) on its device and dtype."""
    import torch

    from megastyle.encode.model import StyleEncoder
    from megastyle.encode.official import load_official_encoder

    dtype = getattr(torch, cfg.dtype)
    device = resolve_device(cfg.device)
    if cfg.official_pth is not None:
        if cfg.base_model is None:
            raise ConfigError(
                "--official-pth needs --base-model (a local SigLIP folder for the architecture)"
            )
        if cfg.encoder is not None:
            raise ConfigError("give either --encoder or --official-pth, not both")
        encoder, report = load_official_encoder(cfg.official_pth, cfg.base_model, device=device, dtype=dtype)
        console.print(
            f"[yellow]load report[/yellow]: {report.summary()}" if not report.ok else report.summary()
        )
        return encoder
    if cfg.encoder is None:
        raise ConfigError("no encoder: set --encoder FOLDER or --official-pth FILE --base-model FOLDER")
    try:
        return StyleEncoder.from_pretrained(cfg.encoder, device=device, dtype=dtype)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err


def run_embed(cfg: EmbedConfig) -> None:
    """Embed the configured source and print a summary."""
    from megastyle.encode.embed import embed_collection

    if cfg.source is None:
        raise ConfigError("no source: set --source FOLDER (images or shards)")
    if cfg.output.suffix != ".safetensors":
        raise ConfigError(f"--output must end with .safetensors, got {cfg.output}")
    encoder = load_encoder_from_config(cfg)
    try:
        summary = embed_collection(
            encoder,
            cfg.source,
            batch_size=cfg.batch_size,
            device=None,
            out_path=cfg.output,
            chunk_size=cfg.chunk_size,
            workers=cfg.workers,
            progress=cfg.progress,
            keep_chunks=cfg.keep_chunks,
        )
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(str(err)) from err
    console.print(
        f"{summary.embedded} embeddings ({summary.dim}-d) in {summary.out_path}; "
        f"{summary.rejected} images rejected; chunks {summary.chunks_written} written, "
        f"{summary.chunks_reused} reused"
    )
    if cfg.calibration_output is not None:
        _fit_calibration(cfg, summary.out_path, cfg.calibration_output)
    if summary.rejected:
        from megastyle.encode.embed import read_rejects

        for reject in read_rejects(summary.out_path)[:20]:
            console.print(f"[red]{reject['id']}[/red]: {reject['cause']}")


def _fit_calibration(cfg: EmbedConfig, embeddings_path: Path, output: Path) -> None:
    from megastyle.encode.calibrate import ScoreCalibration
    from megastyle.encode.embed import load_embeddings

    result = load_embeddings(embeddings_path)
    style_ids = result.style_ids
    labels = style_ids if style_ids and all(s is not None for s in style_ids) else None
    if labels is not None and len(set(labels)) < 2:
        labels = None  # one style only: fall back to all random pairs
    encoder_name = str(cfg.encoder or cfg.official_pth)
    calibration = ScoreCalibration.fit(
        result.embeddings,
        labels,
        num_pairs=cfg.calibration_pairs,
        encoder=encoder_name,
        reference=str(cfg.source),
    )
    calibration.save(output)
    kind = "same/different-style pairs" if labels is not None else "random pairs (no style labels)"
    console.print(f"score calibration over {kind} written to {output}")


def _open_like_official(path: Path) -> Image.Image:
    """``Image.open(path).convert("RGB")`` as style_score.py does (no EXIF rotation, alpha dropped), size-guarded."""
    from megastyle.data import ImageDecodeError, probe_image

    if not path.is_file():
        raise ConfigError(f"image {path} does not exist")
    data = path.read_bytes()
    try:
        probe_image(data, item=str(path))  # refuses decompression bombs before decoding
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except ImageDecodeError as err:
        raise ConfigError(str(err)) from err
    except Exception as err:  # PIL raises many types on corrupt files
        raise ConfigError(f"cannot decode image {path}: {type(err).__name__}: {err}") from err


def run_score(cfg: ScoreConfig) -> float:
    """Print the style score of ``image_a`` vs ``image_b`` (as the official script does) and return it."""
    from megastyle.encode.calibrate import ScoreCalibration
    from megastyle.encode.model import cosine_score

    if cfg.image_a is None or cfg.image_b is None:
        raise ConfigError("score needs two images: megastyle score A B")
    images = [_open_like_official(cfg.image_a), _open_like_official(cfg.image_b)]
    try:
        calibration = ScoreCalibration.load(cfg.calibration) if cfg.calibration is not None else None
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"calibration {cfg.calibration}: {err}") from err
    encoder = load_encoder_from_config(cfg)
    score = cosine_score(encoder, images[0], images[1])
    readout = calibration.readout(score) if calibration is not None else {"score": score}
    if cfg.json_output:
        typer.echo(json.dumps(readout))
        return score
    typer.echo(f"=> style score: {score:.2f}")  # the official style_score.py's line
    if calibration is not None:
        typer.echo(f"=> percentile vs different-style pairs: {readout['percentile']:.1f}")
        typer.echo(f"=> z-score vs different-style pairs: {readout['zscore']:.2f}")
        if readout.get("same_style_percentile") is not None:
            typer.echo(f"=> percentile among same-style pairs: {readout['same_style_percentile']:.1f}")
    return score


def register(app: typer.Typer) -> None:
    """Add ``embed`` and ``score`` to ``app``."""
    config_command(
        app, "embed", EmbedConfig, "Embed an image folder or MegaStyle shards with a style encoder."
    )(run_embed)

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
