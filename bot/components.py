"""Persistent buttons under job messages.

Each button's custom_id carries its whole state (``job:<id>:<action>[:<tile>]``, see :mod:`domain.actions`),
so a click on a message posted before a restart still dispatches: the class is registered with
``Client.add_dynamic_items`` at start-up and rebuilt from the custom_id (see discord.py's
``examples/views/dynamic_counter.py``). The template takes every ``job:`` custom_id, well-formed or not, so
that a forged or stale one is answered (ephemerally) instead of silently failing.

A click is handed on as the client event ``job_button`` (``Client.dispatch``), which the buttons feature
(``bot.cogs.buttons``) listens to; it also registers the class. So this module knows no client or cog.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import discord

from domain.actions import Action, ButtonError, ButtonRef

__all__ = ["Action", "JobButton", "cancel_view", "grid_view", "upscale_view"]

TEMPLATE = re.compile(r"job:.*", re.DOTALL)


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """One button of a job message. A click is dispatched as ``on_job_button(interaction, button)``.

    ``ref`` is the button's parsed state; it is None for a ``job:`` custom_id this bot did not make,
    and ``error`` then says so.
    """

    def __init__(
        self,
        ref: ButtonRef | None,
        *,
        label: str | None = None,
        emoji: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        row: int | None = None,
        custom_id: str | None = None,
        error: str | None = None,
    ) -> None:
        if (ref is None) == (custom_id is None):
            raise TypeError("JobButton takes a ButtonRef, or the raw custom_id of a button it cannot read")
        self.ref = ref
        self.error = error
        cid = ref.custom_id if ref is not None else custom_id
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=cid, row=row))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        custom_id = match.string
        try:
            return cls(ButtonRef.parse(custom_id))
        except ButtonError as error:
            return cls(None, custom_id=custom_id, error=str(error))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        interaction.client.dispatch("job_button", interaction, self)


def cancel_view(job_id: int) -> discord.ui.View:
    """Under a queued or running job: its member may cancel it (the final message replaces the view)."""
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(ButtonRef(job_id, Action.CANCEL), label="Cancel", style=discord.ButtonStyle.danger))
    return view


def grid_view(job_id: int, *, upscaled: Collection[int] = (), draft: bool = False) -> discord.ui.View:
    """U1–U4 and 🔄 on the first row, V1–V4 on the second (Midjourney's layout). The U button of a tile
    already upscaled is blurple (primary), as Midjourney marks a used one; it still works. A ``--draft`` grid
    has Enhance 1–4 on a third row (each redraws its image at full quality)."""
    view = discord.ui.View(timeout=None)
    for tile in range(1, 5):
        style = discord.ButtonStyle.primary if tile in upscaled else discord.ButtonStyle.secondary
        view.add_item(JobButton(ButtonRef(job_id, Action.UPSCALE, tile), label=f"U{tile}", style=style, row=0))
    view.add_item(JobButton(ButtonRef(job_id, Action.REROLL), emoji="🔄", row=0))
    for tile in range(1, 5):
        view.add_item(JobButton(ButtonRef(job_id, Action.VARY, tile), label=f"V{tile}", row=1))
    if draft:
        for tile in range(1, 5):
            view.add_item(JobButton(ButtonRef(job_id, Action.ENHANCE, tile), label=f"Enhance {tile}", emoji="✨",
                                    style=discord.ButtonStyle.primary, row=2))
    return view


#: The canvas rows under an upscaled image (Midjourney's layout): zooms and Make Square, then the pans.
_ZOOMS = ((Action.ZOOM_2X, "Zoom Out 2x"), (Action.ZOOM_1_5X, "Zoom Out 1.5x"), (Action.ZOOM_CUSTOM, "Custom Zoom"))
_PANS = ((Action.PAN_LEFT, "⬅️"), (Action.PAN_RIGHT, "➡️"), (Action.PAN_UP, "⬆️"), (Action.PAN_DOWN, "⬇️"))


def upscale_view(job_id: int, *, square: bool = True) -> discord.ui.View:
    """Under an upscaled image: vary it (all or a region), upscale it again, zoom out, pan, make it square
    (when it is not), or read its recipe. Five rows of at most five buttons."""
    view = discord.ui.View(timeout=None)

    def add(action: Action, row: int, label: str | None = None, emoji: str | None = None) -> None:
        view.add_item(JobButton(ButtonRef(job_id, action), label=label, emoji=emoji, row=row))

    add(Action.VARY_STRONG, 0, "Vary (Strong)", "🪄")
    add(Action.VARY_SUBTLE, 0, "Vary (Subtle)", "🪄")
    add(Action.VARY_REGION, 0, "Vary (Region)", "🖌️")
    add(Action.UPSCALE_SUBTLE, 1, "Upscale (2x)")
    add(Action.UPSCALE_4X, 1, "Upscale (4x)")
    add(Action.UPSCALE_CREATIVE, 1, "Upscale (Creative ×2)")
    add(Action.REDO_UPSCALE, 1, "Redo Upscale", "🔁")
    for action, label in _ZOOMS:
        add(action, 2, label, "🔍")
    if not square:
        add(Action.SQUARE, 2, "Make Square", "↔️")
    for action, emoji in _PANS:
        add(action, 3, emoji=emoji)
    add(Action.RECIPE, 4, "Recipe", "📋")
    return view
