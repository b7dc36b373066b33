"""Two CPU processes (gloo + DDP) with gathered features give the single-process full-batch gradients."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from megastyle.encode.gradcache import GradCache
from megastyle.encode.losses import SSCLLoss, SSCLLossOutput
from megastyle.encode.train import gather_with_grad

pytestmark = pytest.mark.slow  # see docs/testing.md: plain `pytest` skips it, `make test` runs it

WORLD = 2
CHUNKS = (0, 4)  # 0: plain step; 4: GradCache with DDP's no_sync on all chunks but the last
LABELS = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])


def _problem() -> tuple[nn.Module, SSCLLoss, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 6))
    loss_fn = SSCLLoss(supcon_weight=1.0, siglip_weight=0.5)
    inputs = torch.randn(12, 8)
    text = F.normalize(torch.randn(4, 6), dim=-1)[LABELS]
    return model, loss_fn, inputs, text


def _grads(model: nn.Module, loss_fn: SSCLLoss) -> list[torch.Tensor]:
    return [p.grad.clone() for p in [*model.parameters(), *loss_fn.parameters()]]


def _worker(rank: int, port: int, out: str) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        for chunk in CHUNKS:
            _rank_step(rank, chunk, out)
        dist.barrier()  # no rank tears down its gloo pairs while the other still uses them
    finally:
        dist.destroy_process_group()
    # CI once saw a rank abort in gloo's native teardown at interpreter exit, after its results
    # were saved; skipping the interpreter's shutdown keeps that out of a test of gradients.
    os._exit(0)


def _rank_step(rank: int, chunk: int, out: str) -> None:
    model, loss_fn, inputs, text = _problem()
    ddp = DistributedDataParallel(model)
    local = inputs[rank * 6 : (rank + 1) * 6]  # each rank: 2 whole styles of the P×K batch

    def loss_of(features: torch.Tensor) -> SSCLLossOutput:
        return loss_fn(gather_with_grad(features, WORLD), LABELS, text)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return F.normalize(ddp(x), dim=-1)

    if chunk:
        GradCache(encode, chunk, no_sync=ddp.no_sync).step(local, loss_of)
    else:
        loss_of(encode(local)).loss.backward()
    torch.save(_grads(model, loss_fn), Path(out) / f"rank{rank}-chunk{chunk}.pt")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gathered_ddp_gradients_equal_the_full_batch(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    model, loss_fn, inputs, text = _problem()
    loss_fn(F.normalize(model(inputs), dim=-1), LABELS, text).loss.backward()
    expected = _grads(model, loss_fn)
    for rank in range(WORLD):
        for chunk in CHUNKS:
            got = torch.load(tmp_path / f"rank{rank}-chunk{chunk}.pt", weights_only=True)
            for g, e in zip(got, expected, strict=True):
                torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)
