"""``use_lora`` and ``remove_lora`` (``megastyle.transfer.lora``), which the ComfyUI LoRA node stands on: one
adapter per name, replaced rather than stacked, other adapters left alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from megastyle.testing.flux import tiny_flux_transformer
from megastyle.transfer.lora import load_megastyle_lora, remove_lora, use_lora


def transformer() -> torch.nn.Module:
    torch.manual_seed(0)
    return tiny_flux_transformer().eval()


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_use_lora_loads_once_then_only_rescales(artefacts: SimpleNamespace) -> None:
    model = transformer()
    base = weights(model)
    assert use_lora(model, artefacts.lora_kohya, scale=0.5) is not None  # loaded
    once = weights(model)
    assert use_lora(model, artefacts.lora_kohya, scale=0.5) is None  # same file: scale only
    assert use_lora(model, artefacts.lora_kohya, scale=1.5) is None
    assert use_lora(model, artefacts.lora_kohya, scale=0.5) is None
    assert same(weights(model), once) and set(model.peft_config) == {"megastyle"}

    reference = transformer()
    load_megastyle_lora(reference, artefacts.lora_kohya, scale=0.5)
    assert same(weights(reference), once)

    use_lora(model, None)
    assert same(weights(model), base) and not getattr(model, "peft_config", None)


def test_a_file_changed_in_place_is_loaded_again(artefacts: SimpleNamespace, tmp_path: Path) -> None:
    path = tmp_path / "lora.safetensors"
    shutil.copy(artefacts.lora_kohya, path)
    model = transformer()
    use_lora(model, path)
    shutil.copy(artefacts.lora_diffusers, path)
    os.utime(path, ns=(1, 1))  # another modification time, whatever the clock's resolution
    assert use_lora(model, path) is not None
    reference = transformer()
    load_megastyle_lora(reference, artefacts.lora_diffusers)
    assert same(weights(model), weights(reference))


@pytest.mark.filterwarnings("ignore:Already found a `peft_config`", "ignore:Adapter megastyle was active")
def test_removing_one_adapter_keeps_the_others(artefacts: SimpleNamespace) -> None:
    model = transformer()
    load_megastyle_lora(model, artefacts.lora_diffusers, adapter_name="other")
    only_other = weights(model)
    use_lora(model, artefacts.lora_kohya)
    assert set(model.peft_config) == {"other", "megastyle"}
    assert remove_lora(model) is True
    assert set(model.peft_config) == {"other"}
    assert same(weights(model), only_other)
    assert remove_lora(model) is False
