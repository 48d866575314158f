"""Acknowledge first: every interaction is answered before the bot waits on PostgreSQL or Redis.

Discord drops an interaction not acknowledged within 3 seconds ("This interaction failed"), and under a
burst of commands a database or broker round trip can take longer than that. So a command, a click or a
modal submit runs its pure checks (parsing: bad input is answered ephemerally at once), then calls
:func:`acknowledge`, which defers and only then takes a token from the member's rate limit (a Redis call);
first it lets the burst's other acknowledgements go out, and the member's earlier interactions finish
(``bot.backlog``).
Whatever is refused after that goes through :func:`refuse`, which turns the deferred answer into an
ephemeral one: after a public defer (``/imagine``'s "thinking…") the thinking message is deleted first, so
only the member sees why.

The one exception is a click that opens a modal (``bot.cogs.canvas``): a modal must be the first answer,
and what it shows is read first, bounded; its submit is acknowledged first like everything else.

When PostgreSQL or Redis cannot be reached, :func:`is_outage` says so and the member reads
:data:`TRY_AGAIN` instead of "something went wrong": nothing was written (each database call is one
transaction, rolled back), and the next command works as soon as the service is back.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import discord
import psycopg
import redis.exceptions
import sqlalchemy.exc

from bot.metrics import observe_ack
from domain.errors import SlowDownError

__all__ = ["TRY_AGAIN", "Ack", "Answer", "acknowledge", "is_outage", "refuse"]

log = logging.getLogger(__name__)

TRY_AGAIN = "I can't reach my database right now, so nothing was done. Please try again in a minute."

#: How an interaction was deferred: a "thinking…" message only its member sees, or one the channel sees,
#: or (a click, a modal submit on a message) nothing shown yet.
Answer = Literal["ephemeral", "public", "update"]
_ANSWER = "imagine.answer"


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledged interaction; ``message_id``: its "thinking…" message, if it has one."""

    message_id: int | None


async def acknowledge(interaction: discord.Interaction[Any], label: str, answer: Answer = "ephemeral") -> Ack | None:
    """Defer ``interaction`` now (Discord allows 3 s), then apply the member's rate limit.

    Returns None when the member is over their limit: they were told so (ephemerally), and the caller
    stops. ``label`` names the interaction in the acknowledgement-time metric.
    """
    client = interaction.client
    turn = client.turns.take(interaction.user.id)  # in gateway order, before the first await
    if answer == "update":
        response = await interaction.response.defer()
    else:
        response = await interaction.response.defer(ephemeral=answer == "ephemeral", thinking=True)
    interaction.extras[_ANSWER] = answer
    observe_ack(interaction, label)
    await client.backlog.settled()  # the acknowledgements still to send go first
    await client.turns.wait(turn)  # then this member's earlier commands and clicks
    try:
        await client.services.limiter.check(interaction.user.id)
    except SlowDownError as error:
        log.info("%s slowed down (%.1fs)", interaction.user.id, error.retry_after_s)
        await refuse(interaction, str(error))
        return None
    return Ack(response.message_id if response is not None and answer != "update" else None)


async def refuse(interaction: discord.Interaction[Any], text: str, **kwargs: Any) -> None:
    """Tell the member ``text`` ephemerally, whether or not the interaction was acknowledged yet.

    ``kwargs`` go to the message (a ``view``, for instance). After a public defer the "thinking…" message
    is deleted first: the first follow-up would otherwise replace it, for the whole channel to see.
    """
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True, **kwargs)
            return
        if interaction.extras.get(_ANSWER) == "public":
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
        await interaction.followup.send(text, ephemeral=True, **kwargs)
    except discord.HTTPException:
        log.warning("could not answer interaction %s", interaction.id, exc_info=True)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) means PostgreSQL or Redis could not be reached or went away."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError
                      | sqlalchemy.exc.TimeoutError | psycopg.OperationalError | psycopg.InterfaceError
                      | redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return True
        current = getattr(current, "original", None) or current.__cause__ or current.__context__
    return False
