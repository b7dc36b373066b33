"""Checkpoint folders on disk: which count as complete, which are pruned, when a resume is refused, and what an
encoder checkpoint restores (weights, optimizer, scheduler and every RNG stream)."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from megastyle.checkpoints import (
    check_resume_key,
    completed_checkpoints,
    latest_checkpoint,
    prune_checkpoints,
    restore_torch_rng_states,
    torch_rng_states,
)
from megastyle.config import ConfigError
from megastyle.encode.checkpoint import load_checkpoint, save_checkpoint
from megastyle.encode.losses import SSCLLoss
from megastyle.encode.model import StyleEncoder
from megastyle.testing import build_tiny_siglip


def _checkpoint(out: Path, step: int, complete: bool = True, **state: object) -> Path:
    folder = out / "checkpoints" / f"step-{step:07d}"
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w")
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"step": step, **state}))
    return folder


def test_only_folders_with_their_marker_count_oldest_first(tmp_path: Path) -> None:
    assert completed_checkpoints(tmp_path) == [] and latest_checkpoint(tmp_path) is None
    later, half, earlier = (
        _checkpoint(tmp_path, 20),
        _checkpoint(tmp_path, 30, complete=False),
        _checkpoint(tmp_path, 10),
    )
    (tmp_path / "checkpoints" / "notes").mkdir()
    (tmp_path / "checkpoints" / "notes" / "trainer_state.json").write_text("{}")
    assert completed_checkpoints(tmp_path) == [earlier, later]
    assert latest_checkpoint(tmp_path) == later and half.is_dir()


@pytest.mark.parametrize("keep", [1, 2, 5])
def test_pruning_keeps_the_newest_complete_ones_and_nothing_else_is_touched(
    tmp_path: Path, keep: int
) -> None:
    folders = [_checkpoint(tmp_path, step) for step in (1, 2, 3, 4)]
    half = _checkpoint(tmp_path, 5, complete=False)
    prune_checkpoints(tmp_path, keep)
    kept = folders[-keep:]
    assert completed_checkpoints(tmp_path) == kept
    assert [f.is_dir() for f in folders] == [f in kept for f in folders]  # pruned folders are gone whole
    assert (half / "weights.bin").is_file()  # an incomplete folder is not this function's to delete


def test_a_resume_with_other_settings_is_refused_naming_each_difference(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path, 4, resume_key={"lr": 0.1, "rank": 4, "seed": 0})
    check_resume_key(folder, {"lr": 0.1, "rank": 4, "seed": 0})  # the same settings resume
    with pytest.raises(
        ConfigError,
        match=r"step-0000004 was written with other settings \['lr', 'steps'\]; set resume = false$",
    ):
        check_resume_key(folder, {"lr": 0.2, "rank": 4, "seed": 0, "steps": 9})
    old = _checkpoint(tmp_path, 8)  # written before resume keys existed: every key differs
    with pytest.raises(ConfigError, match=r"\['rank'\]"):
        check_resume_key(old, {"rank": 4})


def _draws() -> tuple[list[float], list[float], list[float]]:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("ckpt") / "siglip")


def _parts(folder: Path, seed: int):
    torch.manual_seed(seed)
    encoder = StyleEncoder.from_pretrained(folder)
    for p in encoder.parameters():
        torch.nn.init.normal_(p, std=0.02)
    loss = SSCLLoss(init_logit_scale=float(seed + 1), init_logit_bias=-float(seed))
    optimizer = torch.optim.AdamW([*encoder.parameters(), *loss.parameters()], lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    return encoder, loss, optimizer, scheduler


def test_an_encoder_checkpoint_restores_weights_optimizer_schedule_and_every_rng(
    tmp_path: Path, tiny_siglip: Path
) -> None:
    encoder, loss, optimizer, scheduler = _parts(tiny_siglip, seed=1)
    for p in [*encoder.parameters(), *loss.parameters()]:
        p.grad = torch.ones_like(p)
    optimizer.step()
    scheduler.step()
    torch.manual_seed(11), np.random.seed(12), random.seed(13)
    folder = tmp_path / "step-0000001"
    state = {"step": 1, "epoch": 0}
    save_checkpoint(
        folder,
        encoder=encoder,
        loss_fn=loss,
        optimizer=optimizer,
        scheduler=scheduler,
        trainer_state=state,
        rank=0,
        is_main=True,
    )
    after_save = _draws()

    fresh = _parts(tiny_siglip, seed=2)
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    assert (
        load_checkpoint(
            folder, encoder=fresh[0], loss_fn=fresh[1], optimizer=fresh[2], scheduler=fresh[3], rank=0
        )
        == state
    )
    assert _draws() == after_save  # torch, numpy and python streams all continue where the save left them
    for ours, theirs in ((encoder, fresh[0]), (loss, fresh[1])):
        for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items(), strict=True):
            assert torch.equal(a, b), name
    assert fresh[2].state_dict()["state"].keys() == optimizer.state_dict()["state"].keys()
    for key, value in optimizer.state_dict()["state"].items():
        assert torch.equal(fresh[2].state_dict()["state"][key]["exp_avg"], value["exp_avg"])
    assert fresh[3].state_dict() == scheduler.state_dict() and fresh[3].last_epoch == 1


def test_other_ranks_write_only_their_rng_and_a_missing_rng_file_leaves_the_streams_alone(
    tmp_path: Path, tiny_siglip: Path
) -> None:
    encoder, loss, optimizer, scheduler = _parts(tiny_siglip, seed=1)
    folder = tmp_path / "step-0000002"
    parts = {"encoder": encoder, "loss_fn": loss, "optimizer": optimizer, "scheduler": scheduler}
    torch.manual_seed(5)
    save_checkpoint(folder, **parts, trainer_state={"step": 2}, rank=1, is_main=False)
    assert sorted(p.name for p in folder.iterdir()) == ["rng-rank1.json", "rng-rank1.safetensors"]
    save_checkpoint(folder, **parts, trainer_state={"step": 2}, rank=0, is_main=True)
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    load_checkpoint(folder, **parts, rank=3)  # resumed on more processes than saved: rank 3 has no file
    assert torch.equal(torch.rand(2), expected)


def test_every_gpus_rng_goes_back_to_its_own_device(monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU here: twelve fake CUDA generator states, so device 10 sorting before device 2 would show.
    states = [torch.full((8,), i, dtype=torch.uint8) for i in range(12)]
    restored: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    saved = torch_rng_states()
    assert sorted(saved) == sorted(["torch_cpu", *(f"torch_cuda_{i}" for i in range(12))])
    assert all(torch.equal(saved[f"torch_cuda_{i}"], states[i]) for i in range(12))
    restore_torch_rng_states(dict(reversed(saved.items())))
    assert len(restored) == 1 and [int(t[0]) for t in restored[0]] == list(range(12))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sorted(torch_rng_states()) == ["torch_cpu"]
    restore_torch_rng_states(saved)  # saved on GPUs, resumed on none: the CPU stream only
    assert len(restored) == 1


def test_a_prune_that_cannot_finish_leaves_no_folder_that_looks_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file that cannot be deleted (busy on a network disk, say) must neither stop training nor leave a
    # half-deleted checkpoint that a resume would take as complete.
    folders = [_checkpoint(tmp_path, step) for step in (1, 2, 3)]
    (folders[0] / "busy.bin").write_bytes(b"x")
    unlink = os.unlink

    def refuse_busy(path, *args, **kwargs):
        if os.fspath(path).endswith("busy.bin"):
            raise PermissionError(13, "busy", os.fspath(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refuse_busy)
    prune_checkpoints(tmp_path, keep=2)
    assert (folders[0] / "busy.bin").exists() and not (folders[0] / "trainer_state.json").exists()
    assert completed_checkpoints(tmp_path) == folders[1:] and latest_checkpoint(tmp_path) == folders[2]


def test_the_optimizer_file_loads_from_a_gpu_run_and_never_unpickles(
    tmp_path: Path, tiny_siglip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder, loss, optimizer, scheduler = _parts(tiny_siglip, seed=1)
    parts = {"encoder": encoder, "loss_fn": loss, "optimizer": optimizer, "scheduler": scheduler}
    for p in [*encoder.parameters(), *loss.parameters()]:
        p.grad = torch.ones_like(p)
    optimizer.step()
    folder = tmp_path / "step-0000001"
    with monkeypatch.context() as patch:  # the tensors marked as CUDA ones, as a GPU run writes them
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        save_checkpoint(folder, **parts, trainer_state={"step": 1}, rank=0, is_main=True)
    load_checkpoint(folder, **parts, rank=0)
    assert all(v["exp_avg"].device.type == "cpu" for v in optimizer.state_dict()["state"].values())
    state = torch.load(folder / "optimizer.pt", weights_only=True, map_location="cpu")
    torch.save({**state, "payload": NotATensor()}, folder / "optimizer.pt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # only overrides an unset weights_only
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(folder, **parts, rank=0)


class NotATensor:
    """Any object a weights-only load must refuse."""


class _Killed(BaseException):
    """Stands for the process dying."""


def test_a_prune_killed_midway_leaves_no_folder_that_looks_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = [_checkpoint(tmp_path, step) for step in (1, 2, 3)]

    def dies_after_one_file(path, ignore_errors=False):
        (Path(path) / "weights.bin").unlink()
        raise _Killed

    monkeypatch.setattr(shutil, "rmtree", dies_after_one_file)
    with pytest.raises(_Killed):
        prune_checkpoints(tmp_path, keep=2)
    assert folders[0].is_dir() and completed_checkpoints(tmp_path) == folders[1:]
