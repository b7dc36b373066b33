"""WebDataset pool reader: tar shards streamed member by member, one sample per run of one key."""

from __future__ import annotations

import json
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from megastyle.curate.items import PoolItem
from megastyle.curate.members import tar_member
from megastyle.curate.pools.rows import caption_columns, pick, shard_prefix, with_caption
from megastyle.curate.pools.spec import TAR_SUFFIXES, Entry, PoolSpec
from megastyle.data import Reject


def _split_key(member_name: str) -> tuple[str, str]:
    """WebDataset convention: the key is the path up to the first dot of the file name."""
    folder, _, base = member_name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def _is_plain_tar(path: Path) -> bool:
    """True when the file is an uncompressed tar, whose members can be read later by byte offset."""
    with path.open("rb") as handle:
        head = handle.read(6)
    compressed = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")  # gzip, bzip2, xz, zstd
    return not any(head.startswith(magic) for magic in compressed)


def _tar_sample(
    item_id: str,
    members: dict[str, bytes | Exception],
    source: str,
    spec: PoolSpec,
    spans: dict[str, tuple[int, int]] | None = None,
) -> Entry:
    image_exts = [e.lstrip(".").lower() for e in spec.extensions]
    ext = next((e for e in image_exts if e in members), None)
    if ext is None:
        return Reject(item_id, f"{source}: sample has no image member (has {sorted(members)})")
    data = members[ext]
    if isinstance(data, Exception):
        return Reject(item_id, f"{source}: unreadable tar member .{ext}: {data}")
    if not data:
        return Reject(item_id, f"{source}: zero-byte image member .{ext}")
    if spans is not None and ext in spans:  # a reference into the plain tar, not a copy of the bytes
        item = PoolItem(item_id, source, path=source, member=tar_member(*spans[ext]))
    else:
        item = PoolItem(item_id, source, image_bytes=data)
    for ext in ("txt", "json"):
        if isinstance(members.get(ext), Exception):
            return Reject(item_id, f"{source}: unreadable tar member .{ext}: {members[ext]}")
    if "txt" in members:
        return with_caption(item, members["txt"], f"{item_id}.txt", spec)
    if "json" in members:
        try:
            meta = json.loads(members["json"])  # type: ignore[arg-type]
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return Reject(item_id, f"{source}: {item_id}.json is not valid JSON: {exc}")
        if not isinstance(meta, dict):
            return Reject(item_id, f"{source}: {item_id}.json is not a JSON object")
        column, value = pick(meta, caption_columns(spec))
        return with_caption(item, value, f"{item_id}.json {column}", spec)
    return with_caption(item, None, f"{item_id}", spec)


def iter_tar(path: Path, spec: PoolSpec) -> Iterator[Entry]:
    """Stream one tar shard (members read in order, never all at once); samples are runs of one key."""
    prefix, source = shard_prefix(spec, path, TAR_SUFFIXES), str(path)
    key: str | None = None
    members: dict[str, bytes | Exception] = {}
    spans: dict[str, tuple[int, int]] | None = {} if _is_plain_tar(path) else None
    done: set[str] = set()  # keys already emitted: a key that comes back would duplicate an id
    try:
        with tarfile.open(path, mode="r|*") as stream:
            for member in stream:
                if member.isdir():
                    continue
                member_key, ext = _split_key(member.name)
                if member_key in done:  # not contiguous: its sample was already emitted under this id
                    yield Reject(f"{prefix}/{member_key}", f"{source}: {member.name} repeats an earlier key")
                    continue
                if member_key != key:
                    if key is not None:
                        yield _tar_sample(f"{prefix}/{key}", members, source, spec, spans)
                        done.add(key)
                    key, members = member_key, {}
                    spans = {} if spans is not None else None
                try:
                    handle = stream.extractfile(member) if member.isfile() else None
                    if handle is None:
                        raise tarfile.ExtractError(f"{member.name} is not a regular file")
                    members[ext] = handle.read()
                    if spans is not None:
                        spans[ext] = (member.offset_data, member.size)
                except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                    members[ext] = exc
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        if key is not None:  # members read before the break are whole; judge that sample on its own
            yield _tar_sample(f"{prefix}/{key}", members, source, spec, spans)
            key = None
        yield Reject(prefix, f"{path}: tar stream broken, rest of shard skipped: {type(exc).__name__}: {exc}")
    if key is not None:
        yield _tar_sample(f"{prefix}/{key}", members, source, spec, spans)
