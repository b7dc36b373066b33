"""Part 2: MegaStyle-Encoder — style encoders over vision towers and their SSCL training."""

from __future__ import annotations

from typing import TYPE_CHECKING

from megastyle._lazy import lazy_exports

# Lazy exports keep ``import megastyle.encode`` free of torch/transformers until a name is used.
_EXPORTS: dict[str, str] = {
    "StyleEncoder": "model",
    "StyleEncoderConfig": "model",
    "LoadReport": "state_dict",
    "StateDictLoadError": "state_dict",
    "canonical_key": "state_dict",
    "cosine_score": "model",
    "ImagePreprocessor": "images",
    "PreprocessConfig": "images",
    "OfficialCheckpointError": "state_dict",
    "load_official_encoder": "official",
    "read_state_dict": "state_dict",
    "EmbeddingSet": "embed",
    "EmbedSummary": "embed",
    "embed_collection": "embed",
    "load_embeddings": "embed",
    "ScoreCalibration": "calibrate",
}

__all__ = [
    "EmbedSummary",
    "EmbeddingSet",
    "ImagePreprocessor",
    "LoadReport",
    "OfficialCheckpointError",
    "PreprocessConfig",
    "ScoreCalibration",
    "StateDictLoadError",
    "StyleEncoder",
    "StyleEncoderConfig",
    "canonical_key",
    "cosine_score",
    "embed_collection",
    "load_embeddings",
    "load_official_encoder",
    "read_state_dict",
]

if TYPE_CHECKING:
    from megastyle.encode.calibrate import ScoreCalibration
    from megastyle.encode.embed import EmbeddingSet, EmbedSummary, embed_collection, load_embeddings
    from megastyle.encode.images import ImagePreprocessor, PreprocessConfig
    from megastyle.encode.model import StyleEncoder, StyleEncoderConfig, cosine_score
    from megastyle.encode.official import load_official_encoder
    from megastyle.encode.state_dict import (
        LoadReport,
        OfficialCheckpointError,
        StateDictLoadError,
        canonical_key,
        read_state_dict,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
