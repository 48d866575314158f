"""What every family module says: its pipelines, how it encodes a prompt, what it passes to a pipeline call.

A family module (``inference/families/<name>.py``) defines one :class:`Family` subclass. The render code
(:mod:`inference.pipelines.render`) asks it, in order:

1. which pipeline class to load (:attr:`Family.text_to_image`) and which siblings share its modules
   (:attr:`Family.image_to_image`, :attr:`Family.inpaint`, built with ``from_pipe``);
2. which samplers it has (:attr:`Family.schedulers`);
3. to encode texts with the pipeline's own ``encode_prompt`` into :class:`Encoded` rows
   (:meth:`Family.encode`), which :mod:`inference.pipelines.conditioning` blends (multi-prompts) and spreads
   (``--chaos``) the same way for every family;
4. the keyword arguments of the call (:meth:`Family.call_kwargs`): embeddings under the family's names, and
   its guidance (``guidance_scale``, ``true_cfg_scale``, ``max_sequence_length``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from PIL import Image

from domain.capabilities import Capabilities, capabilities_of
from domain.spec import JobSpec
from inference.schedulers import SD_SCHEDULERS, Samplers

__all__ = ["Encoded", "Family"]


@dataclass(frozen=True, slots=True)
class Encoded:
    """Text conditioning, one row per text (or, once repeated, per image).

    ``embeds`` are the token embeddings (``[rows, tokens, width]``): what multi-prompt weights blend and
    ``--chaos`` spreads. ``pooled`` is a pooled embedding (``[rows, width]``) for families that take one;
    ``mask`` marks real tokens (``[rows, tokens]``, bool) for encoders whose padding must not be attended to.
    """

    embeds: torch.Tensor
    pooled: torch.Tensor | None = None
    mask: torch.Tensor | None = None


class Family:
    """How one family runs on diffusers; a subclass per family module. Instances hold no state."""

    #: The family's name, as in the models file and :mod:`domain.capabilities`.
    name: ClassVar[str]
    text_to_image: ClassVar[type[Any]]
    #: Siblings built with ``from_pipe`` (sharing the loaded modules); ``None``: the family has none.
    image_to_image: ClassVar[type[Any] | None] = None
    inpaint: ClassVar[type[Any] | None] = None
    #: Whether the image-to-image pipeline takes ``width``/``height`` (the SD ones read the image's size;
    #: the DiT ones default to their native size without them).
    image_to_image_takes_size: ClassVar[bool] = True
    #: The samplers ``--sampler`` offers on this family (names as in its capabilities).
    schedulers: ClassVar[Samplers] = SD_SCHEDULERS

    @property
    def capabilities(self) -> Capabilities:
        return capabilities_of(self.name)

    def encode(self, pipe: Any, texts: list[str]) -> Encoded:
        """One row per text, through ``pipe.encode_prompt`` (no negative: that is another call)."""
        raise NotImplementedError

    def encode_negative(self, pipe: Any, text: str) -> Encoded:
        """The negative prompt's one row (SDXL overrides it: an empty one is all zeros there)."""
        return self.encode(pipe, [text])

    def call_kwargs(self, spec: JobSpec, positive: Encoded, negative: Encoded | None) -> dict[str, Any]:
        """Embeddings and guidance for a pipeline call; ``negative`` is ``None`` for a job with no negative
        pass (see ``domain.capabilities.negative_prompt_for``)."""
        raise NotImplementedError

    def image_to_image_kwargs(self, image: Image.Image, images: int) -> dict[str, Any]:
        """What the image-to-image call needs beyond the images (FLUX.2 [klein]'s goes through inpainting)."""
        return {}

    def denoiser(self, pipe: Any) -> torch.nn.Module:
        """The network that denoises: the UNet or the transformer."""
        return pipe.transformer

    def preview_latents(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """``latents`` of a step callback as a TAESD decodes them (``[batch, channels, h, w]``)."""
        return latents
