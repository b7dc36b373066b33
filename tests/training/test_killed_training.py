"""Both trainers killed (SIGKILL) while saving a checkpoint and inside a step, then rerun: the half-written
checkpoint is skipped and the finished weights equal an unbroken run's, bit for bit.

Dropout is on (attention dropout in the encoder, LoRA dropout in FLUX) so a resumed run that did not
restore the RNG states would draw other masks and end elsewhere. Every run is its own process, as a
user's would be.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from megastyle.checkpoints import completed_checkpoints
from megastyle.curate.generate import plan_images, run_generate
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.testing import build_tiny_siglip
from megastyle.testing.fixtures import tiny_model, tiny_models_root  # noqa: F401  (pytest fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SCRIPT = Path(__file__).with_name("run_trainer.py")
STEPS, SAVE_EVERY = 6, 2


def run(trainer: str, fields: dict[str, Any], folder: Path, *kill: str) -> subprocess.CompletedProcess[str]:
    """The trainer in its own process (``kill``: ``--kill save|step --at N``)."""
    config = folder.with_name(folder.name + ".json")
    config.write_text(json.dumps(fields | {"output_dir": str(folder)}, default=str))
    return subprocess.run(
        [sys.executable, str(SCRIPT), trainer, str(config), *kill],
        capture_output=True,
        text=True,
        timeout=300,
    )


def weights(paths: list[Path]) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for path in paths:
        tensors |= {f"{path.name}:{k}": v for k, v in load_file(str(path)).items()}
    return tensors


def logged_steps(folder: Path) -> list[int]:
    lines = (folder / "train_log.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if r.get("event") == "step"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("killed-data") / "shards"
    plan = plan_images(sample_style_prompts(6, seed=3), sample_content_prompts(12, seed=4), 4, seed=0)
    run_generate(plan, out, size=32, show_progress=False)
    return out


def encoder_fields(shards: Path, tmp: Path) -> dict[str, Any]:
    tiny = {"image_size": 32, "patch_size": 8, "hidden_size": 24, "intermediate_size": 32}
    tiny |= {"num_hidden_layers": 1, "num_attention_heads": 2, "attention_dropout": 0.3}
    return {
        "source": [str(shards)],
        "tiny": tiny,
        "text_tower": "hf",
        "text_model_path": str(build_tiny_siglip(tmp / "siglip")),
        "styles_per_batch": 3,
        "images_per_style": 3,
        "chunk_size": 4,  # gradient caching: its replayed forward must draw the same dropout masks
        "max_steps": STEPS,
        "save_every": SAVE_EVERY,
        "keep_checkpoints": 5,
        "log_every": 1,
        "progress": False,
        "seed": 5,
    }


def transfer_fields(shards: Path, flux: Path) -> dict[str, Any]:
    return {
        "data_dirs": [str(shards)],
        "model": str(flux),
        "height": 32,
        "width": 32,
        "max_sequence_length": 8,
        "rank": 4,
        "lora_dropout": 0.3,
        "batch_size": 4,
        "max_steps": STEPS,
        "save_every": SAVE_EVERY,
        "keep_checkpoints": 5,
        "log_every": 1,
        "lr": 1e-3,
        "progress": False,
        "seed": 7,
    }


FINAL = {
    "encoder": lambda out: [out / "encoder" / "model.safetensors", out / "sscl_loss.safetensors"],
    "transfer": lambda out: [out / "pytorch_lora_weights.safetensors"],
}
WEIGHTS_FILE = {"encoder": "encoder.safetensors", "transfer": "lora.safetensors"}


@pytest.fixture
def flux(tiny_model: Callable[..., Path]) -> Path:  # noqa: F811
    return tiny_model("flux")


@pytest.mark.parametrize("trainer", ["encoder", "transfer"])
def test_a_run_killed_while_saving_or_inside_a_step_resumes_to_the_unbroken_result(
    trainer: str, shards: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if trainer == "encoder":
        fields = encoder_fields(shards, tmp_path)
    else:
        fields = transfer_fields(shards, request.getfixturevalue("flux"))
    unbroken = tmp_path / "unbroken"
    done = run(trainer, fields, unbroken)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = weights(FINAL[trainer](unbroken))

    # Killed while writing checkpoint step 4: its weights are half there and it has no trainer_state.json.
    # Killed inside step 5: the step-4 checkpoint is the newest complete one.
    cases = {"save": (4, SAVE_EVERY), "step": (5, 4)}  # kill at step → newest complete checkpoint
    for kill, (at, resumes_from) in cases.items():
        out = tmp_path / f"killed-in-{kill}"
        killed = run(trainer, fields, out, "--kill", kill, "--at", str(at))
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        assert not FINAL[trainer](out)[0].exists()
        complete = [p.name for p in completed_checkpoints(out)]
        assert complete[-1] == f"step-{resumes_from:07d}", (kill, complete)
        if kill == "save":
            half = out / "checkpoints" / "step-0000004"
            assert (half / WEIGHTS_FILE[trainer]).is_file() and not (half / "trainer_state.json").exists()
        assert max(logged_steps(out)) == 4  # step 4 is logged before its checkpoint; step 5 never ends

        again = run(trainer, fields, out)
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads(again.stdout.splitlines()[-1]) == {"steps": STEPS, "world": 1}
        resumed = weights(FINAL[trainer](out))
        assert resumed.keys() == expected.keys()
        different = [k for k in expected if not torch.equal(expected[k], resumed[k])]
        assert not different, f"{trainer} killed in {kill}: {different[:4]} differ from the unbroken run"
        # The log reads as one run: each step once, in order (the steps after the checkpoint were redone).
        assert logged_steps(out) == list(range(1, STEPS + 1)), (kill, logged_steps(out))
        assert logged_steps(out) == logged_steps(unbroken)


def test_dropout_makes_the_runs_depend_on_the_rng(shards: Path, tmp_path: Path) -> None:
    """Guards the test above: with these settings two seeds of dropout alone end in other weights."""
    from megastyle.encode.train import SSCLTrainer
    from megastyle.encode.train_config import TrainEncoderConfig

    fields = encoder_fields(shards, tmp_path) | {"max_steps": 2, "save_every": 0}
    ends = []
    for masks in (0, 1):
        trainer = SSCLTrainer(TrainEncoderConfig(**fields, output_dir=tmp_path / f"masks-{masks}"))
        torch.manual_seed(1000 + masks)  # after the seeded build: only the dropout draws change
        ends.append(trainer.run().encoder_dir / "model.safetensors")
    first, second = load_file(str(ends[0])), load_file(str(ends[1]))
    assert any(not torch.equal(first[k], second[k]) for k in first)
