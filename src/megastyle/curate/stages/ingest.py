"""Stage 1, ingest: read the pools into item tables; unreadable entries and repeated ids become rejects."""

from __future__ import annotations

import pyarrow as pa

from megastyle.curate.items import PoolItem
from megastyle.curate.pools import iter_pools
from megastyle.curate.runstate import StageDir
from megastyle.curate.stages.base import KINDS, CurateStateError, RunContext, Stage, StageResult
from megastyle.data import Reject, atomic_write_table

ITEM_SCHEMA = pa.schema(
    [("id", pa.string()), ("source", pa.string()), ("path", pa.string()), ("image", pa.binary()),
     ("caption", pa.string()), ("member", pa.string())]
)  # fmt: skip


def items_to_table(items: list[PoolItem]) -> pa.Table:
    """Pool items as a table (image bytes only for items without a file path or container reference)."""
    rows = [
        {"id": i.id, "source": i.source, "path": i.path, "image": None if i.path else i.image_bytes,
         "caption": i.caption, "member": i.member}
        for i in items
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=ITEM_SCHEMA)


def items_from_table(table: pa.Table) -> list[PoolItem]:
    """Inverse of ``items_to_table``."""
    fields = ("id", "source", "path", "caption", "member")
    return [PoolItem(image_bytes=r["image"], **{f: r.get(f) for f in fields}) for r in table.to_pylist()]


def run(ctx: RunContext, stage: StageDir) -> StageResult:
    """Write ``style.parquet`` and ``content.parquet``: every readable pool item, once."""
    stats = {}
    all_rejects: list[Reject] = []
    for kind in KINDS:
        specs = getattr(ctx.cfg.pools, kind)
        if not specs:
            raise CurateStateError(f"curate: no {kind} pool configured (pools.{kind} is empty)")
        rejects: list[Reject] = []
        seen: set[str] = set()
        items: list[PoolItem] = []
        for item in iter_pools(specs, on_reject=rejects.append):
            if item.id in seen:
                rejects.append(Reject(item.id, f"ingest: duplicate item id in the {kind} pools"))
                continue
            seen.add(item.id)
            items.append(item)
        atomic_write_table(stage.path / f"{kind}.parquet", items_to_table(items))
        stats[kind] = {"items": len(items), "rejected": len(rejects)}
        all_rejects += [Reject(r.item, f"ingest[{kind}]: {r.cause}") for r in rejects]
    return StageResult(stats, all_rejects)


STAGE = Stage("ingest", section=lambda cfg: cfg.pools, run=run)
