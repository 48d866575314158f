"""Seamless tiling (``--tile``): pictures whose left/right and top/bottom edges continue each other.

Every padded convolution of the UNet and the VAE pads circularly (wrapping around the opposite edge)
instead of with zeros, so the latents and then the pixels are periodic. The modules are shared by all
jobs of the process, so the previous padding is put back on exit, also when the job fails or is
cancelled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["seamless"]


@contextmanager
def seamless(enabled: bool, *modules: torch.nn.Module | None) -> Iterator[None]:
    """Make the padded ``Conv2d`` layers of ``modules`` pad circularly for the block (if ``enabled``)."""
    if not enabled:
        yield
        return
    convs = [
        layer
        for module in modules
        if module is not None
        for layer in module.modules()
        if isinstance(layer, torch.nn.Conv2d) and layer.padding not in ((0, 0), "valid")
    ]
    saved = [conv.padding_mode for conv in convs]
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield
    finally:
        for conv, mode in zip(convs, saved, strict=True):
            conv.padding_mode = mode
