"""Generate stage: render planned (style, content) pairs with a text-to-image backend into shards.

``render_batch`` is the stage function (a plain function over a batch, engine-agnostic);
``run_generate`` drives it through an engine (one backend per worker) and writes one atomic
shard per fixed slice of the plan, so a killed run resumes at the first missing shard.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from megastyle.curate.combine import combine_prompts
from megastyle.curate.executor import Engine, LocalEngine, WorkerSpec, map_parts
from megastyle.curate.generators import GenerationRequest, TextToImageBackend, load_backend
from megastyle.data import (
    Reject,
    StyleRecord,
    atomic_write_json,
    atomic_write_text,
    encode_png,
    make_id,
    shard_name,
    write_shard,
)
from megastyle.progress import track
from megastyle.prompts import read_style_text
from megastyle.prompts.vocabulary import stable_hash


@dataclass(frozen=True)
class PlannedImage:
    """One row of the dataset before rendering."""

    style_id: int
    content_id: int
    style: str
    content: str
    seed: int

    @property
    def id(self) -> str:
        """The MegaStyle row id ``s{style}_c{content}``."""
        return make_id(self.style_id, self.content_id)


@dataclass
class GenerateSummary:
    """What one ``run_generate`` call did."""

    planned: int
    written: int
    rejected: int
    shards_written: int
    shards_skipped: int
    backend: str
    rejects: list[Reject] = field(default_factory=list)


def plan_images(
    styles: Sequence[str], contents: Sequence[str], per_style: int, seed: int
) -> list[PlannedImage]:
    """Every style × ``per_style`` distinct contents (combine stage), with a stable seed per row."""
    table = combine_prompts(len(styles), len(contents), per_style, seed)
    plan = []
    for style_id, content_ids in enumerate(table):
        for content_id in content_ids:
            row_seed = stable_hash(f"{style_id}:{content_id}", salt=str(seed)) % (2**31)
            plan.append(
                PlannedImage(style_id, int(content_id), styles[style_id], contents[content_id], row_seed)
            )
    return plan


def render_batch(
    batch: Sequence[PlannedImage], backend: TextToImageBackend, size: int
) -> tuple[list[StyleRecord], list[Reject]]:
    """Render one batch; an item that fails becomes a ``Reject`` and the rest go on."""
    requests = [GenerationRequest(p.style, p.content, p.seed, size) for p in batch]
    try:
        images = backend.generate(requests)
    except Exception:
        # A batch failure must not lose the good items: retry one by one to isolate the culprit.
        images = []
        for request in requests:
            try:
                images.extend(backend.generate([request]))
            except Exception as err:  # any backend error becomes a recorded reject
                images.append(err)
    records: list[StyleRecord] = []
    rejects: list[Reject] = []
    for planned, image in zip(batch, images, strict=True):
        if isinstance(image, Exception):
            rejects.append(Reject(planned.id, f"generate: {type(image).__name__}: {image}"))
            continue
        records.append(
            StyleRecord(
                id=planned.id,
                image=encode_png(image),
                image_path=f"{planned.id}.png",
                style=planned.style,
                content=planned.content,
                style_id=planned.style_id,
                content_id=planned.content_id,
                style_attributes=json.dumps(asdict(read_style_text(planned.style))),
                backend=backend.name,
                seed=planned.seed,
            )
        )
    return records, rejects


def render_stage(
    batch: Sequence[PlannedImage], backend: TextToImageBackend, *, size: int
) -> tuple[list, list]:
    """``render_batch`` in the engine's ``fn(batch, resource)`` shape."""
    return render_batch(batch, backend, size)


def plan_fingerprint(plan: Sequence[PlannedImage], size: int, backend: str, options: dict[str, Any]) -> str:
    """A digest of everything that decides the output, so a resume never mixes two plans."""
    digest = hashlib.sha256(json.dumps([size, backend, options], sort_keys=True).encode())
    for p in plan:
        digest.update(f"{p.id}\x00{p.style}\x00{p.content}\x00{p.seed}\n".encode())
    return digest.hexdigest()


def _chunks(items: Sequence[PlannedImage], size: int) -> Iterator[list[PlannedImage]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def run_generate(
    plan: Sequence[PlannedImage],
    out_dir: str | Path,
    *,
    backend: str = "procedural",
    backend_options: dict[str, Any] | None = None,
    size: int = 256,
    shard_size: int = 80_000,
    row_group_size: int = 100,
    batch_size: int = 8,
    workers: int = 1,
    engine: Engine | None = None,
    spec: WorkerSpec | None = None,
    show_progress: bool = True,
) -> GenerateSummary:
    """Render ``plan`` into ``out_dir`` shards; existing shards of the same plan are kept (resume)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = backend_options or {}
    fingerprint = plan_fingerprint(plan, size, backend, options)
    manifest_path = out_dir / "generate_manifest.json"
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text())
        if previous.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{out_dir} holds shards of a different plan (manifest {manifest_path}); "
                "use a new output directory or delete it"
            )
    shards = list(_chunks(plan, shard_size))
    manifest = {"fingerprint": fingerprint, "backend": backend, "size": size, "shards": len(shards)}
    atomic_write_json(manifest_path, manifest)

    summary = GenerateSummary(len(plan), 0, 0, 0, 0, backend)
    todo = []
    for i, rows in enumerate(shards):
        if (out_dir / shard_name(i)).exists():
            summary.shards_skipped += 1
            summary.written += len(rows) - _count_rejects(out_dir, i)
        else:
            todo.append((i, rows))
    engine = engine or LocalEngine(workers)
    stage = partial(render_stage, size=size)
    factory = partial(load_backend, backend, **options)
    done_before = len(plan) - sum(len(rows) for _, rows in todo)
    with track(f"generate [{backend}]", len(plan), enabled=show_progress, completed=done_before) as progress:
        done = map_parts(engine, stage, todo, batch_size, factory, progress.advance, spec)
        for index, results in done:
            records = [record for batch_records, _ in results for record in batch_records]
            shard_rejects = [reject for _, batch_rejects in results for reject in batch_rejects]
            # Rejects first: a shard on disk always has its rejects file beside it.
            _write_rejects(out_dir, index, shard_rejects)
            write_shard(out_dir / shard_name(index), records, row_group_size=row_group_size)
            summary.written += len(records)
            summary.rejected += len(shard_rejects)
            summary.rejects.extend(shard_rejects)
            summary.shards_written += 1
    return summary


def _rejects_path(out_dir: Path, index: int) -> Path:
    return out_dir / "rejects" / f"{shard_name(index)}.rejects.jsonl"


def _write_rejects(out_dir: Path, index: int, rejects: list[Reject]) -> None:
    atomic_write_text(_rejects_path(out_dir, index), "".join(r.to_json() + "\n" for r in rejects))


def _count_rejects(out_dir: Path, index: int) -> int:
    path = _rejects_path(out_dir, index)
    return sum(1 for _ in path.open()) if path.exists() else 0
