"""What the app serves: the models and data named by the config, or a quickstart run's, each with an honest label."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from megastyle.app.config import AppConfig
from megastyle.config import ConfigError

TINY_FLUX = "tiny_flux_untrained"


@dataclass(frozen=True)
class Served:
    """One model or collection the app uses: where it is and what it is, in words for the page."""

    path: Path | None
    label: str

    @property
    def available(self) -> bool:
        """True when there is something at ``path``."""
        return self.path is not None and self.path.exists()


@dataclass(frozen=True)
class AppSources:
    """Everything the app opens at start."""

    flux: Served
    lora: Served
    encoder: Served
    base_model: Path | None
    index: Served
    data: Served
    tiny_flux: bool  # the untrained offline stand-in: small sizes and few steps by default

    @classmethod
    def from_config(cls, cfg: AppConfig) -> AppSources:
        """Resolve the config against its quickstart run (``cfg.run``), labelling each default honestly."""
        run = cfg.run if cfg.run is not None and cfg.run.is_dir() else None
        for name in ("flux", "lora", "encoder", "base_model", "index", "data"):
            path = getattr(cfg, name)
            if path is not None and not path.exists():
                raise ConfigError(f"{path}: --{name.replace('_', '-')} does not exist")
        if cfg.encoder is not None and cfg.encoder.is_file() and cfg.base_model is None:
            raise ConfigError(f"{cfg.encoder}: an official .pth needs --base-model (a local SigLIP folder)")

        if cfg.flux is not None:
            flux = Served(cfg.flux, f"FLUX pipeline from {cfg.flux}")
        elif run is not None and (run / TINY_FLUX / "model_index.json").is_file():
            flux = Served(
                run / TINY_FLUX,
                "the quickstart's tiny FLUX with random weights (untrained): its images are noise and only show "
                "that the MegaStyle-FLUX path runs; start the app with --flux and --lora for real transfer",
            )
        else:
            flux = Served(None, "no FLUX pipeline: start the app with --flux DIR (and --lora FILE)")
        tiny = cfg.flux is None and flux.path is not None

        lora = (
            Served(cfg.lora, f"MegaStyle LoRA {cfg.lora.name}")
            if cfg.lora is not None
            else Served(None, "no LoRA: the FLUX pipeline with the reference in context, not MegaStyle-FLUX")
        )

        if cfg.encoder is not None:
            label = (
                f"the official MegaStyle-Encoder weights {cfg.encoder.name} on {cfg.base_model}"
                if cfg.encoder.is_file()
                else f"style encoder from {cfg.encoder}"
            )
            encoder = Served(cfg.encoder, label)
        elif run is not None and (run / "encoder" / "encoder" / "config.json").is_file():
            encoder = Served(
                run / "encoder" / "encoder",
                "the quickstart's tiny encoder, trained from scratch on its offline dataset (not the released "
                "MegaStyle-Encoder)",
            )
        else:
            encoder = Served(
                None, "no style encoder: start the app with --encoder DIR (or a .pth and --base-model)"
            )

        if cfg.data is not None:
            data = Served(cfg.data, f"dataset {cfg.data}")
        elif run is not None and (run / "curate" / "dataset").is_dir():
            data = Served(
                run / "curate",
                "the quickstart's curate run: an offline dataset rendered by the procedural backend (not a "
                "generative model), captioned by the heuristic captioner (not a VLM)",
            )
        else:
            data = Served(None, "no dataset: open shards or a curate run folder")

        if cfg.index is not None:
            index = Served(cfg.index, f"search index {cfg.index}")
        else:
            index = Served(None, "the dataset, embedded with the style encoder when the app starts")
        return cls(flux, lora, encoder, cfg.base_model, index, data, tiny)
