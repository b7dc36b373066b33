"""Ingest stage: style and content pools from image folders, Parquet, WebDataset tars or image lists.

``iter_pool(spec)`` yields ``PoolItem``s lazily: folders and list files hold paths (read at caption
time), Parquet rows and tar members carry their bytes. Images are never decoded here; missing and
zero-byte files, unreadable tar members or Parquet files, empty or non-text captions become ``Reject``s
(item id + cause) handed to ``on_reject``, and iteration goes on. Ids are ``{name}/{relative path}``,
``{name}/{shard}/{key}`` or ``{name}/{row id}``: stable across runs and unique within one pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from megastyle.curate.items import PoolItem
from megastyle.curate.pools.files import iter_folder, iter_list_file
from megastyle.curate.pools.parquet import iter_parquet_file
from megastyle.curate.pools.rows import shard_files
from megastyle.curate.pools.spec import (
    DEFAULT_CAPTION_COLUMNS,
    DEFAULT_IMAGE_COLUMNS,
    IMAGE_EXTENSIONS,
    METADATA_FILES,
    TAR_SUFFIXES,
    Entry,
    PoolKind,
    PoolSpec,
    RejectSink,
    detect_kind,
)
from megastyle.curate.pools.webdataset import iter_tar
from megastyle.data import Reject

__all__ = [
    "DEFAULT_CAPTION_COLUMNS",
    "DEFAULT_IMAGE_COLUMNS",
    "IMAGE_EXTENSIONS",
    "METADATA_FILES",
    "Entry",
    "PoolKind",
    "PoolSpec",
    "RejectSink",
    "detect_kind",
    "iter_pool",
    "iter_pools",
    "read_pool",
]

logger = logging.getLogger(__name__)


def _buffer_shuffle(
    entries: Iterable[Entry], rng: np.random.Generator, buffer: int | None
) -> Iterator[Entry]:
    """Exact shuffle when ``buffer`` is None, else a streaming shuffle through a ``buffer``-item window."""
    window: list[Entry] = []
    for entry in entries:
        window.append(entry)
        if buffer is not None and len(window) >= buffer:
            pick = int(rng.integers(len(window)))
            window[pick], window[-1] = window[-1], window[pick]
            yield window.pop()
    order = rng.permutation(len(window))
    yield from (window[i] for i in order)


def _entries(spec: PoolSpec, rng: np.random.Generator) -> tuple[Iterator[Entry], int | None]:
    kind = spec.resolved_kind()
    if kind == "folder":
        return iter_folder(spec.path, spec), None
    if kind == "list":
        return iter_list_file(spec.path, spec), None
    suffixes = (".parquet",) if kind == "parquet" else TAR_SUFFIXES
    files = shard_files(spec.path, suffixes)
    if spec.shuffle:
        files = [files[i] for i in rng.permutation(len(files))]
    read = iter_parquet_file if kind == "parquet" else iter_tar
    return (entry for f in files for entry in read(f, spec)), spec.shuffle_buffer


def _sink(on_reject: RejectSink) -> Callable[[Reject], object]:
    if isinstance(on_reject, list):
        return on_reject.append
    if on_reject is None:
        return lambda reject: logger.warning("pool reject %s: %s", reject.item, reject.cause)
    return on_reject


def iter_pool(spec: PoolSpec, on_reject: RejectSink = None) -> Iterator[PoolItem]:
    """Yield the pool's items lazily; rejects go to ``on_reject`` (callable or list; default: a log warning).

    The path and kind are checked at call time (a clear error before any item); reading is lazy.
    """
    if not spec.path.exists():
        raise FileNotFoundError(f"pool {spec.source_name}: no such file or folder {spec.path}")
    rng = np.random.default_rng(spec.seed)
    entries, buffer = _entries(spec, rng)
    if spec.shuffle:
        entries = _buffer_shuffle(entries, rng, buffer)
    return _accepted(entries, _sink(on_reject), spec.limit)


def _accepted(
    entries: Iterator[Entry], report: Callable[[Reject], object], limit: int | None
) -> Iterator[PoolItem]:
    accepted = 0
    if limit == 0:
        return
    for entry in entries:
        if isinstance(entry, Reject):
            report(entry)
            continue
        yield entry
        accepted += 1
        if limit is not None and accepted >= limit:
            return


def iter_pools(specs: Sequence[PoolSpec], on_reject: RejectSink = None) -> Iterator[PoolItem]:
    """Chain several sources into one pool; their names must differ so ids stay unique."""
    names = [s.source_name for s in specs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"pool sources share the names {duplicated}; give each PoolSpec a distinct name")
    for spec in specs:
        yield from iter_pool(spec, on_reject)


def read_pool(spec: PoolSpec) -> tuple[list[PoolItem], list[Reject]]:
    """Eager ``iter_pool`` for small pools and tests: (items, rejects)."""
    rejects: list[Reject] = []
    items = list(iter_pool(spec, rejects))
    return items, rejects
