"""Everything the app's tabs call, built once at start from the resolved sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from megastyle.app.config import AppConfig
from megastyle.app.dataset import DatasetExplorer
from megastyle.app.search import StyleSearch
from megastyle.app.sources import AppSources
from megastyle.app.transfer import StyleTransfer
from megastyle.progress import step


@dataclass
class AppServices:
    """The loaded encoder, the search index, the open dataset and the transfer pipeline."""

    config: AppConfig
    sources: AppSources
    encoder: Any
    search: StyleSearch | None
    dataset: DatasetExplorer | None
    transfer: StyleTransfer

    @classmethod
    def start(cls, cfg: AppConfig) -> AppServices:
        """Resolve the sources, load the encoder, open the dataset and the index (embedding it if needed)."""
        from megastyle.encode.source import EncoderSource, load_encoder_from_config

        sources = AppSources.from_config(cfg)
        encoder = None
        if sources.encoder.available:
            is_pth = sources.encoder.path is not None and sources.encoder.path.is_file()
            source = EncoderSource(
                encoder=None if is_pth else sources.encoder.path,
                official_pth=sources.encoder.path if is_pth else None,
                base_model=sources.base_model,
                device=cfg.device,
            )
            encoder = load_encoder_from_config(source)
        dataset = None
        if sources.data.available:
            with step(f"app: open the dataset {sources.data.path}"):
                dataset = DatasetExplorer(sources.data.path)  # type: ignore[arg-type]
        search = StyleSearch(encoder, cfg.work_dir) if encoder is not None else None
        if search is not None:
            target = sources.index.path if sources.index.available else (dataset.shards if dataset else None)
            if target is not None:
                with step(f"app: open the search index of {target}"):
                    search.open(target)
        transfer = StyleTransfer(sources.flux.path, sources.lora.path, cfg.device, cfg.work_dir)
        return cls(cfg, sources, encoder, search, dataset, transfer)
