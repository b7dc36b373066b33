"""Denoising schedules: diffusers' FLUX default (dynamic shift) and the official MegaStyle one (static shift 3.0).

The official MegaStyle-FLUX inference runs DiffSynth-Studio's ``FlowMatchScheduler`` with its defaults
(checked in ``diffsynth/schedulers/flow_match.py``): ``sigma_max = 1``, ``sigma_min = 0.003 / 1.002``,

    σ_i  = linspace(sigma_max, sigma_min, N)[i]             (denoising_strength = 1)
    σ'_i = shift · σ_i / (1 + (shift − 1) · σ_i)             (static shift = 3.0)
    t_i  = 1000 · σ'_i                                       (timestep fed to the DiT)
    x_{i+1} = x_i + v_i · (σ'_{i+1} − σ'_i),  σ'_N = 0        (Euler step)

with N = 30 steps and embedded guidance 3.5. diffusers' ``FlowMatchEulerDiscreteScheduler`` applies the very
same shift formula to explicit ``sigmas`` when ``use_dynamic_shifting=False`` and ``shift=3.0``, derives
``timesteps = 1000 · σ'`` and appends a terminal σ = 0, so the official schedule is that scheduler configured
statically and given ``sigmas = linspace(1, 0.003/1.002, N)`` (computed in float32 like DiffSynth's torch code).

diffusers' ``FluxPipeline`` instead uses ``sigmas = linspace(1, 1/N, N)`` (28 steps by default) and the
resolution-dependent "dynamic" shift of FLUX.1-dev's ``scheduler_config.json``:
``σ' = e^μ / (e^μ + (1/σ − 1))`` with ``μ`` linear in the target token count (0.5 at 256 tokens, 1.15 at
4096); at 512² (1024 tokens) that is an effective shift of about 1.9 instead of 3.0, so the two schedules give
different images for the same seed.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.flux.pipeline_flux import calculate_shift

__all__ = [
    "DIFFUSERS_NUM_STEPS",
    "OFFICIAL_GUIDANCE",
    "OFFICIAL_NUM_STEPS",
    "OFFICIAL_SHIFT",
    "OFFICIAL_SIGMA_MAX",
    "OFFICIAL_SIGMA_MIN",
    "SCHEDULES",
    "ScheduleName",
    "diffusers_sigmas",
    "official_scheduler",
    "official_sigmas",
    "prepare_schedule",
]

ScheduleName = Literal["diffusers", "official"]
SCHEDULES: tuple[str, ...] = ("diffusers", "official")

OFFICIAL_SHIFT = 3.0
OFFICIAL_SIGMA_MAX = 1.0
OFFICIAL_SIGMA_MIN = 0.003 / 1.002
OFFICIAL_NUM_STEPS = 30
OFFICIAL_GUIDANCE = 3.5
DIFFUSERS_NUM_STEPS = 28  # FluxPipeline's default


def official_sigmas(num_inference_steps: int = OFFICIAL_NUM_STEPS) -> list[float]:
    """Unshifted official sigmas ``linspace(1, 0.003/1.002, N)`` in float32 (the shift is the scheduler's job)."""
    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    return torch.linspace(OFFICIAL_SIGMA_MAX, OFFICIAL_SIGMA_MIN, num_inference_steps).tolist()


def diffusers_sigmas(num_inference_steps: int = DIFFUSERS_NUM_STEPS) -> np.ndarray:
    """FluxPipeline's unshifted sigmas ``linspace(1, 1/N, N)``."""
    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    return np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)


def official_scheduler(config: Any | None = None) -> FlowMatchEulerDiscreteScheduler:
    """A ``FlowMatchEulerDiscreteScheduler`` with the official static shift 3.0 (from ``config`` if given)."""
    overrides: dict[str, Any] = {
        "shift": OFFICIAL_SHIFT,
        "use_dynamic_shifting": False,
        "shift_terminal": None,
    }
    # Any sigma re-spacing option would move it away from DiffSynth's plain linspace.
    overrides |= {"use_karras_sigmas": False, "use_exponential_sigmas": False, "use_beta_sigmas": False}
    overrides |= {"invert_sigmas": False, "stochastic_sampling": False}
    if config is None:
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, **overrides)
    return FlowMatchEulerDiscreteScheduler.from_config(config, **overrides)


def prepare_schedule(
    scheduler: FlowMatchEulerDiscreteScheduler,
    schedule: ScheduleName,
    num_inference_steps: int,
    image_seq_len: int,
    device: torch.device | str | None = None,
    sigmas: list[float] | np.ndarray | None = None,
) -> tuple[FlowMatchEulerDiscreteScheduler, torch.Tensor]:
    """Set timesteps for ``schedule`` → (scheduler to step with, timesteps); "official" uses a fresh scheduler."""
    if schedule == "official":
        if sigmas is not None:
            raise ValueError(
                "schedule='official' fixes its own sigmas; pass sigmas only with schedule='diffusers'"
            )
        official = official_scheduler(scheduler.config)
        official.set_timesteps(sigmas=official_sigmas(num_inference_steps), device=device)
        return official, official.timesteps
    if schedule != "diffusers":
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")
    # Same sequence of calls as diffusers' FluxPipeline, so the no-reference output matches it exactly.
    if sigmas is None:
        sigmas = diffusers_sigmas(num_inference_steps)
    if scheduler.config.get("use_flow_sigmas", False):
        sigmas = None
    mu = calculate_shift(
        image_seq_len,
        scheduler.config.get("base_image_seq_len", 256),
        scheduler.config.get("max_image_seq_len", 4096),
        scheduler.config.get("base_shift", 0.5),
        scheduler.config.get("max_shift", 1.15),
    )
    if sigmas is None:
        scheduler.set_timesteps(num_inference_steps, device=device, mu=mu)
    else:  # like diffusers' retrieve_timesteps: the step count follows len(sigmas)
        scheduler.set_timesteps(sigmas=sigmas, device=device, mu=mu)
    return scheduler, scheduler.timesteps
