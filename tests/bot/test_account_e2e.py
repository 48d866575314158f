"""Plans and fast time end to end: the real bot, the fake Discord, a real worker and PostgreSQL.

Plans come from tests/bot/plans.toml: a tiny job costs exactly 1 s; "tiny" and "tiny_relax" give 1 s.
Each test plays its own new members, so the tests do not share balances.
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.checks import NOT_ADMIN
from bot.client import ImagineBot
from db.models import Entitlement, Grant, Job, RolePlan
from tests.fakediscord import FakeDiscord, FakeUser
from tests.support.messages import ephemeral_answer, shows_result
from tests.support.waiting import eventually

GRID_TIMEOUT = 90.0
PREMIUM_SKU = 1100000000000000001
EPHEMERAL = 64
_names = itertools.count()


def member(fake: FakeDiscord, name: str, **kwargs: Any) -> FakeUser:
    return fake.add_user(f"{name}{next(_names)}", **kwargs)


def _has_grid(message: dict[str, Any]) -> bool:
    return shows_result(message)


async def ephemeral_reply(fake: FakeDiscord, command: str, options: dict[str, Any] | None = None,
                          **kwargs: Any) -> str:
    """Run a command; return the text of its ephemeral answer."""
    interaction = await fake.slash_command(command, options or {}, **kwargs)
    return str((await ephemeral_answer(interaction))["content"])


async def grant(fake: FakeDiscord, user: FakeUser, plan: str) -> None:
    reply = await ephemeral_reply(fake, "admin grant", {"user": user, "plan": plan}, user=fake.owner)
    assert reply.startswith("Granted **") and "until revoked" in reply, reply


def _jobs_of(user_id: int) -> Any:
    def read(*, session: Session) -> list[tuple[str, str, int, int | None]]:
        rows = session.execute(
            select(Job.lane, Job.state, Job.reserved_ms, Job.charged_ms).where(Job.user_id == user_id).order_by(Job.id)
        ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]
    return read


def _count(model: Any, *conditions: Any) -> Any:
    def read(*, session: Session) -> int:
        return int(session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one())
    return read


async def test_on_a_tiny_plan_without_relax_running_out_is_refused(fake: FakeDiscord, bot: ImagineBot) -> None:
    bob = member(fake, "bob")
    await grant(fake, bob, "tiny")

    first = await fake.slash_command("imagine", {"prompt": "the first job fits --seed 1"}, user=bob)
    assert (await first.wait_ack()).type == 5
    refusal = await ephemeral_reply(fake, "imagine", {"prompt": "the second does not --seed 2"}, user=bob)
    assert refusal.startswith("Not enough fast time: this needs about 1s and you have 0s left."), refusal
    assert "`/subscribe`" in refusal and "relax mode" in refusal

    await first.wait_original(_has_grid, timeout=GRID_TIMEOUT)
    jobs = await eventually(lambda: bot.services.db.run(_jobs_of(bob.id)), lambda j: j[0][3] is not None)
    assert len(jobs) == 1 and jobs[0][:3] == ("fast", "succeeded", 1000)  # the refusal left no job row
    assert 0 < jobs[0][3] <= 1000  # charged its GPU time, capped at the plan's second

    info = await ephemeral_reply(fake, "info", user=bob)
    assert "**Plan:** Tiny (granted here)" in info
    assert "used of 1s" in info and "**Jobs:** none waiting or running" in info
    relax = await ephemeral_reply(fake, "relax", user=bob)
    assert relax == "Your plan (Tiny) has no relax mode. Use `/subscribe` to see the plans that include it."


async def test_on_a_tiny_plan_with_relax_running_out_moves_jobs_to_relax(fake: FakeDiscord, bot: ImagineBot) -> None:
    carol = member(fake, "carol")
    await grant(fake, carol, "tiny_relax")

    # Two at once: whichever the bot takes first gets the one second of fast time, the other goes to relax.
    first = await fake.slash_command("imagine", {"prompt": "one job --seed 3"}, user=carol)
    second = await fake.slash_command("imagine", {"prompt": "another job --seed 4"}, user=carol)
    assert (await first.wait_ack()).type == 5 and (await second.wait_ack()).type == 5
    grids = [await it.wait_original(_has_grid, timeout=GRID_TIMEOUT) for it in (first, second)]
    relaxed = [m["content"] for m in grids if " · relax · " in m["content"]]
    assert len(relaxed) == 1 and "so this job runs in relax mode" in relaxed[0], [m["content"] for m in grids]
    jobs = await eventually(lambda: bot.services.db.run(_jobs_of(carol.id)),
                            lambda j: all(row[3] is not None for row in j))
    assert sorted((lane, state, reserved) for lane, state, reserved, _ in jobs) == [
        ("fast", "succeeded", 1000), ("relax", "succeeded", 0)]
    assert [charged for lane, _, _, charged in jobs if lane == "relax"] == [0]  # relax is free

    info = await ephemeral_reply(fake, "info", user=carol)
    assert "**Plan:** Tiny relax (granted here)" in info and "used of 1s" in info
    assert "**Lane:** fast" in info
    assert (await ephemeral_reply(fake, "relax", user=carol)).startswith("Relax mode: your jobs use no fast time")
    assert "**Lane:** relax" in await ephemeral_reply(fake, "info", user=carol)


async def test_admin_commands_are_refused_to_members_and_check_their_input(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    dave, erin = member(fake, "dave"), member(fake, "erin")
    before = await bot.services.db.run(_count(Grant, Grant.user_id == erin.id))

    assert await ephemeral_reply(fake, "admin grant", {"user": erin, "plan": "premium"}, user=dave) == NOT_ADMIN
    assert await ephemeral_reply(fake, "admin ban", {"user": erin}, user=dave) == NOT_ADMIN
    unknown = await ephemeral_reply(fake, "admin grant", {"user": erin, "plan": "gold"}, user=fake.owner)
    assert unknown.startswith("Unknown plan `gold`. Choose one of: `trial`, `tiny`")
    assert await bot.services.db.run(_count(Grant, Grant.user_id == erin.id)) == before

    # A server manager (Manage Server) may: role plans for this server, usage, bans.
    role = fake.guild.add_role("Patron")
    manager = member(fake, "manager", roles=[fake.guild.add_role("Mods", 1 << 5)])
    reply = await ephemeral_reply(fake, "admin role-plan", {"role": role, "plan": "premium"}, user=manager)
    assert reply == f"Members with <@&{role.id}> now get **Premium**."
    assert await bot.services.db.run(_count(RolePlan, RolePlan.role_id == role.id)) == 1
    fan = member(fake, "fan", roles=[role])
    assert "**Plan:** Premium (role" in await ephemeral_reply(fake, "info", user=fan)

    usage = await ephemeral_reply(fake, "admin usage", {"user": fan}, user=manager)
    assert "plan **Premium**" in usage and "0s used" in usage and "10h 00m left of 10h 00m" in usage

    assert (await ephemeral_reply(fake, "admin ban", {"user": erin, "reason": "spam"}, user=manager)).startswith(
        "Banned <@")
    before_jobs = await bot.services.db.run(_count(Job, Job.user_id == erin.id))
    assert await ephemeral_reply(fake, "imagine", {"prompt": "a cat"}, user=erin) == (
        "You are banned from using this bot. Reason: spam")
    assert await bot.services.db.run(_count(Job, Job.user_id == erin.id)) == before_jobs
    assert await ephemeral_reply(fake, "admin unban", {"user": erin}, user=manager) == (
        f"Unbanned <@{erin.id}> in this server.")


async def test_a_premium_subscription_gives_its_plan(fake: FakeDiscord, bot: ImagineBot) -> None:
    frank = member(fake, "frank")
    subscribe = await ephemeral_reply(fake, "subscribe", user=frank)
    assert "**Test trial** ← your plan" not in subscribe and "← your plan" in subscribe
    assert "**Premium** ($1 / month)" in subscribe

    entitlement = await fake.grant_entitlement(frank, PREMIUM_SKU)
    await eventually(lambda: bot.services.db.run(_count(Entitlement, Entitlement.user_id == frank.id)),
                     lambda n: n == 1)
    info = await ephemeral_reply(fake, "info", user=frank)
    assert f"**Plan:** Premium (subscription (SKU {PREMIUM_SKU}))" in info and "10h 00m left" in info
    assert (await ephemeral_reply(fake, "turbo", user=frank)).startswith("Turbo mode")

    await fake.delete_entitlement(entitlement)  # refunded: back to the default plan
    await eventually(
        lambda: bot.services.db.run(_count(Entitlement, Entitlement.user_id == frank.id,
                                           Entitlement.deleted.is_(True))),
        lambda n: n == 1,
    )
    info = await ephemeral_reply(fake, "info", user=frank)
    assert "**Plan:** Test trial (default plan)" in info
    assert "**Lane:** fast (your plan has no turbo mode)" in info


async def test_settings_fill_in_what_the_prompt_leaves_out(fake: FakeDiscord, bot: ImagineBot) -> None:
    gina = member(fake, "gina")
    shown = await ephemeral_reply(fake, "settings", {"aspect": "16:9"}, user=gina)
    assert "Default aspect: 16:9" in shown
    stealth = await ephemeral_reply(fake, "settings", {"stealth": True}, user=gina)
    assert stealth.startswith("Your plan (Test trial) has no stealth mode.")

    interaction = await fake.slash_command("imagine", {"prompt": "a wide default --seed 5"}, user=gina)
    message = await interaction.wait_original(_has_grid, timeout=GRID_TIMEOUT)
    assert "--ar 16:9" in message["content"]
    inline = await fake.slash_command("imagine", {"prompt": "a square anyway --ar 1:1 --seed 6"}, user=gina)
    message = await inline.wait_original(_has_grid, timeout=GRID_TIMEOUT)
    assert "--ar 16:9" not in message["content"]


async def test_relax_in_the_prompt_runs_that_job_in_relax_and_charges_nothing(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    dan = member(fake, "dan")
    await grant(fake, dan, "tiny_relax")

    interaction = await fake.slash_command("imagine", {"prompt": "a quiet harbour --relax --seed 3"}, user=dan)
    message = await interaction.wait_original(_has_grid, timeout=GRID_TIMEOUT)

    assert " · relax · " in message["content"]
    jobs = await eventually(lambda: bot.services.db.run(_jobs_of(dan.id)), lambda j: bool(j) and j[0][3] is not None)
    assert jobs == [("relax", "succeeded", 0, 0)]
