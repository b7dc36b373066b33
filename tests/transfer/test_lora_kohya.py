"""Official kohya-format MegaStyle LoRA on the tiny FLUX transformer: placement, exact deltas, export round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from megastyle.testing.flux import tiny_flux_transformer
from megastyle.transfer.lora import (
    KOHYA_BLOCK_TARGETS,
    kohya_targets,
    linear_modules,
    load_megastyle_lora,
    save_lora,
)

RANK, ALPHA = 4, 3.0  # alpha != rank so the alpha / rank scale is exercised


def make_transformer(seed: int = 0) -> torch.nn.Module:
    """The tiny 1 double + 1 single block FLUX transformer, seeded."""
    torch.manual_seed(seed)
    return tiny_flux_transformer().eval()


def official_lora(transformer: torch.nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    """A LoRA in the official key layout, sized from the transformer's own modules (fused qkv/linear1)."""
    generator = torch.Generator().manual_seed(seed)
    linears = linear_modules(transformer)
    out = {}
    for group, pieces in kohya_targets(transformer).items():
        if "_blocks_" not in group:
            continue
        rows = sum(linears[m].out_features for m in pieces)
        out[f"{group}.lora_down.weight"] = torch.randn(
            RANK, linears[pieces[0]].in_features, generator=generator
        )
        out[f"{group}.lora_up.weight"] = torch.randn(rows, RANK, generator=generator) * 0.1
        out[f"{group}.alpha"] = torch.tensor(ALPHA)
    return out


def forward(transformer: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    """One transformer call on fixed random inputs (4×4 token grid, 6 text tokens)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(16, 3)
    ids[:, 1], ids[:, 2] = torch.arange(16) // 4, torch.arange(16) % 4
    with torch.no_grad():
        return transformer(
            hidden_states=torch.randn(2, 16, 16, generator=g),
            encoder_hidden_states=torch.randn(2, 6, 32, generator=g),
            pooled_projections=torch.randn(2, 32, generator=g),
            timestep=torch.tensor([0.5, 0.7]),
            img_ids=ids,
            txt_ids=torch.zeros(6, 3),
            guidance=torch.tensor([3.5, 3.5]),
            return_dict=False,
        )[0]


def deltas(transformer: torch.nn.Module, adapter: str = "megastyle") -> dict[str, torch.Tensor]:
    """Merged weight delta of every LoRA'd module."""
    from peft.tuners.lora import LoraLayer

    return {
        name: module.get_delta_weight(adapter)
        for name, module in transformer.named_modules()
        if isinstance(module, LoraLayer) and adapter in module.lora_A
    }


def write(tensors: dict[str, torch.Tensor], path: Path) -> Path:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def test_official_layout_covers_every_block_module() -> None:
    transformer = make_transformer()
    groups = {g for g in kohya_targets(transformer) if "_blocks_" in g}
    names = {g.split("_", 5)[-1] for g in groups}
    assert names == set(KOHYA_BLOCK_TARGETS["double_blocks"]) | set(KOHYA_BLOCK_TARGETS["single_blocks"])
    assert len(groups) == 13  # 10 double-block + 3 single-block modules


def test_every_key_placed_and_output_changes(tmp_path: Path) -> None:
    transformer = make_transformer()
    before = forward(transformer)
    lora = official_lora(transformer)
    report = load_megastyle_lora(transformer, write(lora, tmp_path / "megastyle_flux.safetensors"))
    assert report.all_placed, report.unplaced
    assert sorted(report.placed) == sorted(lora)
    assert len(report.converted_by) == 13
    # diffusers' converter takes what it can; its FLUX.1-dev-sized linear1 split cannot fit the tiny model.
    assert report.converted_by["lora_unet_single_blocks_0_linear1"] == "megastyle"
    assert report.converted_by["lora_unet_double_blocks_0_img_attn_qkv"] == "diffusers"
    assert len(report.modules) == 20
    after = forward(transformer)
    assert not torch.allclose(before, after, atol=1e-4)


def test_merged_deltas_equal_up_down_alpha_over_rank(tmp_path: Path) -> None:
    transformer = make_transformer()
    lora = official_lora(transformer)
    load_megastyle_lora(transformer, write(lora, tmp_path / "lora.safetensors"))
    merged = deltas(transformer)
    linears = linear_modules(transformer)
    checked = 0
    for group, pieces in kohya_targets(transformer).items():
        if f"{group}.lora_up.weight" not in lora:
            continue
        full = lora[f"{group}.lora_up.weight"] @ lora[f"{group}.lora_down.weight"] * (ALPHA / RANK)
        rows = torch.split(full, [linears[m].out_features for m in pieces])
        for module, expected in zip(pieces, rows, strict=True):
            torch.testing.assert_close(merged[module], expected, rtol=1e-5, atol=1e-6)
            checked += 1
    assert checked == len(merged) == 20


def test_unplaceable_keys_are_reported_and_the_rest_load(tmp_path: Path) -> None:
    transformer = make_transformer()
    lora = official_lora(transformer)
    bad = {
        "lora_unet_double_blocks_0_img_attn_norm.lora_down.weight": torch.randn(RANK, 32),
        "lora_unet_double_blocks_7_img_mlp_0.lora_down.weight": torch.randn(RANK, 32),
        "lora_unet_double_blocks_7_img_mlp_0.lora_up.weight": torch.randn(128, RANK),
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.randn(RANK, 32),
        "lora_unet_single_blocks_0_linear9.alpha": torch.tensor(1.0),
    }
    wrong_shape = {"lora_unet_single_blocks_0_linear2.lora_up.weight": torch.randn(31, RANK)}
    report = load_megastyle_lora(
        transformer, write({**lora, **bad, **wrong_shape}, tmp_path / "mixed.safetensors")
    )
    linear2 = {k for k in lora if k.startswith("lora_unet_single_blocks_0_linear2")}
    assert set(report.unplaced) == set(bad) | linear2
    assert "img_attn_norm" in report.unplaced["lora_unet_double_blocks_0_img_attn_norm.lora_down.weight"]
    assert "block 7 does not exist" in report.unplaced["lora_unet_double_blocks_7_img_mlp_0.lora_up.weight"]
    assert "shape mismatch" in report.unplaced["lora_unet_single_blocks_0_linear2.lora_up.weight"]
    assert set(report.placed) == set(lora) - linear2
    with pytest.raises(ValueError, match="could not be placed"):
        report.raise_if_unplaced()


def test_kohya_export_reloads_to_the_same_output(tmp_path: Path) -> None:
    source = make_transformer()
    original = official_lora(source)
    load_megastyle_lora(source, write(original, tmp_path / "official.safetensors"))
    exported = save_lora(source, tmp_path / "export.safetensors", format="kohya")
    tensors = load_file(str(exported))
    assert set(tensors) == set(original)  # the same 13 × (down, up, alpha) official keys
    # Three rank-4 LoRAs (diffusers split the fused qkv into shared-down copies) → one rank-12 block-diagonal.
    assert tensors["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"].shape == (3 * RANK, 32)
    up = tensors["lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight"]
    assert up.shape == (96, 3 * RANK) and bool((up[:32, RANK:] == 0).all())
    target = make_transformer()
    report = load_megastyle_lora(target, exported)
    assert report.all_placed
    torch.testing.assert_close(forward(target), forward(source), rtol=1e-5, atol=1e-6)
    for name, delta in deltas(source).items():
        torch.testing.assert_close(deltas(target)[name], delta, rtol=1e-5, atol=1e-6)
    # The block-diagonal layout splits back into the original per-piece ranks.
    assert target.transformer_blocks[0].attn.to_q.r["megastyle"] == RANK


def test_export_handles_unequal_scales_and_missing_pieces(tmp_path: Path) -> None:
    from peft import LoraConfig

    source = make_transformer()
    config = LoraConfig(
        r=RANK,
        lora_alpha=8,
        target_modules=["attn.to_q", "attn.to_v", "proj_out"],
        alpha_pattern={"single_transformer_blocks.0.attn.to_v": 2},
        rank_pattern={"transformer_blocks.0.attn.to_v": 2},
        init_lora_weights="gaussian",
    )
    source.add_adapter(config, adapter_name="megastyle")
    torch.manual_seed(3)
    for name, param in source.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.1)
    path = save_lora(source, tmp_path / "partial.safetensors", format="kohya")
    target = make_transformer()
    report = load_megastyle_lora(target, path)
    assert report.all_placed
    torch.testing.assert_close(forward(target), forward(source), rtol=1e-5, atol=1e-6)
    merged_source, merged_target = deltas(source), deltas(target)
    for name, delta in merged_source.items():
        torch.testing.assert_close(merged_target[name], delta, rtol=1e-5, atol=1e-6)
    # to_k had no LoRA: its rows of the fused qkv are zero, so its loaded delta is zero.
    assert float(merged_target["transformer_blocks.0.attn.to_k"].detach().abs().max()) == 0.0


def test_scale_multiplies_the_delta(tmp_path: Path) -> None:
    path = write(official_lora(make_transformer()), tmp_path / "lora.safetensors")
    full, half = make_transformer(), make_transformer()
    load_megastyle_lora(full, path)
    load_megastyle_lora(half, path, scale=0.5)
    for name, delta in deltas(full).items():
        torch.testing.assert_close(deltas(half)[name], 0.5 * delta)


def test_our_conversion_agrees_with_diffusers_where_both_apply() -> None:
    from megastyle.transfer.lora import convert_kohya_state_dict, lora_config_kwargs

    transformer = make_transformer()
    lora = official_lora(transformer)
    merged = {}
    for use_diffusers in (True, False):
        target = make_transformer()
        state, shapes, report = convert_kohya_state_dict(lora, target, use_diffusers=use_diffusers)
        assert report.all_placed
        expected = {"megastyle"} if not use_diffusers else {"diffusers", "megastyle"}
        assert set(report.converted_by.values()) == expected
        target.load_lora_adapter(
            state, prefix=None, adapter_name="megastyle", metadata=lora_config_kwargs(shapes)
        )
        merged[use_diffusers] = deltas(target)
    for name, delta in merged[True].items():
        torch.testing.assert_close(merged[False][name], delta, rtol=1e-5, atol=1e-6)
