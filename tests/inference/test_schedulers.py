"""Sampler names -> diffusers schedulers."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from domain.catalog import SCHEDULERS, ModelPreset
from inference.pipelines import PipelineCache
from inference.schedulers import make_scheduler

DPMPP = "dpmsolver++"
EXPECTED: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {"use_karras_sigmas": False}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False, "algorithm_type": DPMPP}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True, "algorithm_type": DPMPP}),
    "ddim": ("DDIMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {"predict_x0": True}),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_each_sampler_keeps_the_models_noise_schedule(
    cache: PipelineCache, preset: ModelPreset, name: str
) -> None:
    base = cache.scheduler_config(preset)  # the tiny model was saved with Karras sigmas on
    scheduler = make_scheduler(name, base)
    class_name, settings = EXPECTED[name]
    assert type(scheduler).__name__ == class_name
    assert {key: scheduler.config[key] for key in settings} == settings
    assert scheduler.config.beta_schedule == base.beta_schedule == "scaled_linear"
    assert scheduler.denoised is None
    # pipelines look at step's parameters to pass the generator: the wrapper must show the original's
    assert "generator" in inspect.signature(scheduler.step).parameters or name == "unipc"


def test_each_job_gets_a_fresh_scheduler(cache: PipelineCache, preset: ModelPreset) -> None:
    base = cache.scheduler_config(preset)
    assert make_scheduler("euler", base) is not make_scheduler("euler", base)


def test_unknown_sampler() -> None:
    with pytest.raises(ValueError, match="'heun' is not one of euler"):
        make_scheduler("heun", {})
