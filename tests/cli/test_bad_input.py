"""Bad input through the real command line (a subprocess each): one line on stderr naming the item and the
cause, exit code 2, no traceback; the user's files are untouched and no pickle payload ever runs."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import save_file

from megastyle.testing import random_images, tiny_model_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


class PayloadRan:
    """Unpickling this writes a marker file: proof that a pickle payload was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (os.system, (f"touch {self.marker}",))


@dataclass
class World:
    """Files every case can point at (built once for the module)."""

    root: Path
    encoder: Path
    flux: Path
    good: Path
    other: Path
    corrupt: Path
    empty_file: Path
    pickle_pth: Path
    marker: Path
    text_file: Path
    official_pth: Path
    truncated_shards: Path
    not_parquet_shards: Path
    no_image_shards: Path
    empty_dir: Path
    foreign_run_dir: Path
    bad_lora: Path
    unrelated_lora: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("bad_input")
    from megastyle.encode.model import StyleEncoder

    encoder = tiny_model_dir("siglip")
    images = random_images(2, (32, 32), seed=3)
    good, other = root / "good.png", root / "other.png"
    images[0].save(good)
    images[1].save(other)
    corrupt = root / "corrupt.png"
    corrupt.write_bytes(good.read_bytes()[:60])
    empty_file = root / "empty.png"
    empty_file.write_bytes(b"")
    marker = root / "PAYLOAD_RAN"
    pickle_pth = root / "payload.pth"
    pickle_pth.write_bytes(pickle.dumps({"model": PayloadRan(str(marker))}))
    text_file = root / "notes.pth"
    text_file.write_text("this is not a checkpoint\n")
    official_pth = root / "official.pth"
    StyleEncoder.from_pretrained(encoder).export_official(official_pth)
    truncated = root / "truncated"
    truncated.mkdir()
    table = pa.table({"id": ["s0_c0"], "style": ["a style"], "content": ["a thing"]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    (truncated / "train-00000.parquet").write_bytes(buffer.getvalue()[:40])
    not_parquet = root / "not_parquet"
    not_parquet.mkdir()
    (not_parquet / "train-00000.parquet").write_text("id,style\ns0_c0,x\n")
    no_image = root / "no_image"
    no_image.mkdir()
    pq.write_table(table, no_image / "train-00000.parquet")
    empty_dir = root / "empty_dir"
    empty_dir.mkdir()
    foreign = root / "my_project"
    (foreign / "dataset").mkdir(parents=True)
    (foreign / "dataset" / "thesis.txt").write_text("my own notes, not megastyle's\n")
    (foreign / "photo.png").write_bytes(good.read_bytes())
    bad_lora = root / "lora.bin"
    bad_lora.write_bytes(pickle.dumps({"weights": np.zeros(3)}))
    unrelated = root / "unrelated.safetensors"
    save_file({"some.module.weight": torch.zeros(2, 2)}, str(unrelated))
    return World(
        root, encoder, tiny_model_dir("flux"), good, other, corrupt, empty_file, pickle_pth, marker, text_file,
        official_pth, truncated, not_parquet, no_image, empty_dir, foreign, bad_lora, unrelated,
    )  # fmt: skip


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MEGASTYLE_DEBUG": "", "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "megastyle.cli.app", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


Case = tuple[str, Callable[[World], list[str]], Callable[[World], str]]
# (name, arguments, text the one error line must contain)
CASES: list[Case] = [
    # missing folders and files
    ("config file missing", lambda w: ["curate", "--config", "nope.toml"], lambda w: "nope.toml"),
    ("config not TOML", lambda w: ["curate", "--config", str(w.good)], lambda w: str(w.good)),
    ("embed source missing", lambda w: ["embed", "--source", "nowhere", "--encoder", str(w.encoder)], lambda w: "nowhere"),
    ("bench retrieval source missing", lambda w: ["bench", "retrieval", "--source", "nowhere"], lambda w: "nowhere"),
    ("bench dataset source missing", lambda w: ["bench", "dataset", "--source", "nowhere"], lambda w: "nowhere"),
    ("inspect path missing", lambda w: ["inspect", "nowhere"], lambda w: "nowhere"),
    ("score image missing", lambda w: ["score", str(w.good), "missing.png", "--encoder", str(w.encoder)], lambda w: "missing.png"),
    ("score one image", lambda w: ["score", str(w.good), "--encoder", str(w.encoder)], lambda w: "IMAGE_A IMAGE_B"),
    ("encoder folder missing", lambda w: ["score", str(w.good), str(w.other), "--encoder", "no_model"], lambda w: "no_model"),
    ("encoder folder without config", lambda w: ["score", str(w.good), str(w.other), "--encoder", str(w.empty_dir)], lambda w: str(w.empty_dir)),
    ("transfer style missing", lambda w: ["transfer", "--style", "missing.png", "--prompt", "A bench", "--model", str(w.flux)], lambda w: "missing.png"),
    ("transfer model missing", lambda w: ["transfer", "--style", str(w.good), "--prompt", "A bench", "--model", "no_flux"], lambda w: "no_flux"),
    ("train-encoder data missing", lambda w: ["train-encoder", "--data-dirs", "nowhere", "--init", "tiny"], lambda w: "nowhere"),
    ("train-transfer model missing", lambda w: ["train-transfer", "--data-dirs", str(w.empty_dir), "--model", "no_flux"], lambda w: "no_flux"),
    ("search embeddings missing", lambda w: ["search", "--embeddings", "none.safetensors", "--queries", str(w.good), "--encoder", str(w.encoder)], lambda w: "none.safetensors"),
    ("bench retrieval benchmark missing", lambda w: ["bench", "retrieval", "--benchmark", "no_bench"], lambda w: "no_bench"),
    ("render prompt file missing", lambda w: ["render", "--style-prompts", "styles.txt", "--output-dir", str(w.root / "render_out")], lambda w: "styles.txt"),
    ("render prompt file empty", lambda w: ["render", "--style-prompts", str(w.empty_file), "--output-dir", str(w.root / "render_out2")], lambda w: str(w.empty_file)),
    # shards
    ("truncated shard", lambda w: ["inspect", str(w.truncated_shards)], lambda w: "train-00000.parquet"),
    ("shard that is not Parquet", lambda w: ["inspect", "--path", str(w.not_parquet_shards)], lambda w: "train-00000.parquet"),
    ("shard without an image column", lambda w: ["bench", "dataset", "--source", str(w.no_image_shards)], lambda w: "image"),
    ("embed a truncated shard", lambda w: ["embed", "--source", str(w.truncated_shards), "--encoder", str(w.encoder), "--output", str(w.root / "e.safetensors")], lambda w: "train-00000.parquet"),
    ("no shards in folder", lambda w: ["bench", "dataset", "--source", str(w.empty_dir)], lambda w: str(w.empty_dir)),
    # images
    ("score an undecodable image", lambda w: ["score", str(w.corrupt), str(w.good), "--encoder", str(w.encoder)], lambda w: "corrupt.png"),
    ("score an empty file", lambda w: ["score", str(w.empty_file), str(w.good), "--encoder", str(w.encoder)], lambda w: "empty.png"),
    ("transfer with only a bad style image", lambda w: ["transfer", "--style", str(w.corrupt), "--prompt", "A bench", "--model", str(w.flux), "--output-dir", str(w.root / "t_out")], lambda w: "corrupt.png"),
    # checkpoints and weights
    ("pickle payload as official .pth", lambda w: ["score", str(w.good), str(w.other), "--official-pth", str(w.pickle_pth), "--base-model", str(w.encoder)], lambda w: "refused: contains non-tensor objects (pickle)"),
    ("text file as official .pth", lambda w: ["score", str(w.good), str(w.other), "--official-pth", str(w.text_file), "--base-model", str(w.encoder)], lambda w: "notes.pth"),
    ("official .pth without base model", lambda w: ["score", str(w.good), str(w.other), "--official-pth", str(w.official_pth)], lambda w: "--base-model"),
    ("LoRA that is not safetensors", lambda w: ["transfer", "--style", str(w.good), "--prompt", "A bench", "--model", str(w.flux), "--lora", str(w.bad_lora), "--output-dir", str(w.root / "t_out2")], lambda w: "lora.bin"),
    ("LoRA with unrelated keys", lambda w: ["transfer", "--style", str(w.good), "--prompt", "A bench", "--model", str(w.flux), "--lora", str(w.unrelated_lora), "--output-dir", str(w.root / "t_out3")], lambda w: "unrelated.safetensors"),
    # devices
    ("cuda without CUDA (embed)", lambda w: ["embed", "--source", str(w.root), "--encoder", str(w.encoder), "--device", "cuda"], lambda w: "cuda"),
    ("cuda without CUDA (transfer)", lambda w: ["transfer", "--style", str(w.good), "--prompt", "A bench", "--model", str(w.flux), "--device", "cuda"], lambda w: "cuda"),
    ("a device that does not exist", lambda w: ["score", str(w.good), str(w.other), "--encoder", str(w.encoder), "--device", "tpu9"], lambda w: "tpu9"),
    # options and run folders
    ("unknown option", lambda w: ["curate", "--nope", "1"], lambda w: "nope"),
    ("invalid value", lambda w: ["render", "--image-size", "huge"], lambda w: "image_size"),
    ("repeated scalar option", lambda w: ["render", "--seed", "1", "--seed", "2"], lambda w: "--seed"),
    ("run-dir that is a file", lambda w: ["curate", "--run-dir", str(w.good), "--pools.style", str(w.root), "--pools.content", str(w.root)], lambda w: str(w.good)),
    ("resume without a run", lambda w: ["curate", "--run-dir", str(w.root / "never_ran"), "--resume", "--pools.style", str(w.root), "--pools.content", str(w.root)], lambda w: "never_ran"),
    ("quickstart output is a file", lambda w: ["quickstart", "--output-dir", str(w.good)], lambda w: str(w.good)),
    ("embeddings output with the wrong suffix", lambda w: ["embed", "--source", str(w.root), "--encoder", str(w.encoder), "--output", str(w.root / "e.txt")], lambda w: "e.txt"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_the_item(world: World, case: Case) -> None:
    _, args, expected = case
    result = _run(args(world), world.root)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, f"exit {result.returncode}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr and " object at 0x" not in result.stderr, result.stderr
    # Progress lines of the work done before the failure may come first (stderr is not a terminal here).
    progress = [line for line in lines[:-1] if re.match(r"^\d\d:\d\d:\d\d ", line)]
    assert lines and lines[-1].startswith("error: ") and len(progress) == len(lines) - 1, result.stderr
    assert expected(world) in lines[-1], lines[-1]
    assert not world.marker.exists(), "a pickle payload ran"


def test_a_foreign_folder_as_run_dir_is_refused_and_left_untouched(world: World) -> None:
    before = _tree_digest(world.foreign_run_dir)
    result = _run(
        ["curate", "--run-dir", str(world.foreign_run_dir), "--pools.style", str(world.root),
         "--pools.content", str(world.root)],
        world.root,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {world.foreign_run_dir}: not empty and not a megastyle curate run"), line
    assert "dataset" in line and "photo.png" in line  # what is in the way
    assert not (world.foreign_run_dir / ".megastyle-run.json").exists()
    assert _tree_digest(world.foreign_run_dir) == before


def test_debug_shows_the_traceback(world: World) -> None:
    result = _run(
        ["--debug", "score", str(world.good), "missing.png", "--encoder", str(world.encoder)], world.root
    )
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_a_failed_start_does_not_block_the_corrected_rerun(world: World, tmp_path: Path) -> None:
    from megastyle.quickstart.pools import make_procedural_pools

    pools = make_procedural_pools(tmp_path / "pools", 12, 8, seed=1, size=32)
    run_dir = tmp_path / "run"
    common = ["curate", "--run-dir", str(run_dir), "--progress", "false", "--balance.style.target", "4",
              "--balance.content.target", "4", "--combine.contents-per-style", "2", "--generate.image-size", "32"]  # fmt: skip
    missing = _run(
        [*common, "--pools.style", str(tmp_path / "no_pool"), "--pools.content", str(pools.content_dir)],
        tmp_path,
    )
    assert missing.returncode == 2 and "no_pool: the style pool does not exist" in missing.stderr
    fixed = _run(
        [*common, "--pools.style", str(pools.style_dir), "--pools.content", str(pools.content_dir)], tmp_path
    )
    assert fixed.returncode == 0, fixed.stderr
    again = _run(
        [*common, "--pools.style", str(pools.style_dir), "--pools.content", str(pools.content_dir)], tmp_path
    )
    assert again.returncode == 2 and "pass --resume" in again.stderr.splitlines()[-1]
    resumed = _run(
        [
            *common,
            "--resume",
            "--pools.style",
            str(pools.style_dir),
            "--pools.content",
            str(pools.content_dir),
        ],
        tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
