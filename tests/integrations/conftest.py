"""Fixtures for the ComfyUI node pack: tiny offline models in the files a user would have, a ComfyUI-like
folder around them, and the pack loaded the way ComfyUI loads it (see ``comfyui_harness``)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from comfyui_harness import PACK, core_nodes, fake_comfyui_modules, load_pack


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Tiny stand-ins for the released files: FLUX folder, LoRAs (kohya and diffusers), encoders, images."""
    import torch

    from megastyle.encode import StyleEncoder
    from megastyle.testing import random_images, tiny_model_dir
    from megastyle.testing.flux import tiny_flux_transformer
    from megastyle.transfer.lora import save_lora
    from megastyle.transfer.train import add_lora
    from megastyle.transfer.train_config import TrainTransferConfig

    root = tmp_path_factory.mktemp("comfyui-artefacts")
    loras = {}
    for seed, fmt in ((0, "kohya"), (1, "diffusers")):
        transformer = tiny_flux_transformer().eval()
        add_lora(transformer, TrainTransferConfig(rank=4, seed=seed, init_lora_weights="gaussian"))
        generator = torch.Generator().manual_seed(seed)
        for name, weight in transformer.named_parameters():
            if ".lora_B." in name:  # peft starts B at zero: a LoRA that changes nothing would prove nothing
                weight.data = torch.randn(weight.shape, generator=generator) * 0.2
        loras[fmt] = save_lora(transformer, root / f"lora_{fmt}.safetensors", format=fmt)
    encoder_pth = root / "megastyle_encoder.pth"
    StyleEncoder.from_pretrained(tiny_model_dir("siglip", seed=1)).export_official(encoder_pth)
    encoder_dir = root / "encoder"
    StyleEncoder.from_pretrained(tiny_model_dir("siglip", seed=2)).save_pretrained(encoder_dir)
    images = []
    for i, image in enumerate(random_images(4, (48, 40), seed=30)):
        images.append(root / f"image_{i}.png")
        image.save(images[-1])
    return SimpleNamespace(
        flux=tiny_model_dir("flux"),
        siglip=tiny_model_dir("siglip"),
        lora_kohya=loras["kohya"],
        lora_diffusers=loras["diffusers"],
        encoder_pth=encoder_pth,
        encoder_dir=encoder_dir,
        images=images,
    )


@pytest.fixture
def pack(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The pack as ComfyUI imports it (no .pyc written into the checkout); its modules are dropped after."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    before = set(sys.modules)
    yield load_pack()
    for name in set(sys.modules) - before:
        if name.startswith(str(PACK).replace(".", "_x_")):
            del sys.modules[name]


def comfyui_tree(base: Path, artefacts: SimpleNamespace) -> Path:
    """A ComfyUI folder with the released files where the pack's README puts them."""
    models = base / "models"
    links = {
        models / "diffusers" / "FLUX.1-dev": artefacts.flux,
        models / "loras" / "megastyle_flux.safetensors": artefacts.lora_kohya,
        models / "megastyle" / "megastyle_encoder.pth": artefacts.encoder_pth,
        models / "megastyle" / "siglip-so400m-patch14-384": artefacts.siglip,
    }
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=target.is_dir())
    for folder in ("unet", "diffusion_models", "checkpoints"):
        (models / folder).mkdir(exist_ok=True)
    (base / "input").mkdir()
    shutil.copy(artefacts.images[0], base / "input" / "style.png")
    return base


@pytest.fixture
def comfyui(tmp_path: Path, artefacts: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A ComfyUI-like install: its folder with the models, and its modules importable (``folder_paths``,
    ``comfy.utils``, ``comfy.model_management``)."""
    base = comfyui_tree(tmp_path / "ComfyUI", artefacts)
    modules = fake_comfyui_modules(base)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    record = SimpleNamespace()
    return SimpleNamespace(base=base, modules=modules, record=record, core=core_nodes(base / "input", record))
