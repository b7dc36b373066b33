"""diffusers backend on tiny random FLUX and Qwen-Image pipelines, loaded through ``load_backend``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from megastyle.curate.generate import plan_images, run_generate
from megastyle.curate.generators import GenerationRequest, load_backend
from megastyle.curate.generators.diffusers_backend import DiffusersBackend
from megastyle.data import ShardReader
from megastyle.testing.fixtures import tiny_model, tiny_models_root  # noqa: F401  (pytest fixtures)

STYLE = "In the style of pop art, red and cyan with black accents, flat even lighting, glossy surface, in screen print."
REQUESTS = [  # the first and last differ only in the seed
    GenerationRequest(STYLE, "a cat on a wall", seed=11, size=16),
    GenerationRequest(STYLE, "two red apples beside a tall glass vase on a wooden table", seed=12, size=16),
    GenerationRequest(STYLE, "a cat on a wall", seed=13, size=16),
]
# Paper recipe on Qwen-Image is true CFG 4.0 with a " " negative prompt; steps stay at 2 here.
OPTIONS = {
    "flux": {
        "num_inference_steps": 2,
        "guidance_scale": 3.5,
        "batch_size": 3,
        "extra_kwargs": {"max_sequence_length": 64},
    },
    "qwen_image": {"num_inference_steps": 2, "true_cfg_scale": 4.0, "negative_prompt": " ", "batch_size": 3},
}


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module", params=["flux", "qwen_image"])
def backend(request: pytest.FixtureRequest, tiny_model: Callable[..., Path]) -> DiffusersBackend:  # noqa: F811
    kind = request.param
    loaded = load_backend("diffusers", model_path=str(tiny_model(kind)), **OPTIONS[kind])
    assert isinstance(loaded, DiffusersBackend)
    return loaded


def test_batch_renders_rgb_images_of_the_requested_sizes(backend: DiffusersBackend) -> None:
    expected_class = {"flux": "FluxPipeline", "qwen_image": "QwenImagePipeline"}
    assert backend.pipeline_class_name == expected_class[backend.model_id.split("-seed")[0]]
    mixed = [  # 24 is a multiple of both size multiples (4, 8); 18 is not: rendered at 16/20, resized
        GenerationRequest(STYLE, "a boat", seed=13, size=24),
        GenerationRequest(STYLE, "a kite", seed=5, size=18),
        GenerationRequest(STYLE, "a house", seed=7, size=24),
    ]
    images = backend.generate(mixed)
    assert [im.size for im in images] == [(24, 24), (18, 18), (24, 24)]
    assert all(isinstance(im, Image.Image) and im.mode == "RGB" for im in images)


def test_same_seed_same_image_and_batch_equals_one_by_one(backend: DiffusersBackend) -> None:
    batch = backend.generate(REQUESTS)
    one_by_one = [backend.generate([r])[0] for r in REQUESTS]
    for together, alone in zip(batch, one_by_one, strict=True):
        assert together.size == (16, 16)
        assert np.abs(pixels(together) - pixels(alone)).max() <= 2
    again = backend.generate(REQUESTS[:1])[0]
    np.testing.assert_array_equal(pixels(again), pixels(one_by_one[0]))
    assert np.abs(pixels(batch[0]) - pixels(batch[2])).mean() > 1  # same prompt, other seed


def test_qwen_true_cfg_reaches_the_pipeline(tiny_model: Callable[..., Path]) -> None:  # noqa: F811
    path = str(tiny_model("qwen_image"))
    with_cfg = load_backend("diffusers", model_path=path, **OPTIONS["qwen_image"]).generate(REQUESTS[:1])[0]
    no_cfg = load_backend("diffusers", model_path=path, num_inference_steps=2).generate(REQUESTS[:1])[0]
    assert np.abs(pixels(with_cfg) - pixels(no_cfg)).mean() > 0.5
    # Without a negative prompt Qwen-Image would skip true CFG; the backend supplies " ".
    implicit = load_backend("diffusers", model_path=path, num_inference_steps=2, true_cfg_scale=4.0)
    assert implicit.call_kwargs["negative_prompt"] == " "
    np.testing.assert_array_equal(pixels(implicit.generate(REQUESTS[:1])[0]), pixels(with_cfg))


def test_prompt_template_changes_the_prompt(tiny_model: Callable[..., Path]) -> None:  # noqa: F811
    path = str(tiny_model("qwen_image"))
    default = load_backend("diffusers", model_path=path, num_inference_steps=2)
    swapped = load_backend(
        "diffusers", model_path=path, num_inference_steps=2, prompt_template="{style} {content}"
    )
    assert default.prompt_for(REQUESTS[0]) == f"a cat on a wall. {STYLE}"
    assert swapped.prompt_for(REQUESTS[0]) == f"{STYLE} a cat on a wall"
    # Same seed, same model: any pixel difference comes from the prompt (outputs are deterministic).
    difference = pixels(default.generate(REQUESTS[:1])[0]) - pixels(swapped.generate(REQUESTS[:1])[0])
    assert np.abs(difference).max() > 0


def test_too_small_size_is_a_clear_error(tiny_model: Callable[..., Path]) -> None:  # noqa: F811
    flux = load_backend("diffusers", model_path=str(tiny_model("flux")), num_inference_steps=2)
    assert flux.size_multiple == 4  # tiny VAE: factor 2, times FLUX's 2x2 packing
    with pytest.raises(
        ValueError, match="FluxPipeline: image size 2 is smaller than the pipeline's size multiple 4"
    ):
        flux.generate([GenerationRequest(STYLE, "a cat", seed=0, size=2)])


def test_run_generate_writes_a_diffusers_shard(tmp_path: Path, tiny_model: Callable[..., Path]) -> None:  # noqa: F811
    styles = [
        STYLE,
        "In the style of baroque, gold with navy accents, candlelit lighting, velvety surface, in oil impasto.",
    ]
    plan = plan_images(styles, ["a cat", "a car"], per_style=1, seed=0)
    options = {"model_path": str(tiny_model("flux")), **OPTIONS["flux"], "batch_size": 2}
    summary = run_generate(
        plan,
        tmp_path,
        backend="diffusers",
        backend_options=options,
        size=16,
        batch_size=2,
        show_progress=False,
    )
    assert (summary.written, summary.rejected, summary.backend) == (2, 0, "diffusers")
    rows = list(ShardReader(tmp_path))
    assert [r.id for r in rows] == [p.id for p in plan]
    assert {r.backend for r in rows} == {"diffusers"}
    assert all(r.pil_image().size == (16, 16) for r in rows)
    direct = load_backend("diffusers", **options).generate(
        [GenerationRequest(plan[0].style, plan[0].content, plan[0].seed, 16)]
    )
    assert np.abs(pixels(rows[0].pil_image()) - pixels(direct[0])).max() <= 2
