"""The kohya conversion's edges: how a fused LoRA is split (compact when its up is block-diagonal, shared down
otherwise), the reason given for every key it cannot place, and the wrappers it sees through."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import pytest
import torch
from diffusers import FluxTransformer2DModel
from peft import LoraConfig, inject_adapter_in_model

from megastyle.transfer.kohya import (
    LoraLoadReport,
    convert_kohya_state_dict,
    kohya_targets,
    linear_modules,
    lora_config_kwargs,
    transformer_of,
)

QKV = "lora_unet_double_blocks_0_img_attn_qkv"
PIECES = (
    "transformer_blocks.0.attn.to_q",
    "transformer_blocks.0.attn.to_k",
    "transformer_blocks.0.attn.to_v",
)


@pytest.fixture(scope="module")
def transformer() -> FluxTransformer2DModel:
    # One double and two single blocks, so the two block counts differ in the messages.
    torch.manual_seed(0)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(2, 2, 4),
    )  # fmt: skip


def _delta(state: dict, shapes: dict, module: str) -> torch.Tensor:
    rank, alpha = shapes[module]
    return state[f"{module}.lora_B.weight"] @ state[f"{module}.lora_A.weight"] * (alpha / rank)


def _qkv(rank: int, up: torch.Tensor, alpha: float | None = 2.0) -> dict[str, torch.Tensor]:
    down = torch.randn(rank, 16, generator=torch.Generator().manual_seed(rank))
    lora = {f"{QKV}.lora_down.weight": down, f"{QKV}.lora_up.weight": up}
    return lora | ({} if alpha is None else {f"{QKV}.alpha": torch.tensor(alpha)})


def _expected(lora: dict[str, torch.Tensor], alpha: float) -> list[torch.Tensor]:
    down, up = lora[f"{QKV}.lora_down.weight"], lora[f"{QKV}.lora_up.weight"]
    return list((up @ down * (alpha / down.shape[0])).split(16, dim=0))  # q, k, v rows of the fused delta


@pytest.mark.parametrize("block", [1, 2])
def test_a_block_diagonal_up_splits_into_compact_per_module_loras(transformer, block: int) -> None:
    # kohya-ss exports a split LoRA this way: piece j uses only down rows j·b:(j+1)·b.
    rank = 3 * block
    up = torch.zeros(48, rank)
    for j in range(3):
        up[16 * j : 16 * (j + 1), j * block : (j + 1) * block] = torch.randn(16, block)
    lora = _qkv(rank, up)
    state, shapes, report = convert_kohya_state_dict(lora, transformer, use_diffusers=False)
    assert report.converted_by == {QKV: "megastyle"}
    down = lora[f"{QKV}.lora_down.weight"]
    for j, (module, expected) in enumerate(zip(PIECES, _expected(lora, 2.0), strict=True)):
        assert shapes[module] == (block, pytest.approx(2.0 / rank * block))  # alpha / rank kept per piece
        assert torch.equal(state[f"{module}.lora_A.weight"], down[j * block : (j + 1) * block])
        torch.testing.assert_close(_delta(state, shapes, module), expected)


@pytest.mark.parametrize("rank", [4, 6])
def test_a_dense_up_keeps_the_shared_down_even_where_its_first_columns_look_block_diagonal(
    transformer, rank
) -> None:
    up = torch.randn(48, rank, generator=torch.Generator().manual_seed(7))
    if rank == 4:  # not divisible by 3: zeros off the 1-wide diagonal blocks must not make it "compact"
        for j in range(3):
            for k in range(3):
                if j != k:
                    up[16 * j : 16 * (j + 1), k] = 0
    lora = _qkv(rank, up)
    state, shapes, _ = convert_kohya_state_dict(lora, transformer, use_diffusers=False)
    for module, expected in zip(PIECES, _expected(lora, 2.0), strict=True):
        assert shapes[module][0] == rank
        torch.testing.assert_close(_delta(state, shapes, module), expected)


def test_without_alpha_the_scale_is_one(transformer) -> None:
    lora = _qkv(4, torch.randn(48, 4, generator=torch.Generator().manual_seed(3)), alpha=None)
    state, shapes, _ = convert_kohya_state_dict(lora, transformer, use_diffusers=False)
    assert {shapes[m] for m in PIECES} == {(4, 4.0)}
    for module, expected in zip(PIECES, _expected(lora, 4.0), strict=True):
        torch.testing.assert_close(_delta(state, shapes, module), expected)


def test_every_key_that_cannot_be_placed_gets_its_own_reason(transformer) -> None:
    r = 2
    lora = {
        "text_encoder.layer.weight": torch.zeros(1),
        "lora_unet_somewhere_else.lora_down.weight": torch.zeros(r, 16),
        "lora_unet_double_blocks_0_img_attn_mystery.alpha": torch.tensor(1.0),
        "lora_unet_double_blocks_3_img_mlp_0.alpha": torch.tensor(1.0),
        "lora_unet_single_blocks_5_linear2.alpha": torch.tensor(1.0),
        "lora_unet_double_blocks_0_img_mlp_2.lora_up.weight": torch.zeros(32, r),
        "lora_unet_double_blocks_0_img_attn_proj.lora_down.weight": torch.zeros(r, 17),
        "lora_unet_double_blocks_0_img_attn_proj.lora_up.weight": torch.zeros(16, r),
        "lora_unet_double_blocks_0_txt_attn_proj.lora_down.weight": torch.zeros(r, 16, 1),
        "lora_unet_double_blocks_0_txt_attn_proj.lora_up.weight": torch.zeros(16, r),
    }
    _, _, report = convert_kohya_state_dict(lora, transformer)
    mismatch = "shape mismatch: down ({}), up (16, 2); the model needs (r, 16) and (16, r)"
    assert report.unplaced == {
        "text_encoder.layer.weight": "not a kohya transformer LoRA key (lora_unet_*.lora_down/lora_up.weight/alpha)",
        "lora_unet_somewhere_else.lora_down.weight": "unknown kohya module name",
        "lora_unet_double_blocks_0_img_attn_mystery.alpha": "unknown double_blocks module 'img_attn_mystery'",
        "lora_unet_double_blocks_3_img_mlp_0.alpha": "block 3 does not exist (the model has 1 double_blocks)",
        "lora_unet_single_blocks_5_linear2.alpha": "block 5 does not exist (the model has 2 single_blocks)",
        "lora_unet_double_blocks_0_img_mlp_2.lora_up.weight": "needs both lora_down.weight and lora_up.weight",
        "lora_unet_double_blocks_0_img_attn_proj.lora_down.weight": mismatch.format("2, 17"),
        "lora_unet_double_blocks_0_img_attn_proj.lora_up.weight": mismatch.format("2, 17"),
        "lora_unet_double_blocks_0_txt_attn_proj.lora_down.weight": mismatch.format("2, 16, 1"),
        "lora_unet_double_blocks_0_txt_attn_proj.lora_up.weight": mismatch.format("2, 16, 1"),
    }
    assert report.placed == [] and not report.all_placed
    with pytest.raises(ValueError) as raised:
        report.raise_if_unplaced()
    lines = str(raised.value).splitlines()
    assert lines[0] == "10 LoRA keys could not be placed:"
    assert lines[1:] == [f"  {key}: {why}" for key, why in sorted(report.unplaced.items())]
    LoraLoadReport().raise_if_unplaced()  # nothing unplaced: no error


def test_a_group_diffusers_cannot_convert_falls_back_with_a_debug_line(transformer, caplog) -> None:
    # diffusers' converter splits linear1 at FLUX.1-dev's hard-coded 3072 rows; this model's are smaller.
    group = "lora_unet_single_blocks_1_linear1"
    linears = linear_modules(transformer)
    rows = sum(linears[m].out_features for m in kohya_targets(transformer)[group])
    lora = {f"{group}.lora_down.weight": torch.randn(2, 16), f"{group}.lora_up.weight": torch.randn(rows, 2)}
    with caplog.at_level(logging.DEBUG, logger="megastyle.transfer.lora"):
        _, _, report = convert_kohya_state_dict(lora, transformer)
    assert report.converted_by == {group: "megastyle"}
    lines = [r.getMessage() for r in caplog.records if r.name == "megastyle.transfer.lora"]
    assert len(lines) == 1 and lines[0].startswith(f"diffusers' kohya converter cannot take {group}: ")
    assert re.fullmatch(r"[A-Za-z]+Error\(.*\)", lines[0].split(": ", 1)[1])  # the cause: its type and text


def test_linear_modules_see_through_an_injected_lora() -> None:
    model = torch.nn.Sequential()
    model.add_module("proj", torch.nn.Linear(4, 4))
    model.add_module("head", torch.nn.Linear(4, 2))
    before = linear_modules(model)
    inject_adapter_in_model(LoraConfig(r=2, target_modules=["proj"]), model)
    after = linear_modules(model)
    assert sorted(after) == sorted(before) == ["head", "proj"]
    assert after["proj"] is model.proj.base_layer and after["head"] is model.head


def test_transformer_of_takes_a_pipelines_transformer_or_the_transformer_itself() -> None:
    inner = torch.nn.Linear(1, 1)
    assert transformer_of(SimpleNamespace(transformer=inner)) is inner
    assert transformer_of(inner) is inner


def test_no_module_means_no_lora_config() -> None:
    with pytest.raises(ValueError, match=r"^no LoRA module to configure$"):
        lora_config_kwargs({})
