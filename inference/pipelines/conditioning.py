"""Text conditioning of a job: prompt embeddings, multi-prompt weights and ``--chaos``.

Multi-prompts (``a cat::2 a dog::1``, ``spec.weighted_prompts``) are encoded one sub-prompt at a time and
blended in embedding space, as compel's ``("a cat", "a dog").blend(2, 1)`` does::

    embeds = sum(weight_i * encode(text_i)) / sum(weight_i)

so the weights are relative (``::2 ::1`` equals ``::4 ::2``) and a negative weight pushes the conditioning
away from its sub-prompt. The sum of the weights must be positive (the prompt parser checks it). A plain
prompt is the one-part case with weight 1, so ``a::1`` and ``a`` give identical images. Every family's
encoder goes through this: its module (``inference.families``) encodes the texts with the pipeline's own
``encode_prompt`` into rows of token embeddings (plus a pooled embedding for CLIP-based families, and a mask
of real tokens for LLM encoders); pooled embeddings are blended the same way, masks are joined (a token is
real if it is in any part; shorter parts are padded with zeros). The negative prompt is encoded once and left
as it is; a job with no negative pass (``domain.capabilities.negative_prompt_for``) encodes none.

``--chaos`` spreads the grid apart: each image's token embeddings are pushed in a random direction of
their own (seeded by that image's seed, so a job renders the same every time; on every family), by
``chaos / 100 * CHAOS_SPREAD`` of each token embedding's length. At chaos 0 nothing changes; higher values
let the four images read the prompt more and more differently, which varies composition and content more
than the initial noise alone does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from domain.capabilities import negative_prompt_for
from domain.spec import JobSpec
from inference.families import Encoded, Family

__all__ = ["CHAOS_SPREAD", "Conditioning", "encode_conditioning"]

#: At ``--chaos 100`` each token embedding moves by this share of its own length.
CHAOS_SPREAD = 0.5
#: Added to an image's seed to seed its chaos direction: a stream apart from its initial noise.
CHAOS_STREAM = 2**32


@dataclass(frozen=True, slots=True)
class Conditioning:
    """The encoded prompt and negative prompt of a job, one row per image."""

    family: Family
    positive: Encoded
    #: ``None``: the job runs no negative pass.
    negative: Encoded | None

    @property
    def prompt_embeds(self) -> torch.Tensor:
        return self.positive.embeds

    def as_kwargs(self, spec: JobSpec) -> dict[str, Any]:
        """Keyword arguments for the family's pipeline call: embeddings and guidance."""
        return self.family.call_kwargs(spec, self.positive, self.negative)


def encode_conditioning(pipe: Any, family: Family, spec: JobSpec, seeds: Sequence[int]) -> Conditioning:
    """The conditioning of ``spec`` on ``family``'s ``pipe``, one image per seed in ``seeds``.

    Raises :class:`ValueError` when the weights of a multi-prompt do not add up to a positive number.
    """
    parts = spec.weighted_prompts or ((spec.prompt, 1.0),)
    total = sum(weight for _, weight in parts)
    if total <= 0:
        raise ValueError(f"weighted_prompts: the weights must add up to more than 0, got {parts!r}")

    with torch.no_grad():
        encoded = family.encode(pipe, [text for text, _ in parts])
        negative_text = negative_prompt_for(family.capabilities, spec)
        negative = None if negative_text is None else family.encode_negative(pipe, negative_text)
    blended = _blend(encoded, [weight / total for _, weight in parts])
    positive = _repeat(blended, len(seeds))
    if spec.chaos > 0:
        spread = spec.chaos / 100 * CHAOS_SPREAD
        positive = replace(positive, embeds=_spread(positive.embeds, seeds, spread))
    return Conditioning(family, positive, None if negative is None else _repeat(negative, len(seeds)))


def _blend(encoded: Encoded, weights: Sequence[float]) -> Encoded:
    """``sum(weights[i] * row[i])`` as one row (weights already normalised), summed in float32."""
    if len(weights) == 1:
        return encoded
    mask = None if encoded.mask is None else encoded.mask.any(dim=0, keepdim=True)
    return Encoded(_weighted(encoded.embeds, weights), _optional(_weighted, encoded.pooled, weights), mask)


def _weighted(rows: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    w = torch.tensor(weights, dtype=torch.float32, device=rows.device).view(-1, *([1] * (rows.dim() - 1)))
    return (w * rows.float()).sum(dim=0, keepdim=True).to(rows.dtype)


def _repeat(encoded: Encoded, images: int) -> Encoded:
    """The one row of ``encoded`` for each of ``images`` images."""
    return Encoded(
        _repeat_rows(encoded.embeds, images),
        _optional(_repeat_rows, encoded.pooled, images),
        _optional(_repeat_rows, encoded.mask, images),
    )


def _repeat_rows(rows: torch.Tensor, times: int) -> torch.Tensor:
    return rows[:1].repeat(times, *([1] * (rows.dim() - 1)))


def _optional(
    function: Callable[..., torch.Tensor], rows: torch.Tensor | None, *args: Any
) -> torch.Tensor | None:
    """``function(rows, *args)``, or ``None`` when there are no rows (no pooled embedding, no mask)."""
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
