"""The member behind an interaction: who they are to Discord (roles, premium entitlements), and what that
gives them here (plan, period, balance, settings), loaded before a command answers.

``/imagine`` and the buttons load the account once, refuse at once (ephemerally, before anything is
written) what the snapshot already shows to be refused, and hand the same account to
:func:`bot.submission.submit_jobs`, whose transaction decides exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord

from db import plans as plans_db
from db.jobs import NewJob
from db.plans import Account, EntitlementInfo, Requester
from domain.catalog import Catalog
from domain.errors import BannedError, LimitError, PromptError
from domain.lanes import LaneChoice, assign_lanes
from domain.plans import PlanBook
from domain.prompt import ParsedPrompt, PromptOptions, parse_prompt
from domain.spec import Lane

if TYPE_CHECKING:
    from bot.services import BotServices

__all__ = [
    "entitlement_info",
    "estimates",
    "load_account",
    "parse_for_member",
    "precheck",
    "requester_of",
]

#: Member defaults (/settings) and the prompt options they fill when the member gave none.
_DEFAULTS = (("default_model", "model"), ("default_aspect", "aspect"), ("default_stylize", "stylize"))


def entitlement_info(entitlement: discord.Entitlement) -> EntitlementInfo:
    return EntitlementInfo(
        id=entitlement.id,
        sku_id=entitlement.sku_id,
        user_id=entitlement.user_id,
        guild_id=entitlement.guild_id,
        type=int(entitlement.type.value),
        starts_at=entitlement.starts_at,
        ends_at=entitlement.ends_at,
        deleted=entitlement.deleted,
    )


def requester_of(interaction: discord.Interaction[Any]) -> Requester:
    """The member as this interaction shows them: their roles in its guild and their entitlements."""
    user = interaction.user
    # The role ids the interaction carries (``Member.roles`` would drop roles missing from the cache).
    roles = tuple(int(role_id) for role_id in user._roles) if isinstance(user, discord.Member) else ()
    return Requester(
        user_id=user.id,
        name=user.name,
        guild_id=interaction.guild_id,
        role_ids=roles,
        entitlements=tuple(entitlement_info(e) for e in interaction.entitlements),
    )


async def load_account(
    services: BotServices, interaction: discord.Interaction[Any] | None = None, *, requester: Requester | None = None
) -> Account:
    """The member's account (one short transaction; creates the user and this period's balance)."""
    if requester is None:
        if interaction is None:
            raise ValueError("load_account needs an interaction or a requester")
        requester = requester_of(interaction)
    return await services.db.run(plans_db.load_account, requester=requester, book=services.plans,
                                 now=datetime.now(UTC))


def estimates(book: PlanBook, catalog: Catalog, new_jobs: Sequence[NewJob]) -> list[int]:
    """GPU milliseconds each job should take, from its model's cost model."""
    out = []
    for new in new_jobs:
        preset = catalog.find(new.spec.model) or catalog.default_preset
        out.append(new.estimated_ms or book.estimate_ms(new.spec, new.kind, preset))
    return out


def precheck(account: Account, costs: Sequence[int], lane: Lane | None = None) -> list[LaneChoice]:
    """Refuse now what the account already shows would be refused (banned, no fast time left and no relax,
    too many jobs in a lane). The submit transaction checks again, exactly. ``lane``: the lane the prompt
    asked for (``--relax``), else the member's."""
    if account.banned:
        raise BannedError(account.ban_reason)
    choices = assign_lanes(lane or account.lane, account.plan, account.resolved.period, account.left_ms, costs)
    active = dict(account.active)
    for choice in choices:
        limit = account.plan.active_limit(choice.lane)
        if active[choice.lane] + 1 > limit:
            raise LimitError(choice.lane.value, active[choice.lane], limit)
        active[choice.lane] += 1
    return choices


def parse_for_member(text: str, catalog: Catalog, options: PromptOptions, account: Account) -> ParsedPrompt:
    """Parse a prompt with the member's defaults (/settings) filling the options they did not give, and
    their plan's cap on jobs per prompt.

    A default the prompt contradicts inline (a default aspect of 16:9 and ``--ar 1:1`` in the prompt) is
    left out: what the member typed wins over what they set once.
    """
    max_jobs = account.plan.max_jobs
    parsed = parse_prompt(text, catalog, options, max_jobs=max_jobs)  # the member's own errors first
    chosen: dict[str, Any] = {}
    for column, option in _DEFAULTS:
        value = getattr(account.user, column)
        if value is None or getattr(options, option) is not None:
            continue
        if option == "model" and catalog.find(str(value)) is None:
            continue  # a default model the models file no longer has
        try:
            parse_prompt(text, catalog, dataclasses.replace(options, **chosen, **{option: value}), max_jobs=max_jobs)
        except PromptError:
            continue
        chosen[option] = value
    if not chosen:
        return parsed
    return parse_prompt(text, catalog, dataclasses.replace(options, **chosen), max_jobs=max_jobs)
