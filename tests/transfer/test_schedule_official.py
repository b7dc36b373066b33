"""The official (DiffSynth) schedule against a hand-written reference, and the diffusers default beside it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift, retrieve_timesteps

from megastyle.testing.flux import FLUX_SCHEDULER_CONFIG
from megastyle.transfer.schedule import (
    OFFICIAL_GUIDANCE,
    OFFICIAL_NUM_STEPS,
    official_scheduler,
    prepare_schedule,
)


def hand_written_official(steps: int) -> tuple[list[float], list[float]]:
    """Shifted sigmas and timesteps by the DiffSynth formulas, in float64 plain Python."""
    sigma_min, shift = 0.003 / 1.002, 3.0
    sigmas = [1.0 + (sigma_min - 1.0) * i / (steps - 1) for i in range(steps)]
    shifted = [shift * s / (1 + (shift - 1) * s) for s in sigmas]
    return shifted, [1000 * s for s in shifted]


def flux_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """FLUX.1-dev's scheduler (dynamic shift)."""
    return FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER_CONFIG)


@pytest.mark.parametrize("steps", [OFFICIAL_NUM_STEPS, 2, 7])
def test_official_schedule_matches_the_formulas(steps: int) -> None:
    scheduler, timesteps = prepare_schedule(flux_scheduler(), "official", steps, image_seq_len=1024)
    sigmas, expected_timesteps = hand_written_official(steps)
    np.testing.assert_allclose(scheduler.sigmas[:-1].numpy(), sigmas, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(timesteps.numpy(), expected_timesteps, rtol=1e-6, atol=1e-4)
    assert scheduler.sigmas[-1].item() == 0.0  # the last Euler step goes to σ = 0, as DiffSynth's
    assert math.isclose(timesteps[0].item(), 1000.0) and math.isclose(
        sigmas[-1], 3 * 0.003 / 1.002 / 1.005988, rel_tol=1e-3
    )


def test_official_euler_steps_follow_sigma_differences() -> None:
    steps = 5
    scheduler, timesteps = prepare_schedule(flux_scheduler(), "official", steps, image_seq_len=64)
    sigmas, _ = hand_written_official(steps)
    sample, velocity = torch.ones(1, 4, 8), torch.full((1, 4, 8), 0.5)
    scheduler.set_begin_index(0)
    for i, t in enumerate(timesteps):
        sample = scheduler.step(velocity, t, sample, return_dict=False)[0]
        next_sigma = sigmas[i + 1] if i + 1 < steps else 0.0
        expected = 1.0 + 0.5 * (next_sigma - sigmas[0])  # x_{i+1} = x_i + v (σ_{i+1} − σ_i), telescoped
        torch.testing.assert_close(sample, torch.full_like(sample, expected), rtol=0, atol=1e-6)


def test_official_schedule_leaves_the_pipeline_scheduler_alone() -> None:
    base = flux_scheduler()
    official, _ = prepare_schedule(base, "official", 4, image_seq_len=1024)
    assert official is not base
    assert base.config.use_dynamic_shifting and not official.config.use_dynamic_shifting
    assert official.config.shift == 3.0 and official_scheduler().config.shift == 3.0


def test_diffusers_schedule_is_flux_pipelines() -> None:
    steps, seq_len = 6, 1024
    ours, timesteps = prepare_schedule(flux_scheduler(), "diffusers", steps, image_seq_len=seq_len)
    reference = flux_scheduler()
    mu = calculate_shift(seq_len, 256, 4096, 0.5, 1.15)
    expected, _ = retrieve_timesteps(
        reference, steps, "cpu", sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu
    )
    assert torch.equal(timesteps, expected) and torch.equal(ours.sigmas, reference.sigmas)
    # At 512² (1024 tokens) the dynamic shift is e^μ ≈ 1.9, not the official static 3.0.
    assert 1.8 < math.exp(mu) < 2.0
    _, official = prepare_schedule(flux_scheduler(), "official", steps, image_seq_len=seq_len)
    assert timesteps[0] == official[0] == 1000.0
    assert (timesteps[1:] - official[1:]).abs().min() > 10.0


def test_schedule_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown schedule"):
        prepare_schedule(flux_scheduler(), "karras", 4, 64)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fixes its own sigmas"):
        prepare_schedule(flux_scheduler(), "official", 4, 64, sigmas=[1.0, 0.5, 0.2, 0.1])
    assert OFFICIAL_GUIDANCE == 3.5 and OFFICIAL_NUM_STEPS == 30
