"""Checks for app commands, named for intent.

The permission model: the admin commands (``/admin …``) are for the people who run the community.

- In a server, whoever Discord lets *Manage Server* there. The admin group is registered with
  ``default_permissions(manage_guild=True)``, so Discord hides it from everyone else; a server can
  override that in its integration settings, so :func:`is_admin` checks the member's permissions again
  when the command runs.
- Anywhere (DMs included), the Discord user ids in the ``ADMIN_IDS`` setting: the bot's operators.

What they govern (:func:`admin_scope`): a server's managers govern that server only (its grants, bans,
role plans, filter and image policy, and its members' usage there); the operators act everywhere (their
grants and bans apply in every server, their ``/admin usage`` covers every server). A refusal is a short
ephemeral message and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import discord
from discord import app_commands

__all__ = ["NOT_ADMIN", "AdminScope", "NotAdmin", "admin_scope", "can_administer", "is_admin"]

T = TypeVar("T")

NOT_ADMIN = "Only this server's managers (Manage Server) and the bot's operators can use admin commands."


class NotAdmin(app_commands.CheckFailure):
    """The user may not run admin commands here."""

    def __init__(self) -> None:
        super().__init__(NOT_ADMIN)


@dataclass(frozen=True, slots=True)
class AdminScope:
    """Where an admin command acts: one server (``guild_id``), or every server (``guild_id`` None: an operator)."""

    guild_id: int | None

    @property
    def everywhere(self) -> bool:
        return self.guild_id is None


def admin_scope(interaction: discord.Interaction[Any], admin_ids: frozenset[int]) -> AdminScope:
    """Where this user's admin commands act here; raises :class:`NotAdmin` when they may not use them."""
    if interaction.user.id in admin_ids:
        return AdminScope(None)
    if interaction.guild_id is not None and interaction.permissions.manage_guild:
        return AdminScope(interaction.guild_id)
    raise NotAdmin()


def can_administer(interaction: discord.Interaction[Any], admin_ids: frozenset[int]) -> bool:
    """Whether the user is an operator (``ADMIN_IDS``) or may manage the server the command came from."""
    if interaction.user.id in admin_ids:
        return True
    return interaction.guild_id is not None and interaction.permissions.manage_guild


def is_admin() -> Callable[[T], T]:
    """An app command check: :func:`can_administer`, with the bot's ``ADMIN_IDS``; raises :class:`NotAdmin`."""

    def predicate(interaction: discord.Interaction[Any]) -> bool:
        if not can_administer(interaction, interaction.client.services.settings.admins):
            raise NotAdmin()
        return True

    return app_commands.check(predicate)
