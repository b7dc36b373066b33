"""diffusers backend without real models: prompts, sizes, signature-driven kwargs, batching, errors."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from megastyle.curate.generators import BACKENDS, GenerationRequest, TextToImageBackend, load_backend
from megastyle.curate.generators.diffusers_backend import (
    DEFAULT_PROMPT_TEMPLATE,
    DiffusersBackend,
    check_prompt_template,
    compose_prompt,
    round_to_multiple,
)

STYLE = "In the style of ukiyo-e, indigo with coral accents, flat even lighting, matte surface, in woodblock print."


def test_prompt_template_default_and_custom() -> None:
    assert DEFAULT_PROMPT_TEMPLATE == "{content}. {style}"
    assert compose_prompt(DEFAULT_PROMPT_TEMPLATE, STYLE, " A cat on a roof. ") == f"A cat on a roof. {STYLE}"
    assert compose_prompt("{style} Scene: {content}", "Ink.", "two birds") == "Ink. Scene: two birds"
    for bad, match in [
        ("{content}", "missing"),
        ("{style} {content} {mood}", "unknown"),
        ("{style", "valid format"),
    ]:
        with pytest.raises(ValueError, match=match):
            check_prompt_template(bad)


@pytest.mark.parametrize(
    ("size", "multiple", "expected"), [(32, 16, 32), (30, 4, 32), (29, 4, 28), (18, 8, 16), (20, 8, 24)]
)
def test_round_to_multiple(size: int, multiple: int, expected: int) -> None:
    assert round_to_multiple(size, multiple) == expected


def test_round_to_multiple_refuses_sizes_below_one_multiple() -> None:
    with pytest.raises(ValueError, match="image size 7 is smaller than the pipeline's size multiple 8"):
        round_to_multiple(7, 8, pipeline="QwenImagePipeline")


def test_missing_or_non_diffusers_paths_fail_clearly(tmp_path: Path) -> None:
    assert "diffusers" in BACKENDS
    with pytest.raises(FileNotFoundError, match=r"no local pipeline directory.*hub is never used"):
        load_backend("diffusers", model_path=str(tmp_path / "Qwen-Image"))
    with pytest.raises(FileNotFoundError, match=r"no model_index\.json"):
        load_backend("diffusers", model_path=str(tmp_path))


class FakePipeline:
    """Records its calls; each image is a flat grey keyed by its generator's seed."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.calls: list[dict[str, Any]] = []
        self.image_processor = SimpleNamespace(config=SimpleNamespace(vae_scale_factor=16))

    @classmethod
    def from_pretrained(cls, path: Path, **options: Any) -> FakePipeline:
        return cls({"path": path, **options})

    def to(self, device: str) -> FakePipeline:
        self.device = device
        return self

    def set_progress_bar_config(self, **options: Any) -> None:
        self.progress = options

    def __call__(
        self,
        prompt: list[str],
        height: int,
        width: int,
        generator: list[Any],
        num_inference_steps: int = 50,
        guidance_scale: float = 3.5,
        true_cfg_scale: float = 1.0,
        negative_prompt: list[str] | None = None,
        output_type: str = "pil",
    ) -> SimpleNamespace:
        self.calls.append(dict(locals()) | {"seeds": [g.initial_seed() for g in generator]})
        grey = [np.full((height, width, 3), (g.initial_seed() % 10) / 10, np.float32) for g in generator]
        if any(p.startswith("nan") for p in prompt):
            grey[0][0, 0, 0] = np.nan
        return SimpleNamespace(images=grey)


class KwargsPipeline(FakePipeline):
    """SDXL-like: named guidance_scale, everything else swallowed by **kwargs."""

    def __call__(  # type: ignore[override]
        self,
        prompt: list[str],
        height: int,
        width: int,
        generator: list[Any],
        num_inference_steps: int = 50,
        guidance_scale: float = 5.0,
        output_type: str = "pil",
        **kwargs: Any,
    ) -> SimpleNamespace:
        return super().__call__(prompt, height, width, generator, num_inference_steps, guidance_scale)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "model_index.json").write_text("{}")
    return tmp_path


def test_fake_pipeline_receives_signature_driven_kwargs_and_one_generator_per_request(
    model_dir: Path,
) -> None:
    backend = DiffusersBackend(
        model_dir,
        FakePipeline,
        dtype="float32",
        device="cpu",
        num_inference_steps=3,
        true_cfg_scale=4.0,
        negative_prompt=" ",
        batch_size=2,
    )
    assert isinstance(backend, TextToImageBackend) and backend.name == "diffusers"
    assert backend.pipeline.options["local_files_only"] is True and backend.size_multiple == 16
    requests = [GenerationRequest(STYLE, f"object {i}", seed=i, size=32 if i != 2 else 48) for i in range(5)]
    images = backend.generate(requests)
    assert [im.size for im in images] == [(32, 32), (32, 32), (48, 48), (32, 32), (32, 32)]
    assert [im.getpixel((0, 0))[0] for im in images] == [round(i / 10 * 255) for i in range(5)]
    calls = backend.pipeline.calls
    assert [c["seeds"] for c in calls] == [[0, 1], [3, 4], [2]]  # grouped by size, batches of 2
    first = calls[0]
    assert first["prompt"] == [f"object 0. {STYLE}", f"object 1. {STYLE}"]
    assert (first["num_inference_steps"], first["true_cfg_scale"], first["guidance_scale"]) == (3, 4.0, 3.5)
    assert first["negative_prompt"] == [" ", " "] and first["output_type"] == "np"
    assert backend.describe()["true_cfg_scale"] == 4.0 and backend.model_id == model_dir.name


def test_non_multiple_sizes_are_rendered_rounded_and_returned_as_requested(model_dir: Path) -> None:
    backend = DiffusersBackend(model_dir, FakePipeline, device="cpu", num_inference_steps=1)
    image = backend.generate([GenerationRequest(STYLE, "a cat", seed=3, size=40)])[0]
    assert backend.pipeline.calls[0]["height"] == 48 and image.size == (40, 40)
    with pytest.raises(ValueError, match="smaller than the pipeline's size multiple 16"):
        backend.generate([GenerationRequest(STYLE, "a cat", seed=3, size=8)])


def test_kwargs_the_pipeline_does_not_name_are_refused(model_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"does not accept \['true_cfg_scale'\]"):
        DiffusersBackend(model_dir, KwargsPipeline, device="cpu", true_cfg_scale=4.0)
    with pytest.raises(ValueError, match=r"does not accept \['strength'\]"):
        DiffusersBackend(model_dir, FakePipeline, device="cpu", extra_kwargs={"strength": 0.5})
    with pytest.raises(ValueError, match="may not set"):
        DiffusersBackend(model_dir, FakePipeline, device="cpu", extra_kwargs={"height": 64})
    with pytest.raises(ValueError, match="dtype must be one of"):
        DiffusersBackend(model_dir, FakePipeline, device="cpu", dtype="int8")
    with pytest.raises(ValueError, match="no pipeline class 'NoSuchPipeline'"):
        DiffusersBackend(model_dir, "NoSuchPipeline", device="cpu")
    sdxl_like = DiffusersBackend(model_dir, KwargsPipeline, device="cpu", guidance_scale=7.0)
    assert not sdxl_like.accepts("true_cfg_scale") and sdxl_like.call_kwargs["guidance_scale"] == 7.0


def test_non_finite_output_raises_naming_the_request(model_dir: Path) -> None:
    backend = DiffusersBackend(model_dir, FakePipeline, device="cpu")
    with pytest.raises(ValueError, match="non-finite pixels for seed 5"):
        backend.generate([GenerationRequest(STYLE, "nan cat", seed=5, size=16)])


def test_model_id_of_a_hub_cache_snapshot_is_the_repo_name(tmp_path: Path) -> None:
    snapshot = tmp_path / "models--Qwen--Qwen-Image" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}")
    assert DiffusersBackend(snapshot, FakePipeline, device="cpu").model_id == "Qwen/Qwen-Image"


def test_true_cfg_without_negative_prompt_gets_a_single_space(model_dir: Path) -> None:
    backend = DiffusersBackend(model_dir, FakePipeline, device="cpu", true_cfg_scale=4.0)
    backend.generate([GenerationRequest(STYLE, "a cat", seed=1, size=16)])
    assert backend.pipeline.calls[0]["negative_prompt"] == [" "]
    plain = DiffusersBackend(model_dir, FakePipeline, device="cpu", true_cfg_scale=1.0)
    assert "negative_prompt" not in plain.call_kwargs
