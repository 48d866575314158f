"""The model families the worker runs: one module each, and :func:`family_of` to find one by name.

Importing this package imports torch and diffusers (the worker does; the bot must not). Adding a family is
one module here (a :class:`~inference.families.base.Family` subclass), its entry in
``domain.capabilities.CAPABILITIES``, one line below, a tiny builder in ``inference.tiny`` and its tests.
"""

from __future__ import annotations

from domain.capabilities import CAPABILITIES
from inference.families.base import Encoded, Family
from inference.families.flux import Flux
from inference.families.flux2 import Flux2
from inference.families.qwenimage import QwenImage
from inference.families.sd3 import SD3
from inference.families.sd15 import SD15
from inference.families.sdxl import SDXL
from inference.families.zimage import ZImage

__all__ = ["FAMILIES", "Encoded", "Family", "family_of"]

#: Every family by name.
FAMILIES: dict[str, Family] = {
    family.name: family for family in (SD15(), SDXL(), SD3(), Flux(), Flux2(), ZImage(), QwenImage())
}
assert set(FAMILIES) == set(CAPABILITIES), "each family needs both its module and its domain.capabilities entry"
assert all(
    (f.image_to_image is not None) == f.capabilities.img2img and (f.inpaint is not None) == f.capabilities.inpaint
    and tuple(f.schedulers) == f.capabilities.samplers
    and set(f.capabilities.pipelines) == {c.__name__ for c in (f.text_to_image, f.image_to_image, f.inpaint) if c}
    and f.capabilities.single_file == hasattr(f.text_to_image, "from_single_file")
    for f in FAMILIES.values()
), "a family module and its domain.capabilities entry disagree"


def family_of(name: str) -> Family:
    """The family called ``name``; raises :class:`ValueError` naming the families this worker runs."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"family {name!r} has no module in inference.families ({', '.join(FAMILIES)})") from None
