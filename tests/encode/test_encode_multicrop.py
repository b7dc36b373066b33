"""Multi-crop preprocessing: native-resolution crops, grid embedding = mean of crop embeddings, training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from megastyle.curate.generate import plan_images, run_generate
from megastyle.data.augment import AugmentConfig, augment_image
from megastyle.encode.data import StyleImageDataset, heldout_metrics
from megastyle.encode.images import ImagePreprocessor, PreprocessConfig
from megastyle.encode.model import StyleEncoder
from megastyle.encode.train import build_encoder, resolve_split, train_encoder
from megastyle.encode.train_config import TinyTowerConfig, TrainEncoderConfig
from megastyle.prompts import sample_content_prompts, sample_style_prompts

TINY = {"image_size": 16, "patch_size": 8, "hidden_size": 384, "intermediate_size": 64}
TINY |= {"num_hidden_layers": 1, "num_attention_heads": 6}


def _gradient(width: int, height: int) -> Image.Image:
    """An image whose every pixel is unique (x in red, y in green), so crops are recognisable."""
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    array = np.stack([x % 256, y % 256, (x * 7 + y * 13) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(array)


def _multicrop(grid: int, source: int | None = None, size: int = 16) -> ImagePreprocessor:
    base = PreprocessConfig.for_tower("siglip", size)
    return ImagePreprocessor(base.model_copy(update={"crop_grid": grid, "crop_source_size": source}))


def test_grid_crops_are_native_resolution_pixels() -> None:
    image = _gradient(40, 52)
    pre = _multicrop(3)
    views = pre.views(image)
    assert views.shape == (9, 3, 16, 16)
    # Evenly spaced boxes from corner to corner, row-major.
    assert pre.crop_boxes(40, 52) == [(x, y, x + 16, y + 16) for y in (0, 18, 36) for x in (0, 12, 24)]
    for view, box in zip(views, pre.crop_boxes(40, 52), strict=True):
        expected = pre.to_tensor(image.crop(box))  # no resampling: the very pixels of the image
        torch.testing.assert_close(view, expected, rtol=0, atol=0)
    # One crop: the centre (odd margins round as the CLIP centre crop does); the single view is it too.
    odd = _gradient(41, 53)
    centre = _multicrop(1)
    assert centre.crop_boxes(41, 53) == [(13, 19, 29, 35)]
    torch.testing.assert_close(centre.views(odd)[0], centre(odd), rtol=0, atol=0)
    torch.testing.assert_close(centre(odd), pre.to_tensor(odd.crop((13, 19, 29, 35))), rtol=0, atol=0)


def test_crop_source_size_scales_the_short_side_and_small_images_are_upscaled() -> None:
    pre = _multicrop(2, source=32)
    assert pre.crop_source(_gradient(64, 96)).size == (32, 48)
    assert _multicrop(2).crop_source(_gradient(10, 20)).size == (16, 32)  # never below the input side
    image = _gradient(40, 40)
    assert _multicrop(2).crop_source(image) is image  # native: untouched


def test_default_preprocessing_has_one_view_equal_to_the_plain_transform() -> None:
    pre = ImagePreprocessor(PreprocessConfig.for_tower("siglip", 16))
    image = _gradient(40, 30)
    torch.testing.assert_close(pre.views(image), pre(image)[None], rtol=0, atol=0)


def test_multicrop_embedding_is_the_normalised_mean_of_the_crop_embeddings() -> None:
    cfg = TrainEncoderConfig(init="tiny", tiny=TinyTowerConfig(**TINY, crop_grid=2), progress=False)
    encoder = build_encoder(cfg)
    assert encoder.config.preprocess.crop_grid == 2
    images = [_gradient(48, 40), _gradient(33, 64)]
    got = encoder.embed_images(images, batch_size=1)
    with torch.no_grad():
        for image, row in zip(images, got, strict=True):
            crops = encoder(encoder.preprocessor.views(image))  # 4 unit-norm crop embeddings
            assert crops.shape[0] == 4
            torch.testing.assert_close(torch.from_numpy(row), F.normalize(crops.mean(0), dim=0))
    # Not the same as embedding one crop: the grid matters.
    with torch.no_grad():
        first = encoder(encoder.preprocessor.views(images[0])[:1])[0].numpy()
    assert not np.allclose(got[0], first, atol=1e-4)


def test_multicrop_config_survives_save_and_load(tmp_path: Path) -> None:
    cfg = TrainEncoderConfig(init="tiny", tiny=TinyTowerConfig(**TINY, crop_grid=3, crop_source_size=48))
    encoder = build_encoder(cfg)
    assert "crop_grid" not in encoder.vision_model.config.to_dict()  # preprocessing, not architecture
    encoder.save_pretrained(tmp_path / "enc")
    loaded = StyleEncoder.from_pretrained(tmp_path / "enc")
    assert loaded.config.preprocess == encoder.config.preprocess
    images = [_gradient(50, 60)]
    np.testing.assert_array_equal(loaded.embed_images(images), encoder.embed_images(images))


def test_native_augmentation_crops_at_native_scale_and_is_seeded() -> None:
    image = _gradient(64, 64)
    exact = AugmentConfig(crop="native", native_size=16, native_zoom=(1.0, 1.0), flip_p=0.0)
    crop = augment_image(image, exact, seed=3)
    assert crop.size == (16, 16)
    # Zoom 1: a verbatim 16×16 window of the image (red = x, green = y).
    array = np.asarray(crop)
    x0, y0 = int(array[0, 0, 0]), int(array[0, 0, 1])
    np.testing.assert_array_equal(array, np.asarray(image.crop((x0, y0, x0 + 16, y0 + 16))))
    zoomed = AugmentConfig(crop="native", native_size=16, native_zoom=(0.5, 2.0))
    draws = [augment_image(image, zoomed, seed=s) for s in range(6)]
    assert all(d.size == (16, 16) for d in draws)
    assert np.array_equal(np.asarray(draws[0]), np.asarray(augment_image(image, zoomed, seed=0)))
    assert len({np.asarray(d).tobytes() for d in draws}) == 6


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("multicrop-data") / "shards"
    plan = plan_images(sample_style_prompts(6, seed=3), sample_content_prompts(6, seed=4), 4, seed=2)
    run_generate(plan, out, size=48, show_progress=False)
    return out


def test_training_with_multicrop_uses_native_crops_and_saves_the_grid(shards: Path, tmp_path: Path) -> None:
    cfg = TrainEncoderConfig(
        data_dirs=[shards],
        output_dir=tmp_path / "run",
        tiny=TinyTowerConfig(**TINY, crop_grid=2),
        holdout_fraction=0.34,
        styles_per_batch=3,
        images_per_style=2,
        max_steps=2,
        progress=False,
    )
    train_rows, heldout_rows, _ = resolve_split(cfg)
    preprocess = build_encoder(cfg).config.preprocess
    dataset = StyleImageDataset(train_rows, preprocess, augment=AugmentConfig(crop="native", native_size=16))
    pixels, _ = dataset[(0, 5)]
    assert pixels.shape == (3, 16, 16)
    cached = StyleImageDataset(train_rows, preprocess, cache_images=True)
    assert cached.load_image(0).size == (48, 48)  # kept at native resolution, not thumbnailed to 2 × 16
    result = train_encoder(cfg)
    trained = StyleEncoder.from_pretrained(result.encoder_dir)
    assert trained.config.preprocess.crop_grid == 2
    metrics = heldout_metrics(trained, StyleImageDataset(heldout_rows, preprocess))
    assert 0.0 <= metrics["map"] <= 1.0 and metrics["images"] == len(heldout_rows)


def test_embed_collection_uses_the_grid_like_embed_images(tmp_path: Path) -> None:
    from megastyle.encode import embed_collection, load_embeddings

    encoder = build_encoder(TrainEncoderConfig(init="tiny", tiny=TinyTowerConfig(**TINY, crop_grid=2)))
    root = tmp_path / "images" / "gradients"
    root.mkdir(parents=True)
    images = [_gradient(40 + 3 * i, 36 + 5 * i) for i in range(3)]
    for i, image in enumerate(images):
        image.save(root / f"{i}.png")
    out = tmp_path / "emb.safetensors"
    embed_collection(encoder, root.parent, batch_size=2, out_path=out, progress=False)
    np.testing.assert_allclose(load_embeddings(out).embeddings, encoder.embed_images(images), atol=1e-6)
