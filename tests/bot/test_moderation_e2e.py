"""Moderation end to end: per-server admin powers, clicks that stay where their job was made, the prompt
filter with its Appeal button and audit log. The real bot against the fake Discord, real PostgreSQL.

Nothing here renders an image but the one job the forged clicks name.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.client import ImagineBot
from bot.cogs.admin import NOT_A_MEMBER
from bot.moderation import NOT_HERE, STEALTH
from db.models import Ban, Grant, Job, ModerationEvent
from db.moderation import job_visible_to
from domain.actions import NOT_OURS
from tests.fakediscord import FakeChannel, FakeDiscord, FakeGuild, FakeUser
from tests.support.messages import ephemeral_answer
from tests.support.waiting import eventually

EPHEMERAL = 64
MANAGE_GUILD = 1 << 5
MESSAGE_COMPONENT = 3
_names = itertools.count()


def _count(model: Any, *conditions: Any) -> Any:
    def read(*, session: Session) -> int:
        return int(session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one())
    return read


def _rows(model: Any, *conditions: Any) -> Any:
    def read(*, session: Session) -> list[Any]:
        rows = list(session.execute(select(model).where(*conditions).order_by(model.id)).scalars())
        session.expunge_all()
        return rows
    return read


async def reply(fake: FakeDiscord, command: str, options: dict[str, Any] | None = None, **kwargs: Any) -> str:
    """Run a command; the text of its ephemeral answer."""
    interaction = await fake.slash_command(command, options or {}, **kwargs)
    return str((await ephemeral_answer(interaction))["content"])


async def click_reply(fake: FakeDiscord, message: dict[str, Any], custom_id: str, *, user: FakeUser,
                      channel: FakeChannel) -> str:
    """Click ``custom_id`` on ``message`` as if it showed that button (a forged payload when it does not);
    the ephemeral answer."""
    shown = {**message, "components": [{"type": 1, "components": [
        {"type": 2, "style": 2, "label": "U1", "custom_id": custom_id}]}]}
    interaction = await fake._interaction(
        MESSAGE_COMPONENT, {"custom_id": custom_id, "component_type": 2}, user=user, channel=channel,
        message=shown,
    )
    ack = await interaction.wait_ack()
    if ack.type == 4:
        assert ack.data["flags"] & EPHEMERAL, ack
        return str(ack.data["content"])
    # A deferred update (6): the answer is a follow-up; a deferred message (5): it replaces "thinking…".
    answer = await (interaction.wait_followup() if ack.type == 6
                    else interaction.wait_original(lambda m: bool(m.get("content"))))
    assert answer["flags"] & EPHEMERAL, answer
    return str(answer["content"])


@pytest.fixture(scope="module")
async def other_guild(fake: FakeDiscord, bot: ImagineBot) -> FakeGuild:
    """A second server the bot is in, with its own manager."""
    guild = fake.add_guild(FakeGuild(f"Other Guild {next(_names)}", channels=[FakeChannel("general")]))
    await fake.dispatch("GUILD_CREATE", guild.payload())
    await eventually(lambda: _async(bot.get_guild(guild.id)), lambda found: found is not None)
    return guild


async def _async(value: Any) -> Any:
    return value


def manager_of(fake: FakeDiscord, guild: FakeGuild) -> FakeUser:
    return fake.add_user(f"manager{next(_names)}", guild=guild, roles=[guild.add_role("Mods", MANAGE_GUILD)])


async def test_a_server_manager_cannot_grant_ban_or_read_usage_of_members_of_another_server(
    fake: FakeDiscord, bot: ImagineBot, other_guild: FakeGuild
) -> None:
    manager_a = manager_of(fake, fake.guild)
    bob = fake.add_user(f"bob{next(_names)}", guild=other_guild)  # a member of the other server only
    refused = NOT_A_MEMBER.format(mention=bob.mention)
    assert await reply(fake, "admin grant", {"user": bob, "plan": "premium"}, user=manager_a) == refused
    assert await reply(fake, "admin ban", {"user": bob, "reason": "spite"}, user=manager_a) == refused
    assert await reply(fake, "admin usage", {"user": bob}, user=manager_a) == refused
    assert await bot.services.db.run(_count(Grant, Grant.user_id == bob.id)) == 0
    assert await bot.services.db.run(_count(Ban, Ban.user_id == bob.id)) == 0

    # A member of both: what the first server's manager does stays in the first server.
    carol = fake.add_user(f"carol{next(_names)}")
    other_guild.add_member(carol)
    granted = await reply(fake, "admin grant", {"user": carol, "plan": "premium"}, user=manager_a)
    assert granted == f"Granted **Premium** to {carol.mention} in this server until revoked."
    banned = await reply(fake, "admin ban", {"user": carol, "reason": "spam"}, user=manager_a)
    assert banned == f"Banned {carol.mention} in this server. Reason: spam"
    [grant] = await bot.services.db.run(_rows(Grant, Grant.user_id == carol.id))
    assert grant.guild_id == fake.guild.id

    here = await reply(fake, "info", user=carol)
    assert "**Plan:** Premium (granted here)" in here and "**Banned:** spam" in here
    assert await reply(fake, "imagine", {"prompt": "a cat"}, user=carol) == (
        "You are banned from using this bot. Reason: spam")
    there = await reply(fake, "info", user=carol, channel=other_guild.channels[0])
    assert "**Plan:** Test trial (default plan)" in there and "Banned" not in there

    manager_b = manager_of(fake, other_guild)
    usage_b = await reply(fake, "admin usage", {"user": carol}, user=manager_b, channel=other_guild.channels[0])
    assert "in this server: plan **Test trial**" in usage_b and "Grants: none" in usage_b
    assert "Banned: no" in usage_b
    usage_a = await reply(fake, "admin usage", {"user": carol}, user=manager_a)
    assert "in this server: plan **Premium**" in usage_a and "Banned: spam" in usage_a
    # The other server's manager can lift neither: the ban and the grant are not theirs.
    assert await reply(fake, "admin unban", {"user": carol}, user=manager_b, channel=other_guild.channels[0]) == (
        f"{carol.mention} is not banned in this server.")
    assert await reply(fake, "admin revoke", {"user": carol}, user=manager_b, channel=other_guild.channels[0]) == (
        f"{carol.mention} has no grant to revoke in this server.")
    assert await bot.services.db.run(_count(Ban, Ban.user_id == carol.id, Ban.lifted_at.is_(None))) == 1


async def test_a_forged_click_naming_a_job_of_another_server_or_channel_is_refused(
    fake: FakeDiscord, bot: ImagineBot, other_guild: FakeGuild
) -> None:
    author = fake.add_user(f"dan{next(_names)}")
    made = await fake.slash_command("imagine", {"prompt": "a lighthouse --seed 9"}, user=author)
    assert (await made.wait_ack()).type == 5
    [job] = await eventually(lambda: bot.services.db.run(_rows(Job, Job.user_id == author.id)), bool)

    stranger = fake.add_user(f"eve{next(_names)}", guild=other_guild)
    there = other_guild.channels[0]
    posted = await fake.post_as_user("hello", user=stranger, channel=there)
    children_before = await bot.services.db.run(_count(Job, Job.user_id == fake.user.id,
                                                       Job.parent_image_id.is_not(None)))
    for custom_id in (f"job:{job.id}:upscale:1", f"job:{job.id}:reroll", f"job:{job.id}:vary:2",
                      f"job:{job.id}:recipe", f"job:{job.id}:cancel"):
        assert await click_reply(fake, posted, custom_id, user=stranger, channel=there) == NOT_HERE
    # Another channel of the same server is refused too.
    elsewhere = fake.guild.channel("imagine")
    posted_here = await fake.post_as_user("hi", user=fake.user, channel=elsewhere)
    assert await click_reply(fake, posted_here, f"job:{job.id}:upscale:1", user=fake.user,
                             channel=elsewhere) == NOT_HERE
    assert await bot.services.db.run(_count(Job, Job.user_id == stranger.id)) == 0
    children = await bot.services.db.run(_count(Job, Job.user_id == fake.user.id, Job.parent_image_id.is_not(None)))
    assert children == children_before
    assert (await bot.services.db.run(_rows(Job, Job.id == job.id)))[0].state != "cancelled"


async def test_a_blocked_prompt_is_refused_with_an_appeal_and_logged_for_this_servers_admins(
    fake: FakeDiscord, bot: ImagineBot, other_guild: FakeGuild
) -> None:
    dora = fake.add_user(f"dora{next(_names)}")
    blocked = await fake.slash_command("imagine", {"prompt": "a n u d e w0man on the beach"}, user=dora)
    refusal = await ephemeral_answer(blocked)  # the public "thinking…" is gone: only dora sees why
    assert refusal["content"].startswith("Your prompt was blocked by this server's content filter: "
                                         "it contains “nude”.")
    [appeal_button] = [c for row in refusal["components"] for c in row["components"]]
    assert appeal_button["label"] == "Appeal" and appeal_button["custom_id"] == f"appeal:{blocked.id}"
    assert await bot.services.db.run(_count(Job, Job.user_id == dora.id)) == 0
    [event] = await eventually(lambda: bot.services.db.run(_rows(ModerationEvent, ModerationEvent.user_id == dora.id)),
                               bool)
    assert (event.kind, event.term, event.guild_id, event.appealed_at) == (
        "prompt_blocked", "nude", fake.guild.id, None)

    someone = fake.add_user(f"sam{next(_names)}")
    assert await click_reply(fake, refusal, appeal_button["custom_id"], user=someone, channel=fake.channel) == (
        "Only the member whose prompt was blocked can appeal it.")
    appealed = await fake.click(refusal, appeal_button["custom_id"], user=dora)
    answer = await appealed.wait_original(lambda m: bool(m.get("content")))
    assert answer["content"] == "Your appeal was sent to this server's admins. They'll review the prompt."
    assert await click_reply(fake, refusal, appeal_button["custom_id"], user=dora, channel=fake.channel) == (
        "You already appealed this; the admins have it.")

    manager = manager_of(fake, fake.guild)
    log = await reply(fake, "admin moderation", {"appeals": True}, user=manager)
    assert log.startswith("**Appeals** (this server, newest first)")
    assert f"prompt blocked · <@{dora.id}> · “nude” · a n u d e w0man on the beach · **appealed**" in log
    manager_b = manager_of(fake, other_guild)
    other_log = await reply(fake, "admin moderation", user=manager_b, channel=other_guild.channels[0])
    assert other_log == "Nothing blocked in this server."

    # This server adds a word of its own; the other server's filter does not have it.
    assert await reply(fake, "admin filter block", {"term": "clown"}, user=manager) == (
        "Prompts with “clown” are now blocked in this server.")
    assert (await reply(fake, "imagine", {"prompt": "a sad CL0WN"}, user=dora)).startswith(
        "Your prompt was blocked by this server's content filter: it contains “clown”.")
    listed = await reply(fake, "admin filter list", user=manager)
    assert listed.startswith("**Blocked here too:** “clown”\n**Allowed here:** none")
    assert await reply(fake, "admin filter block", {"term": "*"}, user=manager) == (
        "A term needs at least two letters or digits.")
    assert await bot.services.db.run(_count(Job, Job.user_id == dora.id)) == 0


async def test_a_stealth_job_is_its_owners_alone(fake: FakeDiscord, bot: ImagineBot) -> None:
    owner = fake.add_user(f"stella{next(_names)}")
    manager = manager_of(fake, fake.guild)
    await reply(fake, "admin grant", {"user": owner, "plan": "premium"}, user=manager)
    assert "Visibility: stealth" in await reply(fake, "settings", {"stealth": True}, user=owner)
    made = await fake.slash_command("imagine", {"prompt": "a secret garden --seed 5 --q .25"}, user=owner)
    assert (await made.wait_ack()).type == 5
    [job] = await eventually(lambda: bot.services.db.run(_rows(Job, Job.user_id == owner.id)), bool)
    assert job.stealth

    onlooker = fake.add_user(f"otto{next(_names)}")
    posted = await fake.post_as_user("look", user=onlooker)
    for custom_id in (f"job:{job.id}:upscale:1", f"job:{job.id}:recipe", f"job:{job.id}:reroll"):
        assert await click_reply(fake, posted, custom_id, user=onlooker, channel=fake.channel) == STEALTH
    assert await bot.services.db.run(_count(Job, Job.user_id == onlooker.id)) == 0
    assert not await bot.services.db.run(job_visible_to, job_id=job.id, user_id=onlooker.id)
    assert await bot.services.db.run(job_visible_to, job_id=job.id, user_id=owner.id)
    # The owner's own click passes the stealth check (a grid has no recipe: it is refused for that instead,
    # or because the job has not finished yet).
    assert await click_reply(fake, posted, f"job:{job.id}:recipe", user=owner, channel=fake.channel) in (
        "That job hasn't finished yet. Wait for its images, then try again.", NOT_OURS)
