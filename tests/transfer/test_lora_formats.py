"""LoRAs we train with peft: diffusers-format save/reload, metadata (alpha) kept, errors named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import LoraConfig
from safetensors import safe_open
from test_lora_kohya import deltas, forward, make_transformer

from megastyle.transfer.lora import load_megastyle_lora, save_lora


def trained_like(alpha: float = 8.0) -> torch.nn.Module:
    """A transformer with a peft LoRA whose B is non-zero (as after training) and alpha != rank."""
    transformer = make_transformer()
    config = LoraConfig(
        r=4, lora_alpha=alpha, target_modules=["to_q", "to_k", "to_v", "to_out.0", "norm1.linear", "proj_mlp"]
    )
    transformer.add_adapter(config, adapter_name="megastyle")
    torch.manual_seed(5)
    for name, param in transformer.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.1)
    return transformer


def test_diffusers_format_round_trip(tmp_path: Path) -> None:
    source = trained_like()
    path = save_lora(source, tmp_path / "ours.safetensors", format="diffusers")
    with safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
        assert "lora_adapter_metadata" in (handle.metadata() or {})
    assert keys and all(k.startswith("transformer.") and ".lora_" in k for k in keys)
    target = make_transformer()
    assert not torch.allclose(forward(target), forward(source), atol=1e-4)
    report = load_megastyle_lora(target, path)
    assert report.all_placed and set(report.converted_by.values()) == {"diffusers-format"}
    torch.testing.assert_close(forward(target), forward(source), rtol=1e-5, atol=1e-6)
    # alpha / rank = 2 survives through the metadata (without it the delta would be half).
    for name, delta in deltas(source).items():
        torch.testing.assert_close(deltas(target)[name], delta)


def test_diffusers_own_reader_accepts_our_file(tmp_path: Path) -> None:
    from diffusers import FluxPipeline

    path = save_lora(trained_like(), tmp_path / "ours.safetensors")
    state_dict = FluxPipeline.lora_state_dict(path)
    state_dict = state_dict[0] if isinstance(state_dict, tuple) else state_dict
    assert any(k.startswith("transformer.transformer_blocks.0.attn.to_q.lora_A") for k in state_dict)


def test_kohya_export_of_a_trained_lora_reloads_identically(tmp_path: Path) -> None:
    source = trained_like(alpha=2.0)
    path = save_lora(source, tmp_path / "kohya.safetensors", format="kohya")
    target = make_transformer()
    assert load_megastyle_lora(target, path).all_placed
    torch.testing.assert_close(forward(target), forward(source), rtol=1e-5, atol=1e-6)


def test_unknown_module_in_diffusers_file_is_reported(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = trained_like()
    path = save_lora(source, tmp_path / "ours.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        metadata = handle.metadata()
    tensors["transformer.transformer_blocks.3.attn.to_q.lora_A.weight"] = torch.zeros(4, 32)
    save_file(tensors, str(tmp_path / "extra.safetensors"), metadata=metadata)
    report = load_megastyle_lora(make_transformer(), tmp_path / "extra.safetensors")
    assert list(report.unplaced) == ["transformer.transformer_blocks.3.attn.to_q.lora_A.weight"]


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no LoRA adapter 'megastyle'"):
        save_lora(make_transformer(), tmp_path / "none.safetensors")
    with pytest.raises(ValueError, match="unknown LoRA format"):
        save_lora(trained_like(), tmp_path / "x.safetensors", format="comfy")  # type: ignore[arg-type]
    source = make_transformer()
    source.add_adapter(
        LoraConfig(r=2, target_modules=["x_embedder", "norm_out.linear"]), adapter_name="megastyle"
    )
    with pytest.raises(ValueError, match="no kohya name"):
        save_lora(source, tmp_path / "k.safetensors", format="kohya")
