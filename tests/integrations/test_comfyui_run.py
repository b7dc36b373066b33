"""The ComfyUI nodes run on tiny random models: the shipped workflows, seeds and batches, the LoRA that never
stacks, and equality with ``MegaStyleFluxPipeline`` and ``megastyle score``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch
from comfyui_harness import PACK, load_image_file, run_prompt

# The workflows run at the official settings except these, which would take minutes on a CPU with the tiny
# model (the docs examples do the same).
FAST = {"width": 32, "height": 32, "steps": 2, "max_sequence_length": 16}


def workflow(name: str, **changes: Any) -> dict[str, Any]:
    """A shipped API workflow, with FAST (and ``changes``) applied wherever a node has such an input."""
    prompt = json.loads((PACK / "api_workflows" / f"{name}.json").read_text(encoding="utf-8"))
    for node in prompt.values():
        for key, value in {**FAST, **changes}.items():
            if key in node["inputs"]:
                node["inputs"][key] = value
    return prompt


def node(pack: ModuleType, name: str) -> Any:
    """An instance of one of the pack's nodes, called through its FUNCTION as ComfyUI calls it."""
    cls = pack.NODE_CLASS_MAPPINGS[name]
    instance = cls()
    method = getattr(instance, cls.FUNCTION)

    def call(**kwargs: Any) -> Any:
        with torch.inference_mode():
            result = method(**kwargs)
        return result["result"] if isinstance(result, dict) else result

    return call


def pipe_with_lora(pack: ModuleType, artefacts: SimpleNamespace, strength: float = 1.0) -> Any:
    (pipe,) = node(pack, "MegaStyleFluxLoader")(flux_folder=str(artefacts.flux), dtype="fp32", device="cpu")
    (pipe,) = node(pack, "MegaStyleLoraLoader")(pipe=pipe, lora=str(artefacts.lora_kohya), strength=strength)
    return pipe


def images(artefacts: SimpleNamespace, *indices: int) -> torch.Tensor:
    """Image files as one ComfyUI IMAGE batch, loaded as Load Image loads them."""
    return torch.cat([load_image_file(artefacts.images[i]) for i in indices])


def pil(artefacts: SimpleNamespace, *indices: int) -> list[Any]:
    from PIL import Image

    return [Image.open(artefacts.images[i]).convert("RGB") for i in indices]


def test_the_shipped_workflows_run_in_comfyui(comfyui: SimpleNamespace, pack: ModuleType) -> None:
    """Both API workflows, unchanged but for size and steps, with the models where the README puts them."""
    classes = {**comfyui.core, **pack.NODE_CLASS_MAPPINGS}
    outputs = run_prompt(workflow("megastyle_style_transfer"), classes)
    latent = outputs["5"][0]["samples"]
    assert latent.shape == (1, 4, 16, 16) and latent.dtype == torch.float32
    ((prefix, image),) = comfyui.record.saved
    assert prefix == "megastyle" and image.shape == (1, 32, 32, 3) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1
    scores, text = outputs["9"]
    assert len(scores) == 1 and -1 <= scores[0] <= 1
    assert text == f"=> style score: {scores[0]:.2f}" and comfyui.record.previews == [text]
    # ComfyUI's progress bar moved once per step, and the Cancel button was honoured at every step.
    assert comfyui.modules["comfy.utils"].updates == [(1, 2), (2, 2)]
    assert comfyui.modules["comfy.model_management"].checks == 2

    run_prompt(workflow("megastyle_all_in_one"), classes)
    assert torch.equal(comfyui.record.saved[-1][1], image)  # the all-in-one graph gives the same image


def count_vae_encodes(pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the VAE encoder's calls from now on."""
    calls: list[int] = []
    encode = pipeline.vae.encode

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(args[0]))
        return encode(*args, **kwargs)

    monkeypatch.setattr(pipeline.vae, "encode", counted)
    return calls


def test_sampler_equals_the_pipeline(
    pack: ModuleType, artefacts: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two references × batch 2, stretched, diffusers schedule: the nodes' images are the pipeline's."""
    from megastyle.transfer.latents import unpack_latents
    from megastyle.transfer.loading import load_pipeline

    pipe = pipe_with_lora(pack, artefacts, strength=0.8)
    encodes = count_vae_encodes(pipe.pipeline, monkeypatch)
    (reference,) = node(pack, "MegaStyleReferenceEncode")(
        pipe=pipe, image=images(artefacts, 0, 1), width=32, height=32, resize_mode="default"
    )
    assert encodes == [2]  # both references at once; the sampler reuses them
    settings = dict(
        prompt="A bench", width=32, height=32, steps=2, guidance=3.5, seed=7, schedule="diffusers"
    )
    (latent,) = node(pack, "MegaStyleSampler")(
        pipe=pipe, reference=reference, batch_size=2, max_sequence_length=16, **settings
    )
    (image,) = node(pack, "MegaStyleDecode")(pipe=pipe, latent=latent)
    assert latent["samples"].shape == (4, 4, 16, 16) and image.shape == (4, 32, 32, 3)
    assert encodes == [2]

    expected, _ = load_pipeline(
        artefacts.flux, artefacts.lora_kohya, 0.8, torch.float32, "cpu", progress=False
    )
    call = dict(
        prompt="A bench",
        style_image=pil(artefacts, 0, 1),
        height=32,
        width=32,
        num_inference_steps=2,
        guidance_scale=3.5,
        schedule="diffusers",
        num_images_per_prompt=2,
        reference_resize_mode="default",
        max_sequence_length=16,
    )
    pixels = expected(**call, generator=torch.Generator("cpu").manual_seed(7), output_type="pt").images
    assert torch.equal(image, pixels.permute(0, 2, 3, 1))
    tokens = expected(**call, generator=torch.Generator("cpu").manual_seed(7), output_type="latent").images
    config = expected.vae.config
    raw = (
        unpack_latents(tokens, 32, 32, expected.vae_scale_factor) / config.scaling_factor
        + config.shift_factor
    )
    assert torch.equal(latent["samples"], raw)

    (direct,) = node(pack, "MegaStyleTransfer")(
        pipe=pipe, image=images(artefacts, 0, 1), batch_size=2, resize_mode="default",
        max_sequence_length=16, **settings,
    )  # fmt: skip
    assert torch.equal(direct, image)


def test_a_sampler_size_other_than_the_references_encodes_it_again(
    pack: ModuleType, artefacts: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from megastyle.transfer.loading import load_pipeline

    pipe = pipe_with_lora(pack, artefacts)
    encodes = count_vae_encodes(pipe.pipeline, monkeypatch)
    (reference,) = node(pack, "MegaStyleReferenceEncode")(
        pipe=pipe, image=images(artefacts, 2), width=32, height=32, resize_mode="crop"
    )
    (latent,) = node(pack, "MegaStyleSampler")(
        pipe=pipe, reference=reference, prompt="A car", width=40, height=24, steps=2, guidance=3.5, seed=3,
        schedule="official", batch_size=1, max_sequence_length=16,
    )  # fmt: skip
    (image,) = node(pack, "MegaStyleDecode")(pipe=pipe, latent=latent)
    assert encodes == [1, 1]  # once for 32 × 32, once again for 40 × 24
    expected, _ = load_pipeline(
        artefacts.flux, artefacts.lora_kohya, 1.0, torch.float32, "cpu", progress=False
    )
    pixels = expected(
        prompt="A car", style_image=pil(artefacts, 2), height=24, width=40, num_inference_steps=2,
        guidance_scale=3.5, schedule="official", generator=torch.Generator("cpu").manual_seed(3),
        reference_resize_mode="crop", max_sequence_length=16, output_type="pt",
    ).images  # fmt: skip
    assert image.shape == (1, 24, 40, 3) and torch.equal(image, pixels.permute(0, 2, 3, 1))


def test_a_seed_gives_the_same_images_and_another_seed_others(
    pack: ModuleType, artefacts: SimpleNamespace
) -> None:
    pipe = pipe_with_lora(pack, artefacts)
    transfer = node(pack, "MegaStyleTransfer")

    def run(seed: int) -> torch.Tensor:
        (out,) = transfer(
            pipe=pipe, image=images(artefacts, 0), prompt="A bench", width=32, height=32, steps=2, guidance=3.5,
            seed=seed, schedule="official", batch_size=3, resize_mode="crop", max_sequence_length=16,
        )  # fmt: skip
        return out

    first = run(42)
    assert first.shape == (3, 32, 32, 3)
    assert torch.equal(run(42), first)
    assert not torch.equal(run(43), first)
    assert not torch.equal(first[0], first[1])  # the images of a batch differ from each other


def lora_state(pipeline: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The transformer's weights (LoRA included) and, per LoRA layer, its adapters and their scaling."""
    from peft.tuners.lora import LoraLayer

    transformer = pipeline.transformer
    weights = {k: v.detach().clone() for k, v in transformer.state_dict().items()}
    layers = {
        name: dict(module.scaling)
        for name, module in transformer.named_modules()
        if isinstance(module, LoraLayer)
    }
    return weights, layers


def assert_same_state(
    a: tuple[dict[str, Any], dict[str, Any]], b: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    assert a[0].keys() == b[0].keys()
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert a[1] == b[1]


def test_the_lora_node_never_stacks(pack: ModuleType, artefacts: SimpleNamespace) -> None:
    (base,) = node(pack, "MegaStyleFluxLoader")(flux_folder=str(artefacts.flux), dtype="fp32", device="cpu")
    untouched = lora_state(base.pipeline)
    lora = node(pack, "MegaStyleLoraLoader")
    (once,) = lora(pipe=base, lora=str(artefacts.lora_kohya), strength=0.7)
    state_once = lora_state(once.pipeline)
    assert set(once.pipeline.transformer.peft_config) == {"megastyle"}
    assert {frozenset(scaling) for scaling in state_once[1].values()} == {frozenset({"megastyle"})}

    # ComfyUI runs the node again (same input pipe), the user chains a second LoRA node, or changes the
    # strength and back: always the state of the single run.
    (again,) = lora(pipe=base, lora=str(artefacts.lora_kohya), strength=0.7)
    assert_same_state(lora_state(again.pipeline), state_once)
    (chained,) = lora(pipe=once, lora=str(artefacts.lora_kohya), strength=0.7)
    assert_same_state(lora_state(chained.pipeline), state_once)
    (weaker,) = lora(pipe=base, lora=str(artefacts.lora_kohya), strength=0.2)
    assert lora_state(weaker.pipeline)[1] != state_once[1]
    (back,) = lora(pipe=weaker, lora=str(artefacts.lora_kohya), strength=0.7)
    assert_same_state(lora_state(back.pipeline), state_once)

    # Another LoRA file replaces this one: what is left is what that file alone gives.
    (other,) = lora(pipe=once, lora=str(artefacts.lora_diffusers), strength=1.0)
    state_other = lora_state(other.pipeline)
    (fresh,) = node(pack, "MegaStyleFluxLoader")(flux_folder=str(artefacts.flux), dtype="fp32", device="cpu")
    (fresh_other,) = lora(pipe=fresh, lora=str(artefacts.lora_diffusers), strength=1.0)
    assert_same_state(state_other, lora_state(fresh_other.pipeline))

    # The loader's own pipe still means "no LoRA": running with it takes the adapter off again.
    transfer = dict(
        image=images(artefacts, 0), prompt="A bench", width=32, height=32, steps=2, guidance=3.5, seed=1,
        schedule="official", batch_size=1, resize_mode="crop", max_sequence_length=16,
    )  # fmt: skip
    (plain,) = node(pack, "MegaStyleTransfer")(pipe=base, **transfer)
    assert_same_state(lora_state(base.pipeline), untouched)
    assert not getattr(base.pipeline.transformer, "peft_config", None)
    (styled,) = node(pack, "MegaStyleTransfer")(pipe=once, **transfer)
    assert_same_state(lora_state(once.pipeline), state_once)
    assert not torch.equal(plain, styled)


def test_a_single_file_transformer_with_the_rest_from_a_folder(
    comfyui: SimpleNamespace, pack: ModuleType, artefacts: SimpleNamespace
) -> None:
    """ComfyUI keeps FLUX's transformer as one file in models/unet: the folder then needs no transformer weights."""
    from safetensors.torch import load_file, save_file

    models = comfyui.base / "models"
    folder = models / "diffusers" / "FLUX-no-transformer"
    shutil.copytree(artefacts.flux, folder)
    weights = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    save_file(load_file(str(weights)), str(models / "unet" / "flux-tiny.safetensors"))
    weights.unlink()
    loader = pack.NODE_CLASS_MAPPINGS["MegaStyleFluxLoader"]
    choices = loader.INPUT_TYPES()
    assert "FLUX-no-transformer" in choices["required"]["flux_folder"][0]
    assert choices["optional"]["transformer_file"][0] == ["none", "flux-tiny.safetensors"]
    (pipe,) = node(pack, "MegaStyleFluxLoader")(
        flux_folder="FLUX-no-transformer",
        dtype="auto",
        device="auto",
        transformer_file="flux-tiny.safetensors",
    )
    (reference,) = node(pack, "MegaStyleFluxLoader")(flux_folder="FLUX.1-dev", dtype="auto", device="auto")
    loaded, expected = pipe.pipeline.transformer.state_dict(), reference.pipeline.transformer.state_dict()
    assert loaded.keys() == expected.keys() and all(torch.equal(loaded[k], expected[k]) for k in expected)

    from megastyle.config import ConfigError

    pickled = models / "unet" / "flux-tiny.ckpt"
    torch.save({}, pickled)
    with pytest.raises(ConfigError, match="never unpickled"):
        node(pack, "MegaStyleFluxLoader")(
            flux_folder="FLUX-no-transformer", dtype="auto", device="auto", transformer_file="flux-tiny.ckpt"
        )


@pytest.mark.parametrize("source", ["official", "folder"])
def test_style_score_equals_megastyle_score(
    source: str, pack: ModuleType, artefacts: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    from megastyle.encode.commands import ScoreConfig, run_score

    if source == "official":
        loaded = dict(encoder=str(artefacts.encoder_pth), base_model=str(artefacts.siglip))
        cli = dict(official_pth=artefacts.encoder_pth, base_model=artefacts.siglip)
    else:
        loaded = dict(encoder=str(artefacts.encoder_dir), base_model="")
        cli = dict(encoder=artefacts.encoder_dir)
    (encoder,) = node(pack, "MegaStyleEncoderLoader")(device="cpu", dtype="float32", **loaded)
    score = node(pack, "MegaStyleStyleScore")

    scores, text = score(encoder=encoder, reference=images(artefacts, 0), images=images(artefacts, 1, 2, 3))
    assert len(scores) == 3 and len(text.splitlines()) == 3
    capsys.readouterr()
    for i, value in zip((1, 2, 3), scores, strict=True):
        expected = run_score(
            ScoreConfig(image_a=artefacts.images[0], image_b=artefacts.images[i], device="cpu", **cli)
        )
        printed = capsys.readouterr().out.strip().splitlines()[-1]
        assert value == expected
        assert text.splitlines()[i - 1] == printed == f"=> style score: {expected:.2f}"

    # Equal batches pair one to one.
    pairwise, _ = score(encoder=encoder, reference=images(artefacts, 0, 0), images=images(artefacts, 1, 2))
    assert pairwise == scores[:2]
    with pytest.raises(ValueError, match="2 references for 3 images"):
        score(encoder=encoder, reference=images(artefacts, 0, 1), images=images(artefacts, 1, 2, 3))


def test_the_official_encoder_needs_its_base(pack: ModuleType, artefacts: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="base_model"):
        node(pack, "MegaStyleEncoderLoader")(encoder=str(artefacts.encoder_pth), device="cpu", base_model="")
    with pytest.raises(FileNotFoundError, match="no such style encoder"):
        node(pack, "MegaStyleEncoderLoader")(encoder=str(Path("nowhere.pth")), device="cpu")
