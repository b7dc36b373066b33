"""``train_transfer`` end to end on the tiny FLUX: exact resume, LoRA files reload, the latent cache, the CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from megastyle.config import ConfigError
from megastyle.curate.generate import plan_images, run_generate
from megastyle.prompts import sample_content_prompts, sample_style_prompts
from megastyle.testing import random_images
from megastyle.testing.fixtures import tiny_model, tiny_models_root  # noqa: F401  (pytest fixtures)
from megastyle.transfer.lora import load_megastyle_lora
from megastyle.transfer.train import train_transfer
from megastyle.transfer.train_config import TrainTransferConfig


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 styles × 3 rows of 32-px procedural images."""
    out = tmp_path_factory.mktemp("transfer-data") / "shards"
    plan = plan_images(sample_style_prompts(3, seed=3), sample_content_prompts(6, seed=4), 3, seed=0)
    run_generate(plan, out, size=32, show_progress=False)
    return out


@pytest.fixture
def flux(tiny_model: Callable[..., Path]) -> Path:  # noqa: F811
    return tiny_model("flux")


def config(shards: Path, flux: Path, out: Path, **overrides: Any) -> TrainTransferConfig:
    fields: dict[str, Any] = {
        "data_dirs": [shards],
        "model": flux,
        "output_dir": out,
        "height": 32,
        "width": 32,
        "max_sequence_length": 8,
        "rank": 4,
        "batch_size": 3,  # 9 rows → 3 steps per epoch
        "max_steps": 6,
        "lr": 1e-3,
        "progress": False,
        "seed": 7,
        "keep_checkpoints": 5,
    }
    return TrainTransferConfig(**(fields | overrides))


def load_pipeline(flux: Path) -> Any:
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline

    return MegaStyleFluxPipeline.from_pretrained(str(flux))


@pytest.mark.parametrize(("save_every", "cache"), [(3, True), (4, False)])
def test_resumed_run_matches_the_unbroken_run(
    shards: Path, flux: Path, tmp_path: Path, save_every: int, cache: bool
) -> None:
    # The step-3 checkpoint sits at an epoch boundary, the step-4 one inside the second epoch.
    extra = {"save_every": save_every, "cache": cache, "cache_dir": tmp_path / "cache"}
    unbroken = tmp_path / "unbroken"
    train_transfer(config(shards, flux, unbroken, **extra))
    resumed = tmp_path / "resumed"
    middle = unbroken / "checkpoints" / f"step-{save_every:07d}"
    shutil.copytree(middle, resumed / "checkpoints" / middle.name)
    result = train_transfer(config(shards, flux, resumed, **extra))
    assert result.steps == 6
    first = load_file(str(unbroken / "pytorch_lora_weights.safetensors"))
    second = load_file(str(resumed / "pytorch_lora_weights.safetensors"))
    assert first.keys() == second.keys() and len(first) == 40
    start = load_file(str(middle / "lora.safetensors"))
    assert any(not torch.equal(start[k], first[f"transformer.{k}"]) for k in start)  # it trained on after
    for key in first:
        assert (first[key] - second[key]).abs().max().item() <= 1e-6, key
    steps = [json.loads(x)["step"] for x in (resumed / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(save_every + 1, 7))
    # Changing a setting that shapes the run refuses to resume from that checkpoint.
    with pytest.raises(ConfigError, match="other settings"):
        train_transfer(config(shards, flux, resumed, **(extra | {"rank": 2, "max_steps": 7})))


def test_saved_lora_files_reload_to_the_trained_output(shards: Path, flux: Path, tmp_path: Path) -> None:
    pipe = load_pipeline(flux)
    result = train_transfer(config(shards, flux, tmp_path / "run", max_steps=3), pipeline=pipe)
    assert set(result.lora_files) == {"diffusers", "kohya"}
    pipe.transformer.eval()
    style = random_images(1, size=(32, 32), seed=9)[0]

    def generate(pipeline: Any) -> torch.Tensor:
        output = pipeline(
            "a bench", style_image=style, height=32, width=32, num_inference_steps=2,
            generator=torch.Generator().manual_seed(0), output_type="latent", max_sequence_length=8,
        )  # fmt: skip
        return output.images

    trained = generate(pipe)
    pipe.transformer.disable_adapters()
    untrained = generate(pipe)
    pipe.transformer.enable_adapters()
    assert not torch.allclose(trained, untrained, atol=1e-5)  # the LoRA changed the output
    for fmt in ("diffusers", "kohya"):
        fresh = load_pipeline(flux)
        report = load_megastyle_lora(fresh, result.lora_files[fmt])
        assert report.all_placed, report.unplaced
        torch.testing.assert_close(generate(fresh), trained, rtol=1e-4, atol=1e-5)


def _count_encodes(pipe: Any) -> dict[str, int]:
    """Count images through the VAE encoder and prompts through each text encoder."""
    counts = {"vae_images": 0, "clip_prompts": 0, "t5_prompts": 0}
    encode = pipe.vae.encode

    def counting_encode(x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        counts["vae_images"] += x.shape[0]
        return encode(x, *args, **kwargs)

    pipe.vae.encode = counting_encode
    for name, key in (("text_encoder", "clip_prompts"), ("text_encoder_2", "t5_prompts")):

        def hook(module: Any, args: tuple[torch.Tensor, ...], key: str = key) -> None:
            counts[key] += args[0].shape[0]

        getattr(pipe, name).register_forward_pre_hook(hook)
    return counts


def test_cache_encodes_each_row_once_and_matches_the_uncached_run(
    shards: Path, flux: Path, tmp_path: Path
) -> None:
    plain = {"flip_p": 0.0, "crop_p": 0.0, "reference_variants": 1}  # augmentation off: cached == uncached
    pipe = load_pipeline(flux)
    counts = _count_encodes(pipe)
    train_transfer(config(shards, flux, tmp_path / "uncached", **plain), pipeline=pipe)
    # Without the cache every step encodes its 3 targets, 3 references and 3 prompts.
    assert counts == {"vae_images": 36, "clip_prompts": 18, "t5_prompts": 18}

    pipe = load_pipeline(flux)
    counts = _count_encodes(pipe)
    cached = {"cache": True, "cache_dir": tmp_path / "cache"}
    train_transfer(config(shards, flux, tmp_path / "cached", **plain, **cached), pipeline=pipe)
    # Two epochs, 9 rows: each row encoded once as target, once per reference variant, its prompt once.
    assert counts == {"vae_images": 18, "clip_prompts": 9, "t5_prompts": 9}
    first = load_file(str(tmp_path / "uncached" / "pytorch_lora_weights.safetensors"))
    second = load_file(str(tmp_path / "cached" / "pytorch_lora_weights.safetensors"))
    for key in first:
        torch.testing.assert_close(second[key], first[key], rtol=1e-4, atol=1e-5)

    # A second run over the same cache encodes nothing at all; a new size gets a new cache.
    pipe = load_pipeline(flux)
    counts = _count_encodes(pipe)
    train_transfer(config(shards, flux, tmp_path / "again", **plain, **cached, max_steps=3), pipeline=pipe)
    assert counts == {"vae_images": 0, "clip_prompts": 0, "t5_prompts": 0}
    folders = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert len(folders) == 1 and len(list(folders[0].glob("*.safetensors"))) >= 1
    train_transfer(
        config(shards, flux, tmp_path / "bigger", **plain, **cached, height=48, width=48, max_steps=1)
    )
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 2


def test_cli_trains_and_prints_the_files(shards: Path, flux: Path, tmp_path: Path) -> None:

    from megastyle.cli.app import app

    runner = CliRunner()
    printed = runner.invoke(app, ["train-transfer", "--print-config", "--rank", "8"])
    assert printed.exit_code == 0 and "rank = 8" in printed.output and "lora_alpha" not in printed.output
    args = [
        "train-transfer",
        "--data-dirs",
        f'["{shards}"]',
        "--model",
        str(flux),
        "--output-dir",
        str(tmp_path),
    ]
    args += [
        "--height",
        "32",
        "--width",
        "32",
        "--max-sequence-length",
        "8",
        "--rank",
        "2",
        "--max-steps",
        "1",
    ]
    args += ["--batch-size", "2", "--progress", "false", "--save-formats", '["kohya"]']
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "kohya LoRA" in result.output and (tmp_path / "megastyle_flux.safetensors").is_file()
    bad = runner.invoke(app, ["train-transfer", "--height", "30"])
    assert bad.exit_code == 2 and "multiples of 16" in bad.output


@pytest.fixture
def fresh_accelerate_state() -> Any:
    """accelerate keeps one mixed-precision setting per process: reset it around a test that changes it."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    yield
    AcceleratorState._reset_state()


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_bf16_weights_and_autocast_train_with_fp32_lora(shards: Path, flux: Path, tmp_path: Path) -> None:
    pipe = load_pipeline(flux)
    bf16 = {
        "mixed_precision": "bf16",
        "base_dtype": "bfloat16",
        "max_steps": 2,
        "save_formats": ["diffusers"],
    }
    cached = {"cache": True, "cache_dir": tmp_path / "cache", "timestep_sampling": "logit_normal"}
    result = train_transfer(config(shards, flux, tmp_path / "bf16", **bf16, **cached), pipeline=pipe)
    assert result.final_loss is not None and torch.isfinite(torch.tensor(result.final_loss))
    trainable = [p for p in pipe.transformer.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    assert pipe.transformer.x_embedder.weight.dtype == torch.bfloat16
    (cache_file,) = list((tmp_path / "cache").glob("*/*.safetensors"))[:1]
    assert all(t.dtype == torch.bfloat16 for t in load_file(str(cache_file)).values())


@pytest.mark.parametrize("enabled", [False, True])
def test_cudnn_attention_setting_holds_while_training_and_is_restored(
    shards: Path, flux: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    from megastyle.transfer import train as train_module

    seen: list[bool] = []
    real = train_module.flow_matching_loss

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append(torch.backends.cuda.cudnn_sdp_enabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "flow_matching_loss", spy)
    before = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(
        not enabled
    )  # the setting must come from the config, not the process
    try:
        cfg = config(
            shards, flux, tmp_path / "run", max_steps=2, save_formats=["diffusers"], cudnn_attention=enabled
        )
        train_transfer(cfg)
        assert seen == [enabled, enabled]
        assert torch.backends.cuda.cudnn_sdp_enabled() is (not enabled)  # restored after the run
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)
