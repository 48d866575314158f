"""The first thing every slash command meets: hostile or broken input.

Discord checks option types, lengths, ranges and choices before it sends a command, but a forged or
stale payload (a client with an old command list, a bot-hunting script) gets none of those checks, and
discord.py passes what it receives on. :class:`GuardedTree` checks each command's raw options against the
command's own declaration (:func:`option_problem`) and answers an unknown command, before the command runs:
the answer is ephemeral, says what to change, and nothing is written. These checks are pure (no database, no
Redis), so they come before the acknowledgement; the member's rate limit, a Redis call, comes right after it
(:func:`bot.acks.acknowledge`).
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import discord
from discord import app_commands
from discord.enums import AppCommandOptionType as OptionType

__all__ = [
    "DEFAULT_MAX_CHARS",
    "UNKNOWN_BUTTON",
    "UNKNOWN_COMMAND",
    "GuardedTree",
    "answer_unknown_component",
    "option_problem",
]

log = logging.getLogger(__name__)

UNKNOWN_COMMAND = "I don't know that command (it may have been renamed or removed). Type `/` to see my commands."
UNKNOWN_BUTTON = "That button isn't one I can use. Use the buttons under a finished image."
MALFORMED = "That command arrived incomplete or garbled. Please run it again from the `/` menu."
#: The most characters of a string option that declares no length of its own (names, plans, models).
DEFAULT_MAX_CHARS = 100
#: Discord's limit on any string option.
DISCORD_MAX_CHARS = 6000
_SUBCOMMANDS = (1, 2)
#: Option types whose value is a snowflake resolved in ``data.resolved``, and where.
_RESOLVED = {
    OptionType.user: ("users",),
    OptionType.channel: ("channels",),
    OptionType.role: ("roles",),
    OptionType.mentionable: ("users", "roles"),
    OptionType.attachment: ("attachments",),
}


def _leaf_options(data: Mapping[str, Any]) -> list[Any] | None:
    """The options of the (sub)command that runs; None when the payload is not shaped like Discord's."""
    options = data.get("options", [])
    while True:
        if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
            return None
        if options and options[0].get("type") in _SUBCOMMANDS:
            options = options[0].get("options", [])
            continue
        return options


def _describe_range(low: float | None, high: float | None, what: str) -> str:
    if low is not None and high is not None:
        return f"{what} from {low:g} to {high:g}"
    if low is not None:
        return f"{what} of at least {low:g}"
    return f"{what} of at most {high:g}"


def _resolves(value: Any, resolved: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    """A snowflake that the payload's ``resolved`` holds under one of ``keys``."""
    return isinstance(value, str) and value.isdigit() and any(
        isinstance(resolved.get(key), dict) and value in resolved[key] for key in keys
    )


def _value_problem(param: app_commands.Parameter, value: Any, resolved: Mapping[str, Any]) -> str | None:
    name = f"`{param.display_name}`"
    kind = param.type
    if kind is OptionType.string:
        if not isinstance(value, str):
            return f"The option {name} must be text."
        if "\x00" in value:
            return f"The option {name} contains a null character; remove it and try again."
        longest = int(param.max_value) if param.max_value is not None else DEFAULT_MAX_CHARS
        if len(value) > min(longest, DISCORD_MAX_CHARS):
            return f"The option {name} may have at most {longest} characters; yours has {len(value)}."
        if param.min_value is not None and len(value) < param.min_value:
            return f"The option {name} needs at least {int(param.min_value)} characters."
    elif kind in (OptionType.integer, OptionType.number):
        whole = kind is OptionType.integer
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
            return f"The option {name} must be a {'whole ' if whole else ''}number."
        low, high = param.min_value, param.max_value
        if (low is not None and value < low) or (high is not None and value > high) or value != value:
            return f"The option {name} must be " + _describe_range(low, high, "a number") + "."
    elif kind is OptionType.boolean:
        if not isinstance(value, bool):
            return f"The option {name} must be true or false."
    elif kind in _RESOLVED and not _resolves(value, resolved, _RESOLVED[kind]):
        return f"The option {name} doesn't name anything I can find. Pick it from the menu."
    if param.choices and value not in {choice.value for choice in param.choices}:
        shown = ", ".join(f"`{choice.name}`" for choice in param.choices[:10])
        return f"The option {name} must be one of: {shown}."
    return None


#: Each command's parameters by name. discord.py builds them anew on every ``Command.parameters``: under a
#: burst that cost more than the acknowledgement itself. A command's declaration never changes once loaded.
_PARAMETERS: weakref.WeakKeyDictionary[app_commands.Command[Any, ..., Any], dict[str, app_commands.Parameter]] = (
    weakref.WeakKeyDictionary())


def _parameters(command: app_commands.Command[Any, ..., Any]) -> dict[str, app_commands.Parameter]:
    params = _PARAMETERS.get(command)
    if params is None:
        params = _PARAMETERS[command] = {param.display_name: param for param in command.parameters}
    return params


def option_problem(command: app_commands.Command[Any, ..., Any], data: Mapping[str, Any]) -> str | None:
    """What is wrong with a command's raw options, for the member (None: they are what it declares)."""
    options = _leaf_options(data)
    resolved = data.get("resolved") or {}
    if options is None or not isinstance(resolved, dict):
        return MALFORMED
    params = _parameters(command)
    seen: set[str] = set()
    for option in options:
        name = option.get("name")
        if not isinstance(name, str) or name not in params:
            return f"/{command.qualified_name} has no option `{str(name)[:40]}`. Run it again from the `/` menu."
        if name in seen:
            return f"The option `{name}` was given twice."
        seen.add(name)
        param = params[name]
        if option.get("type") != param.type.value:
            return f"The option `{name}` has the wrong type. Run the command again from the `/` menu."
        if "value" not in option:
            return f"The option `{name}` has no value."
        problem = _value_problem(param, option["value"], resolved)
        if problem is not None:
            return problem
    missing = [name for name, param in params.items() if param.required and name not in seen]
    if missing:
        return f"The option `{missing[0]}` is required."
    return None


class GuardedTree(app_commands.CommandTree[Any]):
    """A command tree that refuses unknown commands and ill-formed options before any command runs (see
    the module docstring)."""

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.type is not discord.InteractionType.application_command:
            return True  # autocomplete answers choices, never a message; it changes nothing
        data: dict[str, Any] = dict(interaction.data) if isinstance(interaction.data, dict) else {}
        try:
            command = interaction.command
        except (KeyError, TypeError, AttributeError):  # no name, options that are not a list, ...
            return await self._refuse(interaction, MALFORMED)
        if not isinstance(command, app_commands.Command):
            if command is None:
                log.info("unknown command %r from %s", str(data.get("name"))[:100], interaction.user.id)
                return await self._refuse(interaction, UNKNOWN_COMMAND)
            return True  # a context menu: its target is resolved by discord.py
        problem = option_problem(command, data)
        if problem is not None:
            log.info("/%s from %s refused: %s", command.qualified_name, interaction.user.id, problem)
            return await self._refuse(interaction, problem)
        return True

    async def _refuse(self, interaction: discord.Interaction[Any], text: str) -> bool:
        return await _refuse(interaction, text)


async def answer_unknown_component(interaction: discord.Interaction[Any], templates: Sequence[re.Pattern[str]]) -> None:
    """Answer a click that discord.py would drop, leaving the member with "This interaction failed": a
    custom_id none of the bot's buttons (``templates``) takes, or one the clicked message does not show
    (a forged payload)."""
    if interaction.type is not discord.InteractionType.component:
        return
    custom_id = interaction.data.get("custom_id") if isinstance(interaction.data, dict) else None
    ours = isinstance(custom_id, str) and any(template.fullmatch(custom_id) for template in templates)
    if ours and interaction.message is not None and custom_id in _custom_ids(interaction.message.components):
        return
    log.info("click on an unknown custom_id %r from %s", str(custom_id)[:100], interaction.user.id)
    await _refuse(interaction, UNKNOWN_BUTTON)


def _custom_ids(components: Sequence[Any]) -> set[str]:
    """Every custom_id in a message's components (rows, containers, sections and their accessories)."""
    found: set[str] = set()
    for component in components:
        if isinstance(getattr(component, "custom_id", None), str):
            found.add(component.custom_id)
        children = [*getattr(component, "children", ()), *getattr(component, "components", ())]
        accessory = getattr(component, "accessory", None)
        found |= _custom_ids([*children, *([accessory] if accessory is not None else [])])
    return found


async def _refuse(interaction: discord.Interaction[Any], text: str) -> bool:
    try:
        await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not answer interaction %s", interaction.id, exc_info=True)
    return False
