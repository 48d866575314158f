"""The model families the worker runs: one module each, and :func:`family_of` to find one by name.

Importing this package imports torch and diffusers (the worker does; the bot must not). Adding a family is
one module here (a :class:`~inference.families.base.Family` subclass), its entry in
``domain.capabilities.CAPABILITIES``, one line below, a tiny builder in ``inference.tiny`` and its tests.
"""

from __future__ import annotations

from domain.capabilities import CAPABILITIES
from inference.families.base import Encoded, Family
from inference.families.sd15 import SD15
from inference.families.sdxl import SDXL

__all__ = ["FAMILIES", "Encoded", "Family", "family_of"]

#: Every family by name.
FAMILIES: dict[str, Family] = {family.name: family for family in (SD15(), SDXL())}
assert set(FAMILIES) <= set(CAPABILITIES), "every family module needs its domain.capabilities entry"


def family_of(name: str) -> Family:
    """The family called ``name``; raises :class:`ValueError` naming the families this worker runs."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"family {name!r} has no module in inference.families ({', '.join(FAMILIES)})") from None
