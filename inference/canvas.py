"""The Pillow side of the canvas jobs: the model's input, the mask, and the kept pixels pasted back.

An outpainting job (zoom, pan, square) places the source, scaled, on a larger canvas; a Vary (Region) job
takes the source at the size the model draws. Either way :class:`Prepared` holds three plain images of the
output's size:

- ``image`` (RGB): what the inpainting pipeline starts from; outside the source, a blurred stretch of the
  source (colours that belong, never a hard border);
- ``mask`` (L): 255 where the model paints, 0 where it keeps (diffusers' convention). It is a plain image,
  so a mask drawn by hand (a future web editor) goes through :func:`prepare_region` the same way;
- ``keep`` (L): how much of each output pixel is the source's, after decoding. 255 = exactly the source.
  It ramps across a seam of :func:`seam_width` pixels, so new and old meet without a visible edge.

After decoding, :func:`paste_back` puts the kept pixels back: the VAE's round trip and the model never
touch them, so zooming out again and again does not wear the picture down. Where the seam lies:

- outpainting: inside the source, along the edges that meet new area (the model repaints that band too,
  and the source fades in over it); the source's pixels deeper than the seam are kept exactly;
- a region: inside the region (the model's pixels fade in over it); outside the region, every pixel is
  the source's.

Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from domain.canvas import Box

__all__ = ["Prepared", "boxes_mask", "paste_back", "prepare_outpaint", "prepare_region", "seam_width"]

#: The seam is this share of the output's shorter side (at least 2 pixels).
_SEAM_SHARE = 1 / 32


@dataclass(frozen=True, slots=True)
class Prepared:
    """The inputs of one canvas job and what to paste back (see the module docstring)."""

    image: Image.Image
    mask: Image.Image
    keep: Image.Image


def seam_width(width: int, height: int) -> int:
    """Pixels over which kept and new pixels blend."""
    return max(2, round(min(width, height) * _SEAM_SHARE))


def _ramp(inside: np.ndarray, seam: int) -> np.ndarray:
    """0 outside ``inside``, rising by 255/seam per pixel of depth (chessboard distance), 255 from ``seam`` on.

    The image's own border counts as inside (edges are replicated), so a region touching it does not
    ramp there.
    """
    height, width = inside.shape
    depth = np.zeros(inside.shape, dtype=np.int32)
    eroded = inside.copy()
    for _ in range(seam):
        if not eroded.any():
            break
        depth += eroded
        padded = np.pad(eroded, 1, mode="edge")
        shrunk = eroded.copy()
        for dy in range(3):
            for dx in range(3):
                shrunk &= padded[dy:dy + height, dx:dx + width]
        eroded = shrunk
    return (depth * 255 // seam).astype(np.uint8)


def _mask_of(keep: np.ndarray) -> Image.Image:
    """The pipeline's mask: paint every pixel not wholly kept."""
    return Image.fromarray(np.where(keep < 255, 255, 0).astype(np.uint8), mode="L")


def prepare_outpaint(source: Image.Image, width: int, height: int, box: Box) -> Prepared:
    """``source`` scaled into ``box`` of a ``width`` x ``height`` canvas; the rest is for the model."""
    x, y, box_w, box_h = box
    placed = source.convert("RGB").resize((box_w, box_h), Image.Resampling.LANCZOS)
    fill = placed.resize((width, height), Image.Resampling.BILINEAR)
    image = fill.filter(ImageFilter.GaussianBlur(max(width, height) / 16))
    image.paste(placed, (x, y))
    inside = np.zeros((height, width), dtype=bool)
    inside[y:y + box_h, x:x + box_w] = True
    keep = _ramp(inside, seam_width(width, height))
    return Prepared(image, _mask_of(keep), Image.fromarray(keep, mode="L"))


def boxes_mask(size: tuple[int, int], boxes: Iterable[Box]) -> Image.Image:
    """A plain mask (L) of ``size``: 255 inside ``boxes``, 0 elsewhere."""
    mask = Image.new("L", size, 0)
    for x, y, w, h in boxes:
        mask.paste(255, (x, y, x + w, y + h))
    return mask


def prepare_region(source: Image.Image, mask: Image.Image) -> Prepared:
    """Repaint where ``mask`` (L, nonzero = paint) is set; ``source`` is resized to the mask's size."""
    width, height = mask.size
    image = source.convert("RGB")
    if image.size != mask.size:
        image = image.resize(mask.size, Image.Resampling.LANCZOS)
    paint = np.asarray(mask.convert("L")) > 0
    keep = 255 - _ramp(paint, seam_width(width, height))
    return Prepared(image, _mask_of(keep), Image.fromarray(keep, mode="L"))


def paste_back(generated: Image.Image, prepared: Prepared) -> Image.Image:
    """The model's image with the kept pixels of the source put back (blended across the seam)."""
    image = generated.convert("RGB")
    if image.size != prepared.image.size:
        image = image.resize(prepared.image.size, Image.Resampling.LANCZOS)
    return Image.composite(prepared.image, image, prepared.keep)
