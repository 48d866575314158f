"""Multi-prompt blending and --chaos, checked on the embeddings themselves."""

from __future__ import annotations

import pytest
import torch

from domain.catalog import ModelPreset
from domain.spec import JobSpec
from inference.pipelines import PipelineCache
from inference.pipelines.conditioning import encode_conditioning


def embeds(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec, seeds: list[int] | None = None
) -> torch.Tensor:
    pipe = cache.text_to_image(preset)
    return encode_conditioning(pipe, cache.family(preset), spec, seeds or [1, 2]).prompt_embeds


def test_weights_are_normalised_and_negative_weights_subtract(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec
) -> None:
    a = embeds(cache, preset, spec.replace(prompt="a fox"))[:1]
    b = embeds(cache, preset, spec.replace(prompt="a cat"))[:1]
    blended = embeds(cache, preset, spec.replace(weighted_prompts=(("a fox", 2.0), ("a cat", -0.5))))
    assert blended.shape == (2, *a.shape[1:])
    torch.testing.assert_close(blended[0], ((2.0 * a - 0.5 * b) / 1.5)[0])
    doubled = embeds(cache, preset, spec.replace(weighted_prompts=(("a fox", 4.0), ("a cat", -1.0))))
    torch.testing.assert_close(doubled, blended)


def test_weights_must_add_up_to_more_than_zero(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec
) -> None:
    with pytest.raises(ValueError, match="weighted_prompts"):
        embeds(cache, preset, spec.replace(weighted_prompts=(("a", 1.0), ("b", -1.0))))


def test_chaos_moves_each_image_its_own_seeded_way(
    cache: PipelineCache, preset: ModelPreset, spec: JobSpec
) -> None:
    calm = embeds(cache, preset, spec)
    assert torch.equal(calm[0], calm[1])
    chaotic = embeds(cache, preset, spec.replace(chaos=100))
    assert not torch.equal(chaotic[0], chaotic[1])
    assert torch.equal(chaotic, embeds(cache, preset, spec.replace(chaos=100)))
    # the same seed moves the same way in any position of the batch
    assert torch.equal(chaotic[1], embeds(cache, preset, spec.replace(chaos=100), seeds=[2, 3])[0])
    # at chaos 100 a token embedding moves by CHAOS_SPREAD (0.5) of its length
    moved = (chaotic[0] - calm[0]).norm(dim=-1) / calm[0].norm(dim=-1)
    torch.testing.assert_close(moved, torch.full_like(moved, 0.5))
