"""Everything the app's tabs call, built once at start from the resolved sources."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from megastyle.app.config import AppConfig
from megastyle.app.dataset import DatasetExplorer
from megastyle.app.search import StyleSearch
from megastyle.app.sources import AppSources
from megastyle.app.transfer import StyleTransfer
from megastyle.config import ConfigError
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
    # What any page opened, by path: each page keeps its own path, so one user's Open never changes another's.
    _explorers: dict[str, DatasetExplorer] = field(default_factory=dict)
    _searches: dict[str, StyleSearch] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def explorer(self, path: str | Path) -> DatasetExplorer:
        """The explorer of ``path``, opened once and kept (the start dataset is the first)."""
        key = str(Path(path).expanduser())
        with self._lock:
            if key not in self._explorers:
                self._explorers[key] = DatasetExplorer(key)
            return self._explorers[key]

    def searcher(self, source: str, progress: Any = None) -> StyleSearch:
        """The search over ``source`` (an index, embeddings or a collection), opened once and kept."""
        if self.encoder is None:
            raise ConfigError(
                "no style encoder: start the app with --encoder DIR (or a .pth and --base-model)"
            )
        key = str(Path(source).expanduser())
        with self._lock:
            if key not in self._searches:
                search = StyleSearch(self.encoder, self.config.work_dir)
                search.open(key, progress=progress)
                self._searches[key] = search
            return self._searches[key]

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
        services = cls(cfg, sources, encoder, search, dataset, transfer)
        if dataset is not None:
            services._explorers[str(sources.data.path)] = dataset
        if search is not None and search.index is not None:
            services._searches[search.source] = search
        return services
