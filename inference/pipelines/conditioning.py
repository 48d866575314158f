"""Text conditioning of a job: prompt embeddings, multi-prompt weights and ``--chaos``.

Multi-prompts (``a cat::2 a dog::1``, ``spec.weighted_prompts``) are encoded one sub-prompt at a time and
blended in embedding space, as compel's ``("a cat", "a dog").blend(2, 1)`` does::

    embeds = sum(weight_i * encode(text_i)) / sum(weight_i)

so the weights are relative (``::2 ::1`` equals ``::4 ::2``) and a negative weight pushes the conditioning
away from its sub-prompt. The sum of the weights must be positive (the prompt parser checks it). A plain
prompt is the one-part case with weight 1, so ``a::1`` and ``a`` give identical images. SDXL's pooled
embedding is blended the same way. The negative prompt is encoded once and left as it is.

``--chaos`` spreads the grid apart: each image's token embeddings are pushed in a random direction of
their own (seeded by that image's seed, so a job renders the same every time), by
``chaos / 100 * CHAOS_SPREAD`` of each token embedding's length. At chaos 0 nothing changes; higher values
let the four images read the prompt more and more differently, which varies composition and content more
than the initial noise alone does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from domain.spec import JobSpec

__all__ = ["CHAOS_SPREAD", "Conditioning", "encode_conditioning"]

#: At ``--chaos 100`` each token embedding moves by this share of its own length.
CHAOS_SPREAD = 0.5
#: Added to an image's seed to seed its chaos direction: a stream apart from its initial noise.
CHAOS_STREAM = 2**32


@dataclass(frozen=True, slots=True)
class Conditioning:
    """Prompt embeddings, one row per image, as the diffusers pipelines take them."""

    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    #: SDXL only: the second text encoder's pooled embeddings.
    pooled_prompt_embeds: torch.Tensor | None = None
    negative_pooled_prompt_embeds: torch.Tensor | None = None

    def repeat(self, images: int) -> Conditioning:
        """The same conditioning for each of ``images`` images (from one row)."""

        return Conditioning(
            prompt_embeds=_repeat_rows(self.prompt_embeds, images),
            negative_prompt_embeds=_repeat_rows(self.negative_prompt_embeds, images),
            pooled_prompt_embeds=_optional(_repeat_rows, self.pooled_prompt_embeds, images),
            negative_pooled_prompt_embeds=_optional(_repeat_rows, self.negative_pooled_prompt_embeds, images),
        )

    def as_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for a pipeline call (SDXL's pooled embeddings only when present)."""
        kwargs: dict[str, Any] = {
            "prompt_embeds": self.prompt_embeds,
            "negative_prompt_embeds": self.negative_prompt_embeds,
        }
        if self.pooled_prompt_embeds is not None and self.negative_pooled_prompt_embeds is not None:
            kwargs["pooled_prompt_embeds"] = self.pooled_prompt_embeds
            kwargs["negative_pooled_prompt_embeds"] = self.negative_pooled_prompt_embeds
        return kwargs


def encode_conditioning(pipe: Any, family: str, spec: JobSpec, seeds: Sequence[int]) -> Conditioning:
    """The conditioning of ``spec`` for one image per seed in ``seeds``.

    Raises :class:`ValueError` when the weights of a multi-prompt do not add up to a positive number.
    """
    parts = spec.weighted_prompts or ((spec.prompt, 1.0),)
    total = sum(weight for _, weight in parts)
    if total <= 0:
        raise ValueError(f"weighted_prompts: the weights must add up to more than 0, got {parts!r}")

    texts = [text for text, _ in parts]
    encoded = _encode(pipe, family, texts, spec.negative_prompt)
    weights = [weight / total for _, weight in parts]
    blended = Conditioning(
        prompt_embeds=_blend(encoded.prompt_embeds, weights),
        negative_prompt_embeds=encoded.negative_prompt_embeds[:1],
        pooled_prompt_embeds=_optional(_blend, encoded.pooled_prompt_embeds, weights),
        negative_pooled_prompt_embeds=_optional(_first_row, encoded.negative_pooled_prompt_embeds),
    )
    conditioning = blended.repeat(len(seeds))
    if spec.chaos > 0:
        spread = spec.chaos / 100 * CHAOS_SPREAD
        conditioning = replace(conditioning, prompt_embeds=_spread(conditioning.prompt_embeds, seeds, spread))
    return conditioning


def _encode(pipe: Any, family: str, texts: list[str], negative: str) -> Conditioning:
    """One row per text (each negative row is the same). An empty negative prompt is passed as ``None``,
    so SDXL keeps its zero negative embedding for it (``force_zeros_for_empty_prompt``)."""
    negatives = [negative] * len(texts) if negative else None
    device = pipe._execution_device
    if family == "sdxl":
        embeds, negative_embeds, pooled, negative_pooled = pipe.encode_prompt(
            prompt=texts,
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=True,
            negative_prompt=negatives,
        )
        return Conditioning(embeds, negative_embeds, pooled, negative_pooled)
    embeds, negative_embeds = pipe.encode_prompt(
        prompt=texts,
        device=device,
        num_images_per_prompt=1,
        do_classifier_free_guidance=True,
        negative_prompt=negatives,
    )
    return Conditioning(embeds, negative_embeds)


def _blend(rows: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """``sum(weights[i] * rows[i])`` as a batch of one (weights already normalised), summed in float32."""
    w = torch.tensor(weights, dtype=torch.float32, device=rows.device).view(-1, *([1] * (rows.dim() - 1)))
    return (w * rows.float()).sum(dim=0, keepdim=True).to(rows.dtype)


def _first_row(rows: torch.Tensor) -> torch.Tensor:
    return rows[:1]


def _repeat_rows(rows: torch.Tensor, times: int) -> torch.Tensor:
    return rows.repeat(times, *([1] * (rows.dim() - 1)))


def _optional(
    function: Callable[..., torch.Tensor], rows: torch.Tensor | None, *args: Any
) -> torch.Tensor | None:
    """``function(rows, *args)``, or ``None`` when there are no rows (the SD 1.5 pooled embeddings)."""
    return None if rows is None else function(rows, *args)


def _spread(embeds: torch.Tensor, seeds: Sequence[int], amount: float) -> torch.Tensor:
    """Move each image's token embeddings by ``amount`` of their length in a direction seeded by its seed."""
    moved = []
    for row, seed in zip(embeds, seeds, strict=True):
        generator = torch.Generator().manual_seed(CHAOS_STREAM + seed)
        direction = torch.randn(row.shape, generator=generator).to(row.device, row.dtype)
        direction = direction / direction.norm(dim=-1, keepdim=True)
        moved.append(row + amount * row.norm(dim=-1, keepdim=True) * direction)
    return torch.stack(moved)
