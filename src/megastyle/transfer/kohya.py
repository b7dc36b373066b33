"""The kohya (BFL-FLUX) LoRA key format and its conversion to diffusers ``FluxTransformer2DModel`` modules.

Each kohya module maps to one or more diffusers linears (``KOHYA_BLOCK_TARGETS``); fused ones are split along
the output rows of ``lora_up`` (see ``megastyle.transfer.lora`` for the whole load/export story).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import torch

logger = logging.getLogger("megastyle.transfer.lora")

DEFAULT_ADAPTER = "megastyle"

# kohya (BFL) module name inside a block → diffusers module names, in row order of the fused weight.
KOHYA_BLOCK_TARGETS: dict[str, dict[str, tuple[str, ...]]] = {
    "double_blocks": {
        "img_mod_lin": ("norm1.linear",),
        "txt_mod_lin": ("norm1_context.linear",),
        "img_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
        "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
        "img_attn_proj": ("attn.to_out.0",),
        "txt_attn_proj": ("attn.to_add_out",),
        "img_mlp_0": ("ff.net.0.proj",),
        "img_mlp_2": ("ff.net.2",),
        "txt_mlp_0": ("ff_context.net.0.proj",),
        "txt_mlp_2": ("ff_context.net.2",),
    },
    "single_blocks": {
        "modulation_lin": ("norm.linear",),
        "linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"),
        "linear2": ("proj_out",),
    },
}
_DIFFUSERS_BLOCKS = {"double_blocks": "transformer_blocks", "single_blocks": "single_transformer_blocks"}
# Modules outside the blocks (not in the official file; kept so that exports of wider LoRAs stay loadable).
KOHYA_GLOBAL_TARGETS: dict[str, str] = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in_in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in_out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in_in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in_out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in_in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in_out_layer": "time_text_embed.guidance_embedder.linear_2",
    "final_layer_linear": "proj_out",
}
_KEY_RE = re.compile(r"^(lora_unet_[A-Za-z0-9_]+)\.(lora_down\.weight|lora_up\.weight|alpha)$")
_BLOCK_RE = re.compile(r"^lora_unet_(double_blocks|single_blocks)_(\d+)_([A-Za-z0-9_]+)$")


@dataclass
class LoraLoadReport:
    """What a LoRA load did: source keys placed, keys not placed (with the reason), converter per group.

    ``converted_by`` maps each placed kohya group (or module, for diffusers-format files) to "diffusers"
    (diffusers' kohya converter), "megastyle" (ours) or "diffusers-format" (no conversion needed);
    ``modules`` lists the diffusers modules that received the adapter.
    """

    placed: list[str] = field(default_factory=list)
    unplaced: dict[str, str] = field(default_factory=dict)
    converted_by: dict[str, str] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)
    adapter_name: str = DEFAULT_ADAPTER

    @property
    def all_placed(self) -> bool:
        """True when every key of the file found a module."""
        return not self.unplaced

    def raise_if_unplaced(self) -> None:
        """Raise ValueError listing every key that was not placed."""
        if self.unplaced:
            lines = "\n".join(f"  {key}: {why}" for key, why in sorted(self.unplaced.items()))
            raise ValueError(f"{len(self.unplaced)} LoRA keys could not be placed:\n{lines}")


def transformer_of(pipeline_or_transformer: Any) -> Any:
    """The transformer of a pipeline, or the argument itself when it is one."""
    return getattr(pipeline_or_transformer, "transformer", None) or pipeline_or_transformer


def linear_modules(transformer: Any) -> dict[str, torch.nn.Linear]:
    """Name → base ``nn.Linear`` of every linear layer, seeing through injected LoRA wrappers."""
    out: dict[str, torch.nn.Linear] = {}
    for name, module in transformer.named_modules():
        if not isinstance(module, torch.nn.Linear) or re.search(
            r"\.lora_(A|B|embedding_A|embedding_B)\.", name
        ):
            continue
        out[name.removesuffix(".base_layer")] = module
    return out


def kohya_targets(transformer: Any) -> dict[str, tuple[str, ...]]:
    """Every kohya group name this transformer has → its diffusers module names (row order)."""
    config = transformer.config
    counts = {"double_blocks": config.num_layers, "single_blocks": config.num_single_layers}
    targets: dict[str, tuple[str, ...]] = {}
    for kind, names in KOHYA_BLOCK_TARGETS.items():
        for index in range(counts[kind]):
            prefix = f"{_DIFFUSERS_BLOCKS[kind]}.{index}"
            for name, modules in names.items():
                targets[f"lora_unet_{kind}_{index}_{name}"] = tuple(f"{prefix}.{m}" for m in modules)
    modules = linear_modules(transformer)
    for name, module in KOHYA_GLOBAL_TARGETS.items():
        if module in modules:
            targets[f"lora_unet_{name}"] = (module,)
    return targets


def _why_unknown(group: str, transformer: Any) -> str:
    match = _BLOCK_RE.match(group)
    if match is None:
        return "unknown kohya module name"
    kind, index, name = match.group(1), int(match.group(2)), match.group(3)
    if name not in KOHYA_BLOCK_TARGETS[kind]:
        return f"unknown {kind} module {name!r}"
    count = transformer.config.num_layers if kind == "double_blocks" else transformer.config.num_single_layers
    return f"block {index} does not exist (the model has {count} {kind})"


def _diffusers_convert(group_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers

    converted = _convert_kohya_flux_lora_to_diffusers(dict(group_sd))
    return {k.removeprefix("transformer."): v for k, v in converted.items()}


def _split_exact(
    down: torch.Tensor, up: torch.Tensor, scale: float, pieces: list[str], dims: list[int]
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[int, float]]]:
    """Our split of a fused LoRA into per-module (A, B) with (rank, alpha); block-diagonal ups are chunked."""
    rank, n = down.shape[0], len(pieces)
    rows = torch.split(up, dims, dim=0)
    block = rank // n if rank % n == 0 else 0
    sparse = block > 0 and all(
        bool((rows[j][:, k * block : (k + 1) * block] == 0).all())
        for j in range(n)
        for k in range(n)
        if j != k
    )
    state: dict[str, torch.Tensor] = {}
    shapes: dict[str, tuple[int, float]] = {}
    for j, module in enumerate(pieces):
        if sparse and n > 1:
            a, b = down[j * block : (j + 1) * block], rows[j][:, j * block : (j + 1) * block]
        else:
            a, b = down, rows[j]  # the shared down projection, this piece's rows of up
        state[f"{module}.lora_A.weight"] = a.contiguous()
        state[f"{module}.lora_B.weight"] = b.contiguous()
        shapes[module] = (a.shape[0], scale * a.shape[0])  # alpha keeps scale = alpha / rank
    return state, shapes


def _problem(
    group: str, group_sd: dict[str, torch.Tensor], transformer: Any, linears: dict[str, Any]
) -> str | None:
    """Why a kohya group cannot be placed, or None."""
    targets = kohya_targets(transformer)
    down, up = group_sd.get(f"{group}.lora_down.weight"), group_sd.get(f"{group}.lora_up.weight")
    if group not in targets:
        return _why_unknown(group, transformer)
    if down is None or up is None:
        return "needs both lora_down.weight and lora_up.weight"
    rows = sum(linears[m].out_features for m in targets[group])
    in_features = linears[targets[group][0]].in_features
    if down.ndim != 2 or up.ndim != 2 or down.shape[1] != in_features or up.shape != (rows, down.shape[0]):
        return (
            f"shape mismatch: down {tuple(down.shape)}, up {tuple(up.shape)}; "
            f"the model needs (r, {in_features}) and ({rows}, r)"
        )
    return None


def convert_kohya_state_dict(
    state_dict: dict[str, torch.Tensor], transformer: Any, *, use_diffusers: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, tuple[int, float]], LoraLoadReport]:
    """Kohya keys → peft state dict (module.lora_A/B.weight), per-module (rank, alpha) and the report."""
    report = LoraLoadReport()
    targets, linears = kohya_targets(transformer), linear_modules(transformer)
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        match = _KEY_RE.match(key)
        if match is None:
            report.unplaced[key] = (
                "not a kohya transformer LoRA key (lora_unet_*.lora_down/lora_up.weight/alpha)"
            )
        else:
            groups.setdefault(match.group(1), {})[key] = value
    peft_state: dict[str, torch.Tensor] = {}
    shapes: dict[str, tuple[int, float]] = {}
    for group, group_sd in groups.items():
        reason = _problem(group, group_sd, transformer, linears)
        if reason is not None:
            report.unplaced.update(dict.fromkeys(group_sd, reason))
            continue
        pieces = list(targets[group])
        down, up = group_sd[f"{group}.lora_down.weight"], group_sd[f"{group}.lora_up.weight"]
        alpha_t = group_sd.get(f"{group}.alpha")
        alpha = float(alpha_t.reshape(-1)[0]) if alpha_t is not None else float(down.shape[0])
        converted, by = None, "megastyle"
        if use_diffusers and not group.startswith("lora_unet_final_layer"):
            try:
                candidate = _diffusers_convert(group_sd)
                expected = {f"{m}.lora_{ab}.weight" for m in pieces for ab in "AB"}
                if set(candidate) == expected and all(
                    candidate[f"{m}.lora_B.weight"].shape[0] == linears[m].out_features for m in pieces
                ):
                    converted, by = candidate, "diffusers"
            except Exception as exc:  # e.g. its hard-coded FLUX.1-dev linear1 sizes: use ours
                logger.debug("diffusers' kohya converter cannot take %s: %r", group, exc)
        if converted is not None:
            # diffusers folds alpha / rank into lora_A: the peft alpha then equals the rank (scale 1).
            group_shapes = {m: (converted[f"{m}.lora_B.weight"].shape[1],) * 2 for m in pieces}
        else:
            dims = [linears[m].out_features for m in pieces]
            converted, group_shapes = _split_exact(down, up, alpha / down.shape[0], pieces, dims)
        peft_state.update(converted)
        shapes.update({m: (int(r), float(a)) for m, (r, a) in group_shapes.items()})
        report.placed.extend(sorted(group_sd))
        report.converted_by[group] = by
        report.modules.extend(pieces)
    return peft_state, shapes, report


def lora_config_kwargs(shapes: dict[str, tuple[int, float]]) -> dict[str, Any]:
    """``LoraConfig`` kwargs targeting exactly these modules, each with its own rank and alpha."""
    if not shapes:
        raise ValueError("no LoRA module to configure")
    first_rank, first_alpha = next(iter(shapes.values()))
    return {
        "r": int(first_rank),
        "lora_alpha": float(first_alpha),
        "target_modules": sorted(shapes),
        # '^' + the escaped full name: peft matches patterns as regex suffixes, so this pins one module.
        "rank_pattern": {f"^{re.escape(m)}": int(r) for m, (r, _) in shapes.items()},
        "alpha_pattern": {f"^{re.escape(m)}": float(a) for m, (_, a) in shapes.items()},
    }
