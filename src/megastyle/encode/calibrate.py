"""Calibrated style scores: raw cosine read against an encoder's own reference distribution.

A cosine of 0.8 means different things for different encoders (SigLIP's pooled outputs sit in a narrow
cone, so unrelated images already score high). ``ScoreCalibration`` samples cosines of random
different-style pairs (and same-style pairs when labels exist) over a reference set and turns a raw score
into a percentile and a z-score against the different-style distribution. Without labels every random
pair counts as different-style, which holds for a reference set with many styles.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "megastyle_score_calibration"
FORMAT_VERSION = 1
QUANTILE_LEVELS = np.linspace(0.0, 100.0, 1001)  # 0.1-percent steps keep the JSON small and smooth


@dataclass(frozen=True)
class PairDistribution:
    """Summary of a sample of pair cosines: moments and a 0.1 %-step quantile table."""

    count: int
    mean: float
    std: float
    quantiles: list[float]

    @classmethod
    def from_scores(cls, scores: np.ndarray) -> PairDistribution:
        """Summarise a 1-D array of cosines."""
        if scores.size == 0:
            raise ValueError("no pairs to summarise")
        values = np.percentile(scores.astype(np.float64), QUANTILE_LEVELS)
        return cls(
            count=int(scores.size),
            mean=float(scores.mean()),
            std=float(scores.std()),
            quantiles=[float(v) for v in values],
        )

    def percentile(self, score: float | np.ndarray) -> float | np.ndarray:
        """Share (0–100) of the distribution's pairs that score at or below ``score``."""
        xp = np.maximum.accumulate(np.asarray(self.quantiles))  # guard float noise: keep it non-decreasing
        result = np.interp(score, xp, QUANTILE_LEVELS, left=0.0, right=100.0)
        return float(result) if np.ndim(result) == 0 else result

    def zscore(self, score: float | np.ndarray) -> float | np.ndarray:
        """(score − mean) / std of the distribution."""
        std = self.std if self.std > 0 else 1e-12
        result = (np.asarray(score, dtype=np.float64) - self.mean) / std
        return float(result) if np.ndim(result) == 0 else result


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    data = np.asarray(embeddings, dtype=np.float32)
    if data.ndim != 2 or len(data) < 2:
        raise ValueError(f"need a (n ≥ 2, d) array of reference embeddings, got shape {data.shape}")
    norms = np.linalg.norm(data, axis=1, keepdims=True)
    return data / np.maximum(norms, 1e-12)


def _pair_dots(embeddings: np.ndarray, i: np.ndarray, j: np.ndarray, block: int = 8192) -> list[np.ndarray]:
    # Blocks bound memory: 100k pairs of 1152-d rows gathered at once would take ~1 GB.
    return [
        np.einsum("nd,nd->n", embeddings[i[s : s + block]], embeddings[j[s : s + block]])
        for s in range(0, len(i), block)
    ]


def _sample_pair_scores(
    embeddings: np.ndarray, rng: np.random.Generator, count: int, labels: np.ndarray | None, same: bool
) -> np.ndarray:
    """Cosines of ``count`` random i ≠ j pairs (rejection-sampled on label (in)equality)."""
    n = len(embeddings)
    scores: list[np.ndarray] = []
    found = 0
    for _ in range(50):  # each round draws a surplus; 50 rounds only matter for rare same-style pairs
        i = rng.integers(0, n, size=4 * count)
        j = rng.integers(0, n, size=4 * count)
        keep = i != j
        if labels is not None:
            keep &= (labels[i] == labels[j]) if same else (labels[i] != labels[j])
        i, j = i[keep], j[keep]
        take = min(len(i), count - found)
        scores.extend(_pair_dots(embeddings, i[:take], j[:take]))
        found += take
        if found >= count:
            break
    return np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class ScoreCalibration:
    """Percentile / z-score readout of a raw cosine against an encoder's reference pair distributions."""

    different_style: PairDistribution
    same_style: PairDistribution | None = None
    encoder: str | None = None
    reference: str | None = None

    @classmethod
    def fit(
        cls,
        reference_embeddings: np.ndarray,
        labels: Sequence[Any] | np.ndarray | None = None,
        *,
        num_pairs: int = 100_000,
        seed: int = 0,
        encoder: str | None = None,
        reference: str | None = None,
    ) -> ScoreCalibration:
        """Sample ``num_pairs`` random pairs of the reference set (per kind) and summarise their cosines."""
        if num_pairs < 1:
            raise ValueError(f"num_pairs must be ≥ 1, got {num_pairs}")
        embeddings = _unit_rows(reference_embeddings)
        label_array: np.ndarray | None = None
        if labels is not None:
            label_array = np.asarray(list(labels))
            if len(label_array) != len(embeddings):
                raise ValueError(f"{len(label_array)} labels for {len(embeddings)} embeddings")
            if len(np.unique(label_array)) < 2:
                raise ValueError("labels hold a single style: no different-style pairs to calibrate on")
        rng = np.random.default_rng(seed)
        different = _sample_pair_scores(embeddings, rng, num_pairs, label_array, same=False)
        same_dist = None
        if label_array is not None:
            same = _sample_pair_scores(embeddings, rng, num_pairs, label_array, same=True)
            same_dist = PairDistribution.from_scores(same) if same.size else None
        return cls(
            different_style=PairDistribution.from_scores(different),
            same_style=same_dist,
            encoder=encoder,
            reference=reference,
        )

    def percentile(self, score: float | np.ndarray) -> float | np.ndarray:
        """Percentile (0–100) of ``score`` among different-style pair cosines."""
        return self.different_style.percentile(score)

    def zscore(self, score: float | np.ndarray) -> float | np.ndarray:
        """Standard score of ``score`` against the different-style pair cosines."""
        return self.different_style.zscore(score)

    def readout(self, score: float) -> dict[str, float | None]:
        """Raw score, percentile and z-score (plus the same-style percentile when labels were given)."""
        return {
            "score": float(score),
            "percentile": float(self.percentile(score)),
            "zscore": float(self.zscore(score)),
            "same_style_percentile": (
                float(self.same_style.percentile(score)) if self.same_style is not None else None
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the calibration as JSON."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ScoreCalibration:
        """Read a calibration written by ``save``."""
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"calibration file {file} does not exist")
        data = json.loads(file.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{file} is not a megastyle score calibration (format {data.get('format')!r})")
        same = data.get("same_style")
        return cls(
            different_style=PairDistribution(**data["different_style"]),
            same_style=PairDistribution(**same) if same else None,
            encoder=data.get("encoder"),
            reference=data.get("reference"),
        )
