"""Part 4: style transfer — MegaStyle-FLUX on diffusers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from megastyle._lazy import lazy_exports

# Lazy exports: importing the package must not pull in diffusers.
_EXPORTS: dict[str, str] = {
    "pack_latents": "latents",
    "unpack_latents": "latents",
    "token_grid": "latents",
    "target_ids": "latents",
    "reference_ids": "latents",
    "join_reference": "latents",
    "split_target": "latents",
    "predict_target_velocity": "latents",
    "ScheduleName": "schedule",
    "SCHEDULES": "schedule",
    "OFFICIAL_GUIDANCE": "schedule",
    "OFFICIAL_NUM_STEPS": "schedule",
    "OFFICIAL_SHIFT": "schedule",
    "OFFICIAL_SIGMA_MAX": "schedule",
    "OFFICIAL_SIGMA_MIN": "schedule",
    "DIFFUSERS_NUM_STEPS": "schedule",
    "official_sigmas": "schedule",
    "diffusers_sigmas": "schedule",
    "official_scheduler": "schedule",
    "prepare_schedule": "schedule",
    "MegaStyleFluxPipeline": "pipeline",
}

__all__ = [
    "DIFFUSERS_NUM_STEPS",
    "OFFICIAL_GUIDANCE",
    "OFFICIAL_NUM_STEPS",
    "OFFICIAL_SHIFT",
    "OFFICIAL_SIGMA_MAX",
    "OFFICIAL_SIGMA_MIN",
    "SCHEDULES",
    "MegaStyleFluxPipeline",
    "ScheduleName",
    "diffusers_sigmas",
    "join_reference",
    "official_scheduler",
    "official_sigmas",
    "pack_latents",
    "predict_target_velocity",
    "prepare_schedule",
    "reference_ids",
    "split_target",
    "target_ids",
    "token_grid",
    "unpack_latents",
]

if TYPE_CHECKING:
    from megastyle.transfer.latents import (
        join_reference,
        pack_latents,
        predict_target_velocity,
        reference_ids,
        split_target,
        target_ids,
        token_grid,
        unpack_latents,
    )
    from megastyle.transfer.pipeline import MegaStyleFluxPipeline
    from megastyle.transfer.schedule import (
        DIFFUSERS_NUM_STEPS,
        OFFICIAL_GUIDANCE,
        OFFICIAL_NUM_STEPS,
        OFFICIAL_SHIFT,
        OFFICIAL_SIGMA_MAX,
        OFFICIAL_SIGMA_MIN,
        SCHEDULES,
        ScheduleName,
        diffusers_sigmas,
        official_scheduler,
        official_sigmas,
        prepare_schedule,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
