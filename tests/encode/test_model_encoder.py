"""StyleEncoder over tiny SigLIP/CLIP towers: loading, saving, embeddings, preprocessing."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from safetensors.torch import load_file
from transformers import CLIPVisionModel, SiglipVisionModel
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from megastyle.encode import StyleEncoder
from megastyle.encode.model import canonical_key
from megastyle.testing import random_images, tiny_model_dir

VISION_CLASSES = {"siglip": SiglipVisionModel, "clip": CLIPVisionModel}


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    # Non-square and differently sized, so resize and crop paths both matter.
    return random_images(3, (48, 40), seed=1) + random_images(2, (30, 64), seed=2)


@pytest.mark.parametrize("tower", ["siglip", "clip"])
def test_hf_folder_embeddings_are_unit_norm_pooled_outputs(tower: str, images: list[Image.Image]) -> None:
    folder = tiny_model_dir(tower)
    encoder = StyleEncoder.from_pretrained(folder)
    assert encoder.config.tower == tower
    assert encoder.dim == 32  # the tower width: CLIP's 24-d visual_projection is not used
    embeddings = encoder.embed_images(images, batch_size=2)
    assert embeddings.dtype == np.float32 and embeddings.shape == (5, 32)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(embeddings, encoder.embed_images(images, batch_size=2))  # deterministic
    np.testing.assert_allclose(embeddings, encoder.embed_images(images, batch_size=5), atol=1e-6)
    # Same numbers as the plain HF tower's normalised pooler_output on the same pixels.
    tower_model = VISION_CLASSES[tower].from_pretrained(folder).eval()
    with torch.no_grad():
        pooled = tower_model(pixel_values=encoder.preprocess(images)).pooler_output
    expected = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    np.testing.assert_allclose(embeddings, expected, atol=1e-6)
    assert np.abs(embeddings[0] - embeddings[1]).max() > 1e-3  # different images, different embeddings


@pytest.mark.parametrize("tower", ["siglip", "clip"])
def test_save_and_load_round_trip(tower: str, images: list[Image.Image], tmp_path: Path) -> None:
    encoder = StyleEncoder.from_pretrained(tiny_model_dir(tower))
    encoder.save_pretrained(tmp_path / "saved")
    files = {p.name for p in (tmp_path / "saved").iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= files
    weights = load_file(tmp_path / "saved" / "model.safetensors")
    # Official / HF key names: the HF full checkpoint's vision_model.* keys, exactly.
    hf_keys = {
        k for k in load_file(tiny_model_dir(tower) / "model.safetensors") if k.startswith("vision_model.")
    }
    assert set(weights) == hf_keys
    loaded = StyleEncoder.from_pretrained(tmp_path / "saved")
    assert loaded.config == encoder.config
    np.testing.assert_array_equal(loaded.embed_images(images), encoder.embed_images(images))


def test_vision_only_hf_folder_matches_full_folder(images: list[Image.Image], tmp_path: Path) -> None:
    full = tiny_model_dir("siglip")
    SiglipVisionModel.from_pretrained(full).save_pretrained(tmp_path / "vision")
    (tmp_path / "vision" / "processor_config.json").write_text((full / "processor_config.json").read_text())
    a = StyleEncoder.from_pretrained(full).embed_images(images)
    b = StyleEncoder.from_pretrained(tmp_path / "vision").embed_images(images)
    np.testing.assert_array_equal(a, b)


def test_missing_and_foreign_folders_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        StyleEncoder.from_pretrained(tmp_path / "google" / "siglip-so400m-patch14-384")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        StyleEncoder.from_pretrained(tmp_path / "empty")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="not a SigLIP or CLIP"):
        StyleEncoder.from_pretrained(tmp_path / "bert")
    (tmp_path / "x.pth").write_bytes(b"")
    with pytest.raises(ValueError, match="load_official_encoder"):
        StyleEncoder.from_pretrained(tmp_path / "x.pth")


def test_from_vision_config_is_seeded_and_leaves_rng_alone(images: list[Image.Image]) -> None:
    vision = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "patch_size": 8,
    }
    torch.manual_seed(7)
    expected_draw = torch.rand(3)
    torch.manual_seed(7)
    a = StyleEncoder.from_vision_config("siglip", vision, image_size=32, seed=1)
    torch.testing.assert_close(torch.rand(3), expected_draw)
    b = StyleEncoder.from_vision_config("siglip", vision, image_size=32, seed=1)
    c = StyleEncoder.from_vision_config("siglip", vision, image_size=32, seed=2)
    assert a.image_size == 32 and a.config.preprocess.resize_mode == "squash"
    np.testing.assert_array_equal(a.embed_images(images), b.embed_images(images))
    assert np.abs(a.embed_images(images) - c.embed_images(images)).max() > 1e-3
    assert not a.training
    clip = StyleEncoder.from_vision_config("clip", vision, image_size=32, seed=1)
    assert clip.config.preprocess.resize_mode == "shortest_edge_crop"


@pytest.mark.parametrize(
    ("tower", "processor_cls"), [("siglip", SiglipImageProcessorPil), ("clip", CLIPImageProcessorPil)]
)
def test_preprocessing_matches_hf_pil_image_processor(
    tower: str, processor_cls: type, images: list[Image.Image]
) -> None:
    folder = tiny_model_dir(tower)
    encoder = StyleEncoder.from_pretrained(folder)
    reference = processor_cls.from_pretrained(folder)(images=images, return_tensors="pt")["pixel_values"]
    ours = encoder.preprocess(images)
    assert ours.shape == reference.shape == (5, 3, 32, 32)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_preprocessing_follows_a_custom_processor_config(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    CLIPVisionModel.from_pretrained(tiny_model_dir("clip")).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "CLIPImageProcessor",
                "size": {"shortest_edge": 40},
                "crop_size": {"height": 32, "width": 32},
                "resample": 2,
                "image_mean": [0.1, 0.2, 0.3],
                "image_std": [0.5, 0.5, 0.5],
            }
        )
    )
    encoder = StyleEncoder.from_pretrained(folder)
    pre = encoder.config.preprocess
    assert (pre.resize_size, pre.image_size, pre.resample) == (40, 32, "bilinear")
    assert pre.image_mean == (0.1, 0.2, 0.3)
    image = random_images(1, (80, 50), seed=3)
    reference = CLIPImageProcessorPil.from_pretrained(folder)(images=image, return_tensors="pt")[
        "pixel_values"
    ]
    torch.testing.assert_close(encoder.preprocess(image), reference, atol=1e-5, rtol=0)


def test_training_transform_applies_augmentation_and_pickles(images: list[Image.Image]) -> None:
    encoder = StyleEncoder.from_pretrained(tiny_model_dir("siglip"))
    transform = encoder.training_transform(ImageOps.mirror)
    restored = pickle.loads(pickle.dumps(transform))
    flipped = restored(images[0])
    torch.testing.assert_close(flipped, encoder.preprocess([ImageOps.mirror(images[0])])[0])
    assert not torch.equal(flipped, encoder.preprocess(images[:1])[0])
    grey = images[0].convert("L")  # any mode is converted to RGB first
    assert restored(grey).shape == (3, 32, 32)


def test_forward_keeps_gradients_and_casts_inputs(images: list[Image.Image]) -> None:
    encoder = StyleEncoder.from_pretrained(tiny_model_dir("siglip")).train()
    out = encoder(encoder.preprocess(images[:2]).double())  # cast to the weights' dtype inside
    out.sum().backward()
    grads = [p.grad for p in encoder.vision_model.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    bf16 = StyleEncoder.from_pretrained(tiny_model_dir("siglip"), dtype=torch.bfloat16)
    np.testing.assert_allclose(bf16.embed_images(images), encoder.eval().embed_images(images), atol=5e-2)


def test_canonical_key_strips_wrappers() -> None:
    assert canonical_key("module.vision_model.head.probe") == ("head.probe", ["module.", "vision_model."])
    assert canonical_key("_orig_mod.encoder.layers.0.mlp.fc1.weight")[0] == "encoder.layers.0.mlp.fc1.weight"
    assert canonical_key("text_model.head.weight") == ("text_model.head.weight", [])


def test_hf_folder_with_missing_vision_weights_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    folder = tmp_path / "vision"
    SiglipVisionModel.from_pretrained(tiny_model_dir("siglip")).save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    dropped = next(k for k in weights if k.endswith("head.probe"))
    del weights[dropped]
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"vision weights incomplete.*head\.probe"):
        StyleEncoder.from_pretrained(folder)
