"""Persistent buttons under job messages.

Each button's custom_id carries its whole state (``job:<id>:<action>[:<tile>]``), so a click on a message
posted before a restart still dispatches: the class is registered with ``Client.add_dynamic_items`` at
start-up and rebuilt from the custom_id (see discord.py's ``examples/views/dynamic_counter.py``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from bot.client import ImagineBot

__all__ = ["Action", "JobButton", "grid_view"]

CUSTOM_ID = re.compile(r"job:(?P<job_id>[0-9]{1,19}):(?P<action>[a-z_]{1,20})(?::(?P<tile>[0-9]{1,2}))?")


class Action(StrEnum):
    UPSCALE = "upscale"
    VARY = "vary"
    REROLL = "reroll"


def custom_id(job_id: int, action: Action, tile: int | None = None) -> str:
    return f"job:{job_id}:{action.value}" + (f":{tile}" if tile is not None else "")


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID):
    """One button of a job message. The click is handled by the bot's button feature."""

    def __init__(self, job_id: int, action: str, tile: int | None = None, *, label: str | None = None,
                 emoji: str | None = None, style: discord.ButtonStyle = discord.ButtonStyle.secondary,
                 row: int | None = None) -> None:
        self.job_id, self.action, self.tile = job_id, action, tile
        cid = f"job:{job_id}:{action}" + (f":{tile}" if tile is not None else "")
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=cid, row=row))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        tile = match["tile"]
        return cls(int(match["job_id"]), match["action"], int(tile) if tile is not None else None)

    async def callback(self, interaction: discord.Interaction[ImagineBot]) -> None:  # type: ignore[override]
        await interaction.client.handle_job_button(interaction, self.job_id, self.action, self.tile)


def grid_view(job_id: int) -> discord.ui.View:
    """U1–U4 and 🔄 on the first row, V1–V4 on the second (Midjourney's layout)."""
    view = discord.ui.View(timeout=None)
    for tile in range(1, 5):
        view.add_item(JobButton(job_id, Action.UPSCALE, tile, label=f"U{tile}", row=0))
    view.add_item(JobButton(job_id, Action.REROLL, emoji="🔄", row=0))
    for tile in range(1, 5):
        view.add_item(JobButton(job_id, Action.VARY, tile, label=f"V{tile}", row=1))
    return view
