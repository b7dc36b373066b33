"""The MegaStyle flow-matching loss on the tiny FLUX transformer: target tokens only, it learns, σ sampling, targets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from megastyle.testing.fixtures import tiny_model, tiny_models_root  # noqa: F401  (pytest fixtures)
from megastyle.testing.flux import tiny_flux_transformer
from megastyle.transfer.lora import kohya_targets
from megastyle.transfer.train import (
    add_lora,
    dynamic_shift_mu,
    flow_matching_loss,
    sample_sigmas,
    target_modules_regex,
)
from megastyle.transfer.train_config import TrainTransferConfig

LATENT = 8  # an 8×8 VAE latent → a 4×4 token grid (16 target + 16 reference tokens)


def lora_transformer(random_b: bool = False, **overrides: object) -> torch.nn.Module:
    """The tiny transformer with the training LoRA; ``random_b``: B non-zero, as after some training."""
    torch.manual_seed(0)
    transformer = tiny_flux_transformer()
    add_lora(transformer, TrainTransferConfig(rank=4, **overrides))
    if random_b:
        for name, param in transformer.named_parameters():
            if "lora_B" in name:
                param.data.normal_(0, 0.05)
    return transformer.train()


def fixed_batch(seed: int = 0, batch: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "target_latents": torch.randn(batch, 16, 16, generator=g),
        "reference_latents": torch.randn(batch, 16, 16, generator=g),
        "prompt_embeds": torch.randn(batch, 5, 32, generator=g),
        "pooled": torch.randn(batch, 32, generator=g),
        "sigmas": torch.rand(batch, generator=g),
        "noise": torch.randn(batch, 16, 16, generator=g),
    }


def loss_of(transformer: torch.nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
    return flow_matching_loss(
        transformer,
        b["target_latents"],
        b["reference_latents"],
        b["prompt_embeds"],
        b["pooled"],
        b["sigmas"],
        b["noise"],
        1.0,
        LATENT,
        LATENT,
    )


def test_gradient_reaches_only_the_target_slice_of_the_prediction() -> None:
    transformer = lora_transformer(random_b=True)
    captured: list[torch.Tensor] = []

    def keep_output(
        module: torch.nn.Module, args: object, kwargs: object, output: tuple[torch.Tensor]
    ) -> None:
        output[0].retain_grad()  # the full [reference, target] prediction, before the target is sliced off
        captured.append(output[0])

    transformer.register_forward_hook(keep_output, with_kwargs=True)
    batch = fixed_batch()
    loss_of(transformer, batch).backward()
    (prediction,) = captured
    assert prediction.shape[1] == 32  # 16 reference + 16 target tokens went through the transformer
    grad = prediction.grad
    assert grad is not None
    assert float(grad[:, :16].abs().max()) == 0.0  # reference tokens: no loss
    assert float(grad[:, 16:].abs().min(dim=-1).values.max()) > 0.0
    # The reference still conditions the target through attention: its latents get a gradient.
    reference = batch["reference_latents"].clone().requires_grad_(True)
    loss_of(transformer, batch | {"reference_latents": reference}).backward()
    assert float(reference.grad.abs().max()) > 0.0


def test_loss_uses_the_inference_transformer_step(tiny_model: Callable[..., Path]) -> None:  # noqa: F811
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline

    pipe = MegaStyleFluxPipeline.from_pretrained(str(tiny_model("flux")))
    add_lora(pipe.transformer, TrainTransferConfig(rank=4))
    b = fixed_batch(seed=1)
    sigma = b["sigmas"][:, None, None]
    noisy = (1 - sigma) * b["target_latents"] + sigma * b["noise"]
    size = LATENT * pipe.vae_scale_factor  # the image size whose latent grid is LATENT × LATENT
    with torch.no_grad():
        velocity = pipe.transformer_step(
            noisy, b["reference_latents"], b["sigmas"] * 1000, b["prompt_embeds"], b["pooled"],
            torch.zeros(5, 3), torch.ones(2), height=size, width=size,
        )  # fmt: skip
        expected = ((velocity - (b["noise"] - b["target_latents"])) ** 2).mean()
        torch.testing.assert_close(loss_of(pipe.transformer, b), expected)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch() -> None:
    transformer = lora_transformer()
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-2)
    batch = fixed_batch(seed=2)
    losses = []
    for _ in range(12):
        loss = loss_of(transformer, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses
    # Only LoRA weights trained.
    assert all(".lora_" in n for n, p in transformer.named_parameters() if p.requires_grad)


def test_default_targets_are_the_official_modules() -> None:
    transformer = lora_transformer()
    lora = {n.split(".lora_")[0] for n, p in transformer.named_parameters() if p.requires_grad}
    official = {m for g, pieces in kohya_targets(transformer).items() if "_blocks_" in g for m in pieces}
    assert (
        lora == official
    )  # attention, MLP and AdaLN modulation of both block kinds; not proj_out/x_embedder
    config = transformer.peft_config["megastyle"]
    assert config.lora_alpha == 4 and config.r == 4  # alpha = rank, as the official


def test_target_pattern_semantics() -> None:
    import re

    regex = target_modules_regex(["to_q", "single_transformer_blocks.*.proj_out"])
    assert re.fullmatch(regex, "transformer_blocks.0.attn.to_q")
    assert re.fullmatch(regex, "single_transformer_blocks.12.proj_out")
    assert not re.fullmatch(regex, "proj_out")
    assert not re.fullmatch(regex, "transformer_blocks.0.attn.to_qq")


@pytest.mark.parametrize(
    ("sampling", "median"),
    [("uniform", 0.5), ("logit_normal", 0.5), ("shift", 0.75), ("dynamic_shift", 0.6525)],
)
def test_sigma_sampling(sampling: str, median: float) -> None:
    cfg = TrainTransferConfig(timestep_sampling=sampling)
    # FLUX.1-dev's shift at 512² (1024 tokens): μ = 0.5 + 0.65 · (1024 − 256) / 3840 = 0.63, median e^μ/(e^μ+1).
    mu = dynamic_shift_mu({}, 1024)
    assert mu == pytest.approx(0.63)
    sigmas = sample_sigmas(20000, torch.Generator().manual_seed(0), cfg, mu)
    assert float(sigmas.min()) > 0 and float(sigmas.max()) < 1
    assert float(sigmas.median()) == pytest.approx(median, abs=0.02)  # shift 3: 3u/(1+2u) at u = 0.5
    again = sample_sigmas(20000, torch.Generator().manual_seed(0), cfg, mu)
    assert torch.equal(sigmas, again)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    grads = []
    for checkpointing in (False, True):
        transformer = lora_transformer(random_b=True)
        if checkpointing:
            transformer.enable_gradient_checkpointing()
        loss_of(transformer, fixed_batch(seed=3)).backward()
        grads.append({n: p.grad for n, p in transformer.named_parameters() if p.requires_grad})
    assert all(g is not None and float(g.abs().max()) > 0 for g in grads[1].values())
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-5, atol=1e-7)
