"""Official megastyle_encoder.pth loading (bare, under "model", prefixed, incomplete) and export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import SiglipVisionModel

from megastyle.encode import StyleEncoder, load_official_encoder
from megastyle.encode.model import StateDictLoadError
from megastyle.encode.state_dict import OfficialCheckpointError
from megastyle.testing import random_images, tiny_model_dir


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return random_images(4, (40, 36), seed=5)


@pytest.fixture(scope="module")
def source() -> StyleEncoder:
    """The 'trained' encoder whose weights the fake official checkpoint carries (seed 1)."""
    return StyleEncoder.from_pretrained(tiny_model_dir("siglip", seed=1))


@pytest.fixture(scope="module")
def base() -> Path:
    """The base SigLIP folder (seed 0: different weights, same architecture)."""
    return tiny_model_dir("siglip", seed=0)


def official_state_dict(encoder: StyleEncoder) -> dict[str, torch.Tensor]:
    # Keys as the transformers-4 SiglipVisionModel.state_dict() the official checkpoint came from.
    return {f"vision_model.{k}": v.clone() for k, v in encoder.vision_model.state_dict().items()}


def test_base_differs_from_source(source: StyleEncoder, base: Path, images: list[Image.Image]) -> None:
    # Otherwise every "loaded the right weights" check below could pass by accident.
    base_embeddings = StyleEncoder.from_pretrained(base).embed_images(images)
    assert np.abs(base_embeddings - source.embed_images(images)).max() > 1e-2


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda sd: sd, id="bare"),
        pytest.param(lambda sd: {"model": sd, "epoch": 3}, id="under-model"),
        pytest.param(lambda sd: {f"module.{k}": v for k, v in sd.items()}, id="ddp-prefix"),
        pytest.param(lambda sd: {k.removeprefix("vision_model."): v for k, v in sd.items()}, id="flat-tf5"),
        pytest.param(lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}}, id="model+ddp"),
    ],
)
def test_official_checkpoint_variants_load_exactly(
    wrap, source: StyleEncoder, base: Path, images: list[Image.Image], tmp_path: Path
) -> None:
    path = tmp_path / "megastyle_encoder.pth"
    torch.save(wrap(official_state_dict(source)), path)
    encoder, report = load_official_encoder(path, base)
    assert report.ok, report.summary()
    assert report.loaded == len(source.vision_model.state_dict())
    np.testing.assert_array_equal(encoder.embed_images(images), source.embed_images(images))


def test_safetensors_variant(
    source: StyleEncoder, base: Path, images: list[Image.Image], tmp_path: Path
) -> None:
    path = tmp_path / "megastyle_encoder.safetensors"
    save_file({k: v.contiguous() for k, v in official_state_dict(source).items()}, str(path))
    encoder, report = load_official_encoder(path, base)
    assert report.ok
    np.testing.assert_array_equal(encoder.embed_images(images), source.embed_images(images))


def test_missing_extra_and_misshapen_keys_are_reported(
    source: StyleEncoder, base: Path, tmp_path: Path
) -> None:
    state = official_state_dict(source)
    dropped = "vision_model.head.probe"
    del state[dropped]
    state["vision_model.extra_adapter.weight"] = torch.zeros(3)
    state["vision_model.post_layernorm.bias"] = torch.zeros(7)  # wrong shape (32 expected)
    path = tmp_path / "partial.pth"
    torch.save({"model": state}, path)
    encoder, report = load_official_encoder(path, base)
    assert not report.ok
    assert report.missing == ["head.probe", "post_layernorm.bias"]
    assert report.unexpected == ["vision_model.extra_adapter.weight"]
    assert len(report.mismatched) == 1 and "post_layernorm.bias" in report.mismatched[0]
    assert "2 missing" in report.summary() and "1 unexpected" in report.summary()
    # Everything that matched was loaded; the missing ones keep the base model's values.
    own = encoder.vision_model.state_dict()
    torch.testing.assert_close(
        own["encoder.layers.0.mlp.fc1.weight"], state["vision_model.encoder.layers.0.mlp.fc1.weight"]
    )
    base_probe = StyleEncoder.from_pretrained(base).vision_model.state_dict()["head.probe"]
    torch.testing.assert_close(own["head.probe"], base_probe)
    with pytest.raises(StateDictLoadError, match="missing"):
        load_official_encoder(path, base, strict=True)


def test_checkpoint_of_a_full_siglip_model_reports_text_keys(
    source: StyleEncoder, base: Path, tmp_path: Path
) -> None:
    from transformers import SiglipModel

    full = SiglipModel.from_pretrained(tiny_model_dir("siglip", seed=1))
    path = tmp_path / "full.pth"
    torch.save(full.state_dict(), path)
    _, report = load_official_encoder(path, base)
    assert report.missing == []
    assert report.unexpected and all(k.startswith(("text_model.", "logit_")) for k in report.unexpected)


def test_unreadable_checkpoints_fail_clearly(base: Path, tmp_path: Path) -> None:
    pickled = tmp_path / "object.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "args": Path("x")}, pickled)  # a non-tensor global
    with pytest.raises(OfficialCheckpointError, match=r"refused: contains non-tensor objects \(pickle\)"):
        load_official_encoder(pickled, base)
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, unrelated)
    with pytest.raises(StateDictLoadError, match="loaded 0 tensors"):
        load_official_encoder(unrelated, base)
    with pytest.raises(FileNotFoundError):
        load_official_encoder(tmp_path / "nope.pth", base)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(OfficialCheckpointError, match="safetensors"):
        load_official_encoder(garbage, base)


class Transformers4SiglipVisionModel(torch.nn.Module):
    """The transformers-4 module layout (``.vision_model`` inside), which the official script ran on."""

    def __init__(self, config: object) -> None:
        super().__init__()
        self.vision_model = SiglipVisionModel(config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vision_model(pixel_values=pixel_values).pooler_output


def test_exported_pth_loads_the_official_way(
    source: StyleEncoder, images: list[Image.Image], tmp_path: Path
) -> None:
    config = source.config.hf_vision_config()
    pixels = source.preprocess(images)
    expected = source.embed_images(images)
    for layout, model in (
        ("transformers4", Transformers4SiglipVisionModel(config)),
        ("transformers5", SiglipVisionModel(config)),
    ):
        path = source.export_official(tmp_path / f"{layout}.pth", layout=layout)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint["model"] if isinstance(checkpoint, dict) and "model" in checkpoint else checkpoint
        msg = model.load_state_dict(state, strict=False)
        assert msg.missing_keys == [] and msg.unexpected_keys == [], layout
        with torch.no_grad():
            out = model.eval()(pixel_values=pixels)
            emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        emb = emb / emb.norm(p=2, dim=-1, keepdim=True)
        np.testing.assert_allclose(emb.numpy(), expected, atol=1e-6)


def test_tf4_layout_into_a_tf5_tower_silently_loads_nothing(source: StyleEncoder, tmp_path: Path) -> None:
    # Why keys are matched on canonical names: the official script's strict=False hides this mismatch.
    path = source.export_official(tmp_path / "tf4.pth")
    msg = SiglipVisionModel(source.config.hf_vision_config()).load_state_dict(torch.load(path), strict=False)
    assert len(msg.missing_keys) == len(msg.unexpected_keys) == len(source.vision_model.state_dict())


def test_our_folder_loads_into_the_official_architecture(
    source: StyleEncoder, images: list[Image.Image], tmp_path: Path
) -> None:
    source.save_pretrained(tmp_path / "ours")
    from safetensors.torch import load_file

    model = Transformers4SiglipVisionModel(source.config.hf_vision_config()).eval()
    msg = model.load_state_dict(load_file(tmp_path / "ours" / "model.safetensors"), strict=False)
    assert msg.missing_keys == [] and msg.unexpected_keys == []
    with torch.no_grad():
        emb = torch.nn.functional.normalize(model(source.preprocess(images)), dim=-1)
    np.testing.assert_allclose(emb.numpy(), source.embed_images(images), atol=1e-6)
