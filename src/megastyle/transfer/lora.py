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
from pathlib import Path
from typing import Any, Literal

import torch

from megastyle.transfer.kohya import (
    DEFAULT_ADAPTER,
    KOHYA_BLOCK_TARGETS,
    KOHYA_GLOBAL_TARGETS,
    LoraLoadReport,
    convert_kohya_state_dict,
    kohya_targets,
    linear_modules,
    lora_config_kwargs,
    transformer_of,
)

logger = logging.getLogger(__name__)

_ADAPTER_METADATA_KEY = "lora_adapter_metadata"  # diffusers' LORA_ADAPTER_METADATA_KEY


def read_lora_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a safetensors LoRA file."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: LoRA file does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            return {key: handle.get_tensor(key) for key in handle.keys()}, metadata  # noqa: SIM118
    except SafetensorError as err:
        raise ValueError(
            f"{path}: not a safetensors file ({err}); a LoRA is read from .safetensors only (official kohya or "
            "diffusers format), never unpickled"
        ) from err


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
    transformer = transformer_of(pipeline_or_transformer)
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

    for module in transformer_of(pipeline_or_transformer).modules():
        if isinstance(module, LoraLayer) and adapter_name in module.lora_A:
            module.set_scale(adapter_name, scale)


def remove_lora(pipeline_or_transformer: Any, adapter_name: str = DEFAULT_ADAPTER) -> bool:
    """Take adapter ``adapter_name`` off the transformer → whether it had one.

    The base weights are never changed by a (non-fused) LoRA, so this gives back the transformer as it was
    before the load: the last adapter's removal also takes out the LoRA wrappers (``unload_lora``); with
    other adapters present only this one's layers go (``delete_adapters``).
    """
    transformer = transformer_of(pipeline_or_transformer)
    _lora_sources(transformer).pop(adapter_name, None)
    adapters = getattr(transformer, "peft_config", None) or {}
    if adapter_name not in adapters:
        return False
    if set(adapters) == {adapter_name}:
        transformer.unload_lora()
    else:
        transformer.delete_adapters(adapter_name)
    return True


def use_lora(
    pipeline_or_transformer: Any,
    path: str | os.PathLike[str] | None,
    scale: float = 1.0,
    adapter_name: str = DEFAULT_ADAPTER,
) -> LoraLoadReport | None:
    """Make the transformer carry adapter ``adapter_name`` from ``path`` at ``scale``, exactly once.

    Calling it again never stacks a second copy: an adapter of that name from this very file (same path,
    size and modification time) only gets its scale set; one from another file, or one this function did
    not load, is removed (``remove_lora``) and the file loaded afresh. ``path=None`` removes the adapter.
    Returns the load report when the file was loaded, None when only the scale was set or nothing loaded.
    """
    transformer = transformer_of(pipeline_or_transformer)
    if path is None:
        remove_lora(transformer, adapter_name)
        return None
    source = _file_signature(path)
    adapters = getattr(transformer, "peft_config", None) or {}
    if adapter_name in adapters and _lora_sources(transformer).get(adapter_name) == source:
        set_lora_scale(transformer, adapter_name, scale)
        return None
    remove_lora(transformer, adapter_name)
    report = load_megastyle_lora(transformer, path, adapter_name=adapter_name, scale=scale)
    _lora_sources(transformer)[adapter_name] = source
    return report


def _file_signature(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """(resolved path, size, modification time): a file replaced in place reads as another file."""
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"{path}: LoRA file does not exist")
    stat = resolved.stat()
    return str(resolved), stat.st_size, stat.st_mtime_ns


def _lora_sources(transformer: Any) -> dict[str, tuple[str, int, int]]:
    """Adapter name → the file ``use_lora`` loaded it from, kept on the transformer itself."""
    return transformer.__dict__.setdefault("_megastyle_lora_sources", {})


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

    transformer = transformer_of(transformer)
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


# The key-format half lives in ``kohya``; its public names stay importable from here.
__all__ = [
    "DEFAULT_ADAPTER",
    "KOHYA_BLOCK_TARGETS",
    "KOHYA_GLOBAL_TARGETS",
    "LoraLoadReport",
    "convert_kohya_state_dict",
    "kohya_targets",
    "linear_modules",
    "load_megastyle_lora",
    "lora_config_kwargs",
    "lora_modules",
    "read_lora_file",
    "remove_lora",
    "save_lora",
    "set_lora_scale",
    "to_kohya_state_dict",
    "use_lora",
]
