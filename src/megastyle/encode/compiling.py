"""Regional ``torch.compile`` of a vision tower: each transformer layer compiled in place (torch only)."""

from __future__ import annotations

import torch


def transformer_layers(tower: torch.nn.Module) -> torch.nn.ModuleList:
    """The ``encoder.layers`` list of a Hugging Face vision tower (SigLIP, CLIP), wherever it is nested."""
    for name, module in tower.named_modules():
        if name.split(".")[-2:] == ["encoder", "layers"] and isinstance(module, torch.nn.ModuleList):
            return module
    raise ValueError(f"{type(tower).__name__} has no 'encoder.layers' module list to compile")


def compile_layers(tower: torch.nn.Module, *, fullgraph: bool = True) -> int:
    """Compile every transformer layer of ``tower`` in place; returns how many.

    Layers share one code object, so the compiler traces a layer once per input shape (and once more for
    ``no_grad`` passes) instead of the whole tower; ``Module.compile`` keeps parameter names, so state dicts,
    checkpoints and the official export are unchanged.
    """
    layers = transformer_layers(tower)
    for layer in layers:
        layer.compile(fullgraph=fullgraph, dynamic=False)
    return len(layers)
