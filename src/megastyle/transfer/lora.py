"""MegaStyle-FLUX LoRAs on diffusers: load the official kohya-format file, save ours as diffusers or kohya.

The official ``megastyle_flux.safetensors`` names BFL-FLUX modules (``lora_unet_double_blocks_0_img_attn_qkv
.lora_down.weight`` …). Each kohya module maps to one or more diffusers ``FluxTransformer2DModel`` linears
(``KOHYA_BLOCK_TARGETS``); fused ones (``img_attn_qkv`` → to_q/to_k/to_v, single ``linear1`` → to_q/to_k/to_v/
proj_mlp) are split along the output rows of ``lora_up``. Every group first goes through diffusers' own kohya
Flux converter (the one ``FluxPipeline.load_lora_weights`` uses); where that fails or yields other shapes than
the model's (it hard-codes FLUX.1-dev's ``linear1`` sizes) our conversion takes over. Both are exact: the
merged delta of each piece equals its rows of ``up @ down · alpha / rank``. Keys that fit nowhere (unknown
names, block indices or shapes) are returned in the report, never dropped silently.

Kohya export is the inverse. A fused module made of n separate LoRAs (A_j: r_j × in, B_j: d_j × r_j, scale s_j)
needs rank R = Σ r_j: ``down = cat(A_j)`` (R × in) and ``up`` block-diagonal (row block j × column block j =
B_j, zeros elsewhere), so ``up @ down`` stacks the n deltas exactly. ``alpha = s · R`` when all s_j equal s,
otherwise each block is pre-scaled by s_j and ``alpha = R``. A missing piece leaves its rows zero. Reloading
such a file detects the block-diagonal layout and gives back the n rank-r_j LoRAs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

logger = logging.getLogger(__name__)

DEFAULT_ADAPTER = "megastyle"
_ADAPTER_METADATA_KEY = "lora_adapter_metadata"  # diffusers' LORA_ADAPTER_METADATA_KEY

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


def _transformer_of(pipeline_or_transformer: Any) -> Any:
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
                logger.debug("diffusers' kohya converter cannot take %s: %s", group, exc)
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


def read_lora_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a safetensors LoRA file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        return {key: handle.get_tensor(key) for key in handle.keys()}, metadata  # noqa: SIM118


def _diffusers_format(
    state_dict: dict[str, torch.Tensor], metadata: dict[str, str], transformer: Any
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, LoraLoadReport]:
    report = LoraLoadReport()
    linears = linear_modules(transformer)
    keep: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        name = key.removeprefix("transformer.")
        module, _, tail = name.rpartition(".lora_")
        if not tail or tail not in ("A.weight", "B.weight"):
            report.unplaced[key] = "not a diffusers/peft LoRA weight (…lora_A.weight / …lora_B.weight)"
        elif module not in linears:
            report.unplaced[key] = f"the transformer has no linear module {module!r}"
        else:
            keep[name] = value
            report.placed.append(key)
            report.converted_by[module] = "diffusers-format"
    report.modules = sorted(report.converted_by)
    config = None
    if _ADAPTER_METADATA_KEY in metadata:
        raw = json.loads(metadata[_ADAPTER_METADATA_KEY])
        config = {
            k.removeprefix("transformer."): v for k, v in raw.items() if k.startswith("transformer.")
        } or raw
    return keep, config, report


def load_megastyle_lora(
    pipeline_or_transformer: Any,
    path: str | os.PathLike[str],
    adapter_name: str = DEFAULT_ADAPTER,
    scale: float = 1.0,
) -> LoraLoadReport:
    """Load a kohya (official) or diffusers-format LoRA into the FLUX transformer as adapter ``adapter_name``."""
    transformer = _transformer_of(pipeline_or_transformer)
    state_dict, metadata = read_lora_file(path)
    if any(".lora_down.weight" in key for key in state_dict):
        peft_state, shapes, report = convert_kohya_state_dict(state_dict, transformer)
        config: dict[str, Any] | None = lora_config_kwargs(shapes) if shapes else None
    else:
        peft_state, config, report = _diffusers_format(state_dict, metadata, transformer)
        if config is None and peft_state:  # no metadata: the diffusers/peft convention alpha = rank
            ranks = {m: (int(peft_state[f"{m}.lora_B.weight"].shape[1]),) * 2 for m in report.modules}
            config = lora_config_kwargs({m: (r, float(a)) for m, (r, a) in ranks.items()})
    report.adapter_name = adapter_name
    if not peft_state:
        raise ValueError(f"{path}: no LoRA key fits the transformer: {report.unplaced}")
    # diffusers' own adapter loader (inject + set_peft_model_state_dict), with an explicit config.
    transformer.load_lora_adapter(peft_state, prefix=None, adapter_name=adapter_name, metadata=config)
    _check_injected(transformer, report)
    if scale != 1.0:
        set_lora_scale(transformer, adapter_name, scale)
    for key, why in report.unplaced.items():
        logger.warning("LoRA %s: key %s not placed: %s", path, key, why)
    return report


def _check_injected(transformer: Any, report: LoraLoadReport) -> None:
    from peft.tuners.lora import LoraLayer

    modules = dict(transformer.named_modules())
    missing = [
        m
        for m in report.modules
        if not isinstance(modules.get(m), LoraLayer) or report.adapter_name not in modules[m].lora_A
    ]
    if missing:
        raise RuntimeError(f"the LoRA loader did not inject adapter {report.adapter_name!r} into {missing}")


def set_lora_scale(pipeline_or_transformer: Any, adapter_name: str, scale: float) -> None:
    """Scale one adapter's contribution (1.0 = as trained) without touching other adapters."""
    from peft.tuners.lora import LoraLayer

    for module in _transformer_of(pipeline_or_transformer).modules():
        if isinstance(module, LoraLayer) and adapter_name in module.lora_A:
            module.set_scale(adapter_name, scale)


def lora_modules(transformer: Any, adapter_name: str) -> dict[str, tuple[torch.Tensor, torch.Tensor, float]]:
    """Each LoRA'd module → (A, B, configured scale alpha/r or alpha/√r), independent of ``set_lora_scale``."""
    from peft.tuners.lora import LoraLayer

    config = transformer.peft_config[adapter_name]
    if getattr(config, "use_dora", False) or getattr(config, "lora_bias", False):
        raise ValueError(f"adapter {adapter_name!r} uses DoRA or LoRA biases, which kohya files cannot hold")
    rslora = bool(getattr(config, "use_rslora", False))
    out = {}
    for name, module in transformer.named_modules():
        if isinstance(module, LoraLayer) and adapter_name in module.lora_A:
            rank, alpha = module.r[adapter_name], module.lora_alpha[adapter_name]
            scale = alpha / (math.sqrt(rank) if rslora else rank)
            a = module.lora_A[adapter_name].weight.detach()
            b = module.lora_B[adapter_name].weight.detach()
            out[name] = (a, b, float(scale))
    return out


def to_kohya_state_dict(transformer: Any, adapter_name: str = DEFAULT_ADAPTER) -> dict[str, torch.Tensor]:
    """The adapter in the official kohya layout (fused groups block-diagonal, rank Σ r_j; see module doc)."""
    lora = lora_modules(transformer, adapter_name)
    if not lora:
        raise ValueError(f"the transformer has no LoRA adapter {adapter_name!r}")
    targets = kohya_targets(transformer)
    linears = linear_modules(transformer)
    covered = {m for pieces in targets.values() for m in pieces}
    stray = sorted(set(lora) - covered)
    if stray:
        raise ValueError(f"no kohya name for LoRA modules {stray}; save them in diffusers format instead")
    out: dict[str, torch.Tensor] = {}
    for group, pieces in targets.items():
        present = [m for m in pieces if m in lora]
        if not present:
            continue
        dims = [linears[m].out_features for m in pieces]
        scales = {lora[m][2] for m in present}
        common = scales.pop() if len(scales) == 1 else None
        ranks = [lora[m][0].shape[0] for m in present]
        total = sum(ranks)
        ref = lora[present[0]][0]
        up = torch.zeros(sum(dims), total, dtype=ref.dtype, device=ref.device)
        row, col = 0, 0
        for m, dim in zip(pieces, dims, strict=True):
            if m in lora:
                a, b, s = lora[m]
                up[row : row + dim, col : col + a.shape[0]] = b if common is not None else b * s
                col += a.shape[0]
            row += dim
        out[f"{group}.lora_down.weight"] = torch.cat([lora[m][0] for m in present]).contiguous()
        out[f"{group}.lora_up.weight"] = up
        alpha = common * total if common is not None else float(total)
        out[f"{group}.alpha"] = torch.tensor(alpha, dtype=torch.float32)
    return out


def save_lora(
    transformer: Any,
    path: str | os.PathLike[str],
    format: Literal["diffusers", "kohya"] = "diffusers",
    adapter_name: str = DEFAULT_ADAPTER,
) -> Path:
    """Write the adapter to ``path`` (.safetensors): diffusers/peft layout with its config, or official kohya."""
    from safetensors.torch import save_file

    transformer = _transformer_of(transformer)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if format == "kohya":
        tensors = {
            k: v.detach().cpu().contiguous()
            for k, v in to_kohya_state_dict(transformer, adapter_name).items()
        }
        save_file(tensors, str(target), metadata={"format": "pt", "megastyle_lora_format": "kohya"})
        return target
    if format != "diffusers":
        raise ValueError(f"unknown LoRA format {format!r}; expected 'diffusers' or 'kohya'")
    from diffusers import FluxPipeline
    from peft.utils import get_peft_model_state_dict

    if adapter_name not in getattr(transformer, "peft_config", {}):
        raise ValueError(f"the transformer has no LoRA adapter {adapter_name!r}")
    layers = get_peft_model_state_dict(transformer, adapter_name=adapter_name)
    layers = {k: v.detach().cpu().contiguous() for k, v in layers.items()}
    config = transformer.peft_config[adapter_name].to_dict()
    config = {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
    # The same file FluxPipeline.save_lora_weights writes: "transformer."-prefixed keys + LoraConfig metadata.
    FluxPipeline.save_lora_weights(
        target.parent,
        transformer_lora_layers=layers,
        weight_name=target.name,
        transformer_lora_adapter_metadata=config,
    )
    return target
