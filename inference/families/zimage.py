"""Z-Image: a single-stream flow-matching DiT with a Qwen3 text encoder; classifier-free guidance above 0.

The encoder's output is one tensor per prompt of that prompt's own length (padding dropped). Here they are
padded with zeros to a common length with a mask of real tokens, so multi-prompts blend like any family's,
and cut back to their real tokens for the pipeline call. Z-Image Turbo runs at guidance 0: no negative pass.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import ZImageImg2ImgPipeline, ZImageInpaintPipeline, ZImagePipeline

from domain.spec import JobSpec
from inference.families.base import Encoded, Family
from inference.schedulers import FLOW_SCHEDULERS

__all__ = ["ZImage"]


class ZImage(Family):
    name = "zimage"
    text_to_image = ZImagePipeline
    image_to_image = ZImageImg2ImgPipeline
    inpaint = ZImageInpaintPipeline
    schedulers = FLOW_SCHEDULERS

    def encode(self, pipe: Any, texts: list[str]) -> Encoded:
        rows, _ = pipe.encode_prompt(
            prompt=list(texts), device=pipe._execution_device, do_classifier_free_guidance=False,
            max_sequence_length=self.capabilities.prompt_tokens,
        )
        return pad_rows(rows)

    def call_kwargs(self, spec: JobSpec, positive: Encoded, negative: Encoded | None) -> dict[str, Any]:
        return {
            "prompt_embeds": real_tokens(positive),
            "negative_prompt_embeds": None if negative is None else real_tokens(negative),
            "guidance_scale": spec.guidance_scale,
        }


def pad_rows(rows: list[torch.Tensor]) -> Encoded:
    """Variable-length ``[tokens, width]`` rows as one zero-padded batch and its mask of real tokens."""
    longest = max(row.shape[0] for row in rows)
    embeds = rows[0].new_zeros((len(rows), longest, rows[0].shape[-1]))
    mask = torch.zeros((len(rows), longest), dtype=torch.bool, device=rows[0].device)
    for index, row in enumerate(rows):
        embeds[index, : row.shape[0]] = row
        mask[index, : row.shape[0]] = True
    return Encoded(embeds, mask=mask)


def real_tokens(encoded: Encoded) -> list[torch.Tensor]:
    """Each row's real tokens, as the pipeline takes them."""
    assert encoded.mask is not None
    return [row[keep] for row, keep in zip(encoded.embeds, encoded.mask, strict=True)]
