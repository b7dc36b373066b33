"""``train_encoder`` itself under two gloo processes (torchrun on CPU) ends where one process does with the
same global batch: each rank encodes half of every P×K batch, features and labels are gathered, and
DDP averages the gradients."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from megastyle.curate.generate import plan_images, run_generate
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.testing import build_tiny_siglip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SCRIPT = Path(__file__).with_name("run_trainer.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train(fields: dict[str, Any], out: Path, processes: int) -> dict[str, torch.Tensor]:
    config = out.with_name(out.name + ".json")
    config.write_text(json.dumps(fields | {"output_dir": str(out)}, default=str))
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}"]
    launcher += ["--master-addr=127.0.0.1", f"--master-port={free_port()}"]
    command = [*launcher, str(SCRIPT), "encoder", str(config)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    # Each process says how many it trained with: one process group of all of them, not lone runs.
    assert re.findall(r'"world": (\d+)', done.stdout) == [str(processes)] * processes, done.stdout
    tensors = load_file(str(out / "encoder" / "model.safetensors"))
    return tensors | {f"loss:{k}": v for k, v in load_file(str(out / "sscl_loss.safetensors")).items()}


def key_bias_out(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The tensor without its attention-key bias: softmax ignores that bias, so its true gradient is 0 and
    Adam turns the rounding noise that stands in for it into full-size, run-dependent steps."""
    if name.endswith("k_proj.bias"):
        return tensor[:0]
    if name.endswith("in_proj_bias"):  # q, k, v stacked
        third = tensor.shape[0] // 3
        return torch.cat([tensor[:third], tensor[2 * third :]])
    return tensor


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    plan = plan_images(sample_style_prompts(8, seed=3), sample_content_prompts(12, seed=4), 4, seed=0)
    run_generate(plan, shards, size=32, show_progress=False)
    tiny = {"image_size": 32, "patch_size": 8, "hidden_size": 24, "intermediate_size": 32}
    tiny |= {"num_hidden_layers": 1, "num_attention_heads": 2}
    fields = {
        "source": [str(shards)],
        "tiny": tiny,
        "text_tower": "hf",  # the SigLIP image–text half of the loss runs on the gathered batch too
        "text_model_path": str(build_tiny_siglip(tmp_path / "siglip")),
        "styles_per_batch": 4,  # 2 styles per rank
        "images_per_style": 3,
        "chunk_size": 4,  # gradient caching with DDP's no_sync
        "max_steps": 4,
        "save_every": 0,
        "lr": 1e-3,
        "progress": False,
        "seed": 5,
    }
    one = train(fields, tmp_path / "one", 1)
    two = train(fields, tmp_path / "two", 2)
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(
            key_bias_out(key, two[key]), key_bias_out(key, one[key]), rtol=1e-4, atol=1e-5
        )
    # And the two encoders embed images alike.
    from megastyle.encode.model import StyleEncoder
    from megastyle.testing import random_images

    images = random_images(6, size=(32, 32), seed=1)
    embeddings = [
        StyleEncoder.from_pretrained(tmp_path / name / "encoder").embed_images(images, batch_size=6)
        for name in ("one", "two")
    ]
    torch.testing.assert_close(
        torch.as_tensor(embeddings[1]), torch.as_tensor(embeddings[0]), rtol=1e-4, atol=1e-5
    )
    # Not vacuous: the same run on half the batch (one rank's share alone) ends elsewhere.
    half = train(fields | {"styles_per_batch": 2}, tmp_path / "half", 1)
    assert any(not torch.allclose(half[k], one[k], rtol=1e-4, atol=1e-5) for k in one)
