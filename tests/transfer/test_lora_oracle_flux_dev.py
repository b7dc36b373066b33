"""An independent oracle for the official LoRA's placement on FLUX.1-dev: every key of all 57 blocks.

The expected layout is written out here by hand from the FLUX.1-dev architecture (hidden 3072, MLP
12288, 19 double and 38 single blocks) and the BFL/diffusers module names, not taken from the code's
mapping table: the fused ``qkv`` of a double block is q, k, v in row order, and a single block's
``linear1`` is q, k, v and then the MLP input, row ranges 0:3072, 3072:6144, 6144:9216, 9216:21504.
The model is built on the meta device (shapes only), so the test costs no memory.
"""

from __future__ import annotations

import pytest
import torch

from megastyle.transfer.kohya import convert_kohya_state_dict

HIDDEN, MLP, DOUBLE, SINGLE, RANK = 3072, 12288, 19, 38, 4


def _span(start: int, size: int) -> tuple[int, int]:
    return start, start + size


# kohya module in a block → [(diffusers module, rows of lora_up)], and the module's input width.
DOUBLE_LAYOUT: dict[str, tuple[list[tuple[str, tuple[int, int]]], int]] = {
    "img_mod_lin": ([("norm1.linear", _span(0, 6 * HIDDEN))], HIDDEN),
    "txt_mod_lin": ([("norm1_context.linear", _span(0, 6 * HIDDEN))], HIDDEN),
    "img_attn_qkv": (
        [("attn.to_q", _span(0, HIDDEN)), ("attn.to_k", _span(HIDDEN, HIDDEN)), ("attn.to_v", _span(2 * HIDDEN, HIDDEN))],
        HIDDEN,
    ),
    "txt_attn_qkv": (
        [("attn.add_q_proj", _span(0, HIDDEN)), ("attn.add_k_proj", _span(HIDDEN, HIDDEN)),
         ("attn.add_v_proj", _span(2 * HIDDEN, HIDDEN))],
        HIDDEN,
    ),
    "img_attn_proj": ([("attn.to_out.0", _span(0, HIDDEN))], HIDDEN),
    "txt_attn_proj": ([("attn.to_add_out", _span(0, HIDDEN))], HIDDEN),
    "img_mlp_0": ([("ff.net.0.proj", _span(0, MLP))], HIDDEN),
    "img_mlp_2": ([("ff.net.2", _span(0, HIDDEN))], MLP),
    "txt_mlp_0": ([("ff_context.net.0.proj", _span(0, MLP))], HIDDEN),
    "txt_mlp_2": ([("ff_context.net.2", _span(0, HIDDEN))], MLP),
}  # fmt: skip
SINGLE_LAYOUT: dict[str, tuple[list[tuple[str, tuple[int, int]]], int]] = {
    "modulation_lin": ([("norm.linear", _span(0, 3 * HIDDEN))], HIDDEN),
    "linear1": (
        [("attn.to_q", _span(0, HIDDEN)), ("attn.to_k", _span(HIDDEN, HIDDEN)), ("attn.to_v", _span(2 * HIDDEN, HIDDEN)),
         ("proj_mlp", _span(3 * HIDDEN, MLP))],
        HIDDEN,
    ),
    "linear2": ([("proj_out", _span(0, HIDDEN))], HIDDEN + MLP),
}  # fmt: skip


@pytest.fixture(scope="module")
def flux_dev():
    """FLUX.1-dev's transformer (its published config) on the meta device."""
    from diffusers import FluxTransformer2DModel

    with torch.device("meta"):
        return FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=DOUBLE, num_single_layers=SINGLE, attention_head_dim=128,
            num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
            axes_dims_rope=(16, 56, 56),
        )  # fmt: skip


def _official_file() -> tuple[dict[str, torch.Tensor], dict[str, list[tuple[str, tuple[int, int]]]]]:
    """The official file's keys (rank 4, alpha = rank), each ``lora_up`` row holding its own index."""
    state: dict[str, torch.Tensor] = {}
    expected: dict[str, list[tuple[str, tuple[int, int]]]] = {}
    generator = torch.Generator().manual_seed(0)
    for kind, blocks, layout, diffusers_blocks in (
        ("double_blocks", DOUBLE, DOUBLE_LAYOUT, "transformer_blocks"),
        ("single_blocks", SINGLE, SINGLE_LAYOUT, "single_transformer_blocks"),
    ):
        for index in range(blocks):
            for name, (pieces, in_features) in layout.items():
                group = f"lora_unet_{kind}_{index}_{name}"
                rows = pieces[-1][1][1]
                state[f"{group}.lora_down.weight"] = torch.randn(RANK, in_features, generator=generator)
                # Row r of lora_up is (r, r + 0.25, r + 0.5, r + 0.75): a row tells where it came from.
                state[f"{group}.lora_up.weight"] = (
                    torch.arange(rows, dtype=torch.float32)[:, None] + torch.arange(RANK) / RANK
                )
                state[f"{group}.alpha"] = torch.tensor(float(RANK))
                expected[group] = [(f"{diffusers_blocks}.{index}.{module}", span) for module, span in pieces]
    return state, expected


@pytest.mark.parametrize("use_diffusers", [True, False], ids=["diffusers' converter", "megastyle's split"])
def test_every_official_key_of_all_57_blocks_lands_on_its_module_and_rows(
    flux_dev, use_diffusers: bool
) -> None:
    state, expected = _official_file()
    assert len(expected) == DOUBLE * len(DOUBLE_LAYOUT) + SINGLE * len(SINGLE_LAYOUT) == 304
    # FLUX.1-dev's sizes let diffusers' own kohya converter run; other sizes (and this second case) use ours.
    peft_state, shapes, report = convert_kohya_state_dict(state, flux_dev, use_diffusers=use_diffusers)
    assert set(report.converted_by.values()) == {"diffusers" if use_diffusers else "megastyle"}
    assert report.unplaced == {} and len(report.placed) == 3 * len(expected)
    assert set(report.modules) == {module for pieces in expected.values() for module, _ in pieces}
    for group, pieces in expected.items():
        down, up = state[f"{group}.lora_down.weight"], state[f"{group}.lora_up.weight"]
        for module, (start, stop) in pieces:
            a, b = peft_state[f"{module}.lora_A.weight"], peft_state[f"{module}.lora_B.weight"]
            assert torch.equal(b, up[start:stop]), f"{group} rows {start}:{stop} did not land on {module}"
            assert torch.allclose(a, down), f"{group}: {module} got another down projection"
            rank, alpha = shapes[module]
            assert rank == RANK and alpha / rank == pytest.approx(1.0)


def test_the_modules_receiving_the_lora_have_the_official_shapes(flux_dev) -> None:
    from megastyle.transfer.kohya import linear_modules

    linears = linear_modules(flux_dev)
    _, expected = _official_file()
    for group, pieces in expected.items():
        in_features = (DOUBLE_LAYOUT | SINGLE_LAYOUT)[_name(group)][1]
        for module, (start, stop) in pieces:
            assert (linears[module].out_features, linears[module].in_features) == (
                stop - start,
                in_features,
            ), module


def _name(group: str) -> str:
    """The kohya module name of a group (``lora_unet_single_blocks_7_linear1`` → ``linear1``)."""
    parts = group.split("_")
    return "_".join(parts[5:])
