"""The diffusers schedule against FLUX's dynamic-shift formula for any scheduler config, and the edges of both
schedules: one step, bad step counts, the device asked for, a scheduler with its own flow sigmas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from megastyle.transfer.schedule import (
    diffusers_sigmas,
    official_scheduler,
    official_sigmas,
    prepare_schedule,
)

# Not FLUX.1-dev's values, so a config key read under another name (or not read) shows.
ODD_CONFIG = {"base_image_seq_len": 128, "max_image_seq_len": 2048, "base_shift": 0.3, "max_shift": 1.4}


def dynamic_shift_by_hand(steps: int, seq_len: int, base_len: int, max_len: int, base: float, top: float):
    """FLUX's schedule: σ = linspace(1, 1/N, N), μ linear in the token count, σ' = e^μ / (e^μ + 1/σ − 1)."""
    mu = base + (top - base) * (seq_len - base_len) / (max_len - base_len)
    sigmas = [1.0 - (1.0 - 1.0 / steps) * i / (steps - 1) if steps > 1 else 1.0 for i in range(steps)]
    shifted = [math.exp(mu) / (math.exp(mu) + 1 / s - 1) for s in sigmas]
    return mu, shifted


@pytest.mark.parametrize("seq_len", [128, 1024, 2048])
def test_diffusers_schedule_reads_every_shift_setting_of_the_config(seq_len: int) -> None:
    steps = 6
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, **ODD_CONFIG)
    ours, timesteps = prepare_schedule(scheduler, "diffusers", steps, image_seq_len=seq_len)
    _, shifted = dynamic_shift_by_hand(steps, seq_len, 128, 2048, 0.3, 1.4)
    np.testing.assert_allclose(ours.sigmas[:-1].numpy(), shifted, rtol=1e-5)
    np.testing.assert_allclose(timesteps.numpy(), [1000 * s for s in shifted], rtol=1e-5)


def test_given_sigmas_set_the_step_count() -> None:
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, **ODD_CONFIG)
    given = [1.0, 0.75, 0.5]
    ours, timesteps = prepare_schedule(scheduler, "diffusers", 10, image_seq_len=128, sigmas=given)
    # At 128 tokens μ = base_shift: σ' = e^0.3 / (e^0.3 + 1/σ − 1).
    expected = [math.exp(0.3) / (math.exp(0.3) + 1 / s - 1) for s in given]
    assert len(timesteps) == 3
    np.testing.assert_allclose(ours.sigmas[:-1].numpy(), expected, rtol=1e-5)


def test_a_scheduler_with_its_own_flow_sigmas_gets_the_step_count_and_the_default_shift() -> None:
    # UniPC with flow sigmas computes its own sigmas from the step count (FluxPipeline then passes none),
    # and its config has no FLUX shift settings, so FluxPipeline's defaults (256, 4096, 0.5, 1.15) apply.
    config = {"use_flow_sigmas": True, "prediction_type": "flow_prediction", "use_dynamic_shifting": True}
    steps, seq_len = 5, 1024
    ours, timesteps = prepare_schedule(UniPCMultistepScheduler(**config), "diffusers", steps, seq_len)
    mu, _ = dynamic_shift_by_hand(steps, seq_len, 256, 4096, 0.5, 1.15)
    reference = UniPCMultistepScheduler(**config)
    reference.set_timesteps(steps, mu=mu)
    assert torch.equal(timesteps, reference.timesteps) and torch.equal(ours.sigmas, reference.sigmas)
    other = UniPCMultistepScheduler(**config)
    other.set_timesteps(steps, mu=mu + 0.1)
    assert not torch.equal(other.sigmas, reference.sigmas)  # μ changes this scheduler's sigmas


@pytest.mark.parametrize("schedule", ["official", "diffusers", "diffusers, flow sigmas"])
def test_timesteps_are_on_the_device_asked_for(schedule: str) -> None:
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    if schedule == "diffusers, flow sigmas":
        scheduler = UniPCMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction")
    _, timesteps = prepare_schedule(scheduler, schedule.split(",")[0], 4, image_seq_len=256, device="meta")
    assert timesteps.device.type == "meta"


def test_one_step_is_a_schedule_and_zero_steps_name_the_count() -> None:
    assert official_sigmas(1) == [1.0]
    assert diffusers_sigmas(1).tolist() == [1.0]
    for make in (official_sigmas, diffusers_sigmas):
        with pytest.raises(ValueError, match=r"num_inference_steps must be >= 1, got 0"):
            make(0)


def test_official_schedule_refuses_sigmas_and_says_where_they_belong() -> None:
    expected = "^schedule='official' fixes its own sigmas; pass sigmas only with schedule='diffusers'$"
    with pytest.raises(ValueError, match=expected):
        prepare_schedule(FlowMatchEulerDiscreteScheduler(), "official", 4, 256, sigmas=[1.0, 0.5])


def test_the_official_scheduler_alone_feeds_1000_sigma_to_the_model() -> None:
    scheduler = official_scheduler()
    scheduler.set_timesteps(sigmas=official_sigmas(3))
    shifted = [3 * s / (1 + 2 * s) for s in official_sigmas(3)]
    np.testing.assert_allclose(scheduler.timesteps.numpy(), [1000 * s for s in shifted], rtol=1e-6)


def test_the_official_schedule_keeps_the_models_timestep_scale() -> None:
    # The DiT is fed num_train_timesteps · σ'; FLUX's is 1000, and a model trained on another scale keeps it.
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=500, shift=1.0, use_dynamic_shifting=True)
    _, timesteps = prepare_schedule(scheduler, "official", 3, image_seq_len=256)
    shifted = [3 * s / (1 + 2 * s) for s in official_sigmas(3)]
    np.testing.assert_allclose(timesteps.numpy(), [500 * s for s in shifted], rtol=1e-6)
