"""Deduplication steps: exact → fuzzy → semantic over one list of prompts, each step on the survivors.

A global algorithm (it needs the whole list), engine-agnostic: plain lists in, a ``DedupReport`` out
with the kept indices into the original list, per-step counts and every removed pair for inspection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from megastyle.config import CommandConfig
from megastyle.curate.dedup.exact import exact_duplicates
from megastyle.curate.dedup.fuzzy import fuzzy_duplicates
from megastyle.curate.dedup.pairs import StepResult
from megastyle.curate.dedup.semantic import semantic_duplicates
from megastyle.data import Reject, atomic_write_table, atomic_write_text
from megastyle.prompts.embedding import embed_texts

DedupStep = Literal["exact", "fuzzy", "semantic"]
STEPS: tuple[DedupStep, ...] = ("exact", "fuzzy", "semantic")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ExactDedupConfig(_Section):
    """Exact step: MD5 of the normalised text."""

    enabled: bool = True
    normalize: bool = Field(True, description="NFKC, case-fold, collapse spaces, strip end punctuation first")


class FuzzyDedupConfig(_Section):
    """Fuzzy step: MinHash + LSH + union-find (NeMo-Curator defaults)."""

    enabled: bool = True
    ngram: int = Field(24, ge=1, description="shingle length in units")
    unit: Literal["char", "word"] = Field("char", description="shingle unit")
    bands: int = Field(20, ge=1, description="LSH bands")
    rows: int = Field(13, ge=1, description="MinHash values per band (num_perm = bands × rows)")
    seed: int = 0
    normalize: bool = Field(True, description="shingle the normalised text")
    verify: bool = Field(True, description="keep only candidate pairs whose exact Jaccard ≥ threshold")
    threshold: float = Field(0.8, ge=0.0, le=1.0, description="Jaccard threshold of the verification")
    keep: Literal["first", "longest"] = Field("first", description="which member of a group survives")
    max_bucket_size: int = Field(100, ge=2, description="larger LSH buckets give star edges, not all pairs")
    batch_size: int = Field(32768, ge=1, description="documents hashed at once")


class SemanticDedupConfig(_Section):
    """Semantic step: SemDeDup on sentence embeddings."""

    enabled: bool = True
    eps: float = Field(0.01, ge=0.0, lt=2.0, description="drop pairs with cosine ≥ 1 − eps")
    n_clusters: int | None = Field(None, ge=1, description="k-means clusters (default: n / cluster_size)")
    cluster_size: int = Field(1000, ge=1, description="target items per cluster when n_clusters is unset")
    keep: Literal["hard", "easy", "random", "first"] = Field(
        "hard", description="which item of a group survives"
    )
    seed: int = 0
    kmeans_backend: Literal["auto", "faiss", "sklearn"] = "auto"
    kmeans_iterations: int = Field(20, ge=1)
    model_path: str | None = Field(
        None, description="local sentence-transformers folder (default: packaged MiniLM)"
    )
    batch_size: int = Field(64, ge=1, description="texts embedded per forward pass")
    device: str | None = Field(None, description="torch device for the embedder")


class DedupConfig(CommandConfig):
    """Configuration of the deduplicate stage: one section per step."""

    toml_section: ClassVar[str | None] = "dedup"

    exact: ExactDedupConfig = Field(default_factory=ExactDedupConfig)
    fuzzy: FuzzyDedupConfig = Field(default_factory=FuzzyDedupConfig)
    semantic: SemanticDedupConfig = Field(default_factory=SemanticDedupConfig)


@dataclass(frozen=True)
class RemovedPair:
    """One removal: ``removed`` (index into the original list) duplicated ``kept`` at ``score``."""

    step: str
    removed_index: int
    removed_text: str
    kept_index: int
    kept_text: str
    score: float


@dataclass
class DedupReport:
    """What ``deduplicate`` did: survivors, per-step removals, the removed pairs and rejected items."""

    input_count: int
    kept_indices: list[int]
    kept_texts: list[str]
    removed_counts: dict[str, int]
    pairs: list[RemovedPair] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: input, per-step removals, rejects, kept."""
        steps = ", ".join(f"{step} −{count}" for step, count in self.removed_counts.items())
        return (
            f"dedup: {self.input_count} prompts, {steps}, {len(self.rejects)} rejected → "
            f"{len(self.kept_indices)} kept"
        )


def _split_valid(texts: Sequence[object]) -> tuple[list[int], list[Reject]]:
    """Indices of usable prompts, and a reject naming each unusable one."""
    valid, rejects = [], []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            rejects.append(Reject(f"prompt {i}", f"dedup: not a string but {type(text).__name__}"))
        elif not text.strip():
            rejects.append(Reject(f"prompt {i}", "dedup: empty prompt"))
        else:
            valid.append(i)
    return valid, rejects


def text_step(step: DedupStep, texts: list[str], config: DedupConfig) -> StepResult:
    """The exact or fuzzy step over ``texts`` (a global algorithm: it needs the whole list)."""
    if step == "exact":
        return exact_duplicates(texts, normalize=config.exact.normalize)
    return fuzzy_duplicates(texts, **config.fuzzy.model_dump(exclude={"enabled"}))


def semantic_step(embeddings: np.ndarray, config: DedupConfig) -> StepResult:
    """SemDeDup over the survivors' embeddings."""
    semantic = config.semantic
    return semantic_duplicates(
        embeddings,
        **semantic.model_dump(include={"eps", "n_clusters", "cluster_size", "keep", "seed"}),
        kmeans_backend=semantic.kmeans_backend,
        kmeans_iterations=semantic.kmeans_iterations,
    )


def _in_process(fn: Callable[..., StepResult], *args: Any) -> StepResult:
    return fn(*args)


def _record(report: DedupReport, step: str, result: StepResult, texts: Sequence[str], seconds: float) -> None:
    """Fold one step's result (indices into the survivors) into ``report`` (indices into ``texts``)."""
    alive = report.kept_indices
    report.seconds[step] = seconds
    report.removed_counts[step] = result.removed_count
    for pair in result.pairs:
        removed, kept = alive[pair.removed], alive[pair.kept]
        report.pairs.append(RemovedPair(step, removed, texts[removed], kept, texts[kept], pair.score))  # type: ignore[arg-type]
    report.kept_indices = [alive[i] for i in result.kept]
    report.kept_texts = [texts[i] for i in report.kept_indices]  # type: ignore[misc]


def dedup_text_steps(
    texts: Sequence[str], config: DedupConfig, run_task: Callable[..., StepResult] = _in_process
) -> DedupReport:
    """The exact and fuzzy steps (those enabled), each on the previous one's survivors."""
    alive, rejects = _split_valid(texts)
    report = DedupReport(len(texts), alive, [texts[i] for i in alive], {}, rejects=rejects)  # type: ignore[misc]
    for step in ("exact", "fuzzy"):
        if getattr(config, step).enabled:
            started = time.perf_counter()
            result = run_task(text_step, step, list(report.kept_texts), config)
            _record(report, step, result, texts, time.perf_counter() - started)
    return report


def dedup_semantic(
    report: DedupReport,
    texts: Sequence[str],
    embeddings: np.ndarray,
    config: DedupConfig,
    run_task: Callable[..., StepResult] = _in_process,
) -> np.ndarray:
    """The semantic step on ``report``'s survivors (``embeddings`` row-aligned with them); their embeddings."""
    if len(embeddings) != len(report.kept_indices):
        raise ValueError(f"{len(embeddings)} embeddings for {len(report.kept_indices)} surviving prompts")
    started = time.perf_counter()
    result = run_task(semantic_step, embeddings, config)
    _record(report, "semantic", result, texts, time.perf_counter() - started)
    return embeddings[np.asarray(result.kept, dtype=np.int64)]


def deduplicate(
    texts: Sequence[str],
    config: DedupConfig | None = None,
    *,
    embedder: Any = None,
    run_task: Callable[..., StepResult] = _in_process,
) -> DedupReport:
    """Run the enabled steps in order (exact → fuzzy → semantic), each on the previous step's survivors.

    ``embedder`` is anything with ``encode(texts)`` (default: the semantic section's model);
    ``run_task(fn, *args)`` runs each global step (an engine's ``run_task`` puts it on a cluster).
    """
    config = config or DedupConfig()
    report = dedup_text_steps(texts, config, run_task)
    if config.semantic.enabled:
        semantic = config.semantic
        model = embedder if embedder is not None else semantic.model_path
        started = time.perf_counter()
        embeddings = embed_texts(
            report.kept_texts, model, batch_size=semantic.batch_size, device=semantic.device
        )
        seconds = time.perf_counter() - started
        dedup_semantic(report, texts, embeddings, config, run_task)
        report.seconds["semantic"] += seconds
    return report


def write_removed_pairs(report: DedupReport, path: str | Path) -> Path:
    """Write the removed pairs to ``.jsonl`` or ``.parquet`` (atomically) for inspection."""
    path = Path(path)
    rows = [asdict(pair) for pair in report.pairs]
    if path.suffix == ".jsonl":
        return atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    if path.suffix == ".parquet":
        import pyarrow as pa

        schema = pa.schema(
            [
                ("step", pa.string()),
                ("removed_index", pa.int64()),
                ("removed_text", pa.string()),
                ("kept_index", pa.int64()),
                ("kept_text", pa.string()),
                ("score", pa.float64()),
            ]
        )
        return atomic_write_table(path, pa.Table.from_pylist(rows, schema=schema))
    raise ValueError(f"{path}: removed pairs are written as .jsonl or .parquet")


def kept_mask(report: DedupReport) -> np.ndarray:
    """Boolean mask over the original list: True where the prompt survived."""
    mask = np.zeros(report.input_count, dtype=bool)
    mask[report.kept_indices] = True
    return mask
