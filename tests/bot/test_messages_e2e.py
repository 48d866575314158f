"""Job messages as members see them, end to end: the real bot, the fake Discord (refusing what Discord's OpenAPI
description refuses), a real worker and the tiny model. Buttons as in Midjourney, queue positions that count
down with an ETA, messages within 2,000 characters, /show /cancel /queue, and prompts from older versions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.client import ImagineBot
from bot.limits import MAX_CONTENT
from db import jobs as jobs_db
from db import plans as plans_db
from db.models import Job
from domain.prompt import MAX_PROMPT_CHARS
from domain.spec import JobKind, JobState
from tests.fakediscord import FakeDiscord, FakeInteraction, FakeUser, buttons
from tests.support.messages import ephemeral_answer, shows_result
from tests.support.services import WorkerProcess
from tests.support.waiting import eventually

#: Generous: the first job of a session loads the model, and the machine may be busy.
TIMEOUT = 300.0
EPHEMERAL = 64
GRID_LABELS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]
#: Long enough for the clicks and commands below to land while it runs.
LONG = "--steps 150"


def labels(message: dict[str, Any]) -> list[str]:
    return [b.get("label") or b.get("emoji", {}).get("name") for b in buttons(message)]


def button(message: dict[str, Any], label: str) -> dict[str, Any]:
    return next(b for b in buttons(message) if (b.get("label") or b.get("emoji", {}).get("name")) == label)


def job_id_of(message: dict[str, Any]) -> int:
    return int(buttons(message)[0]["custom_id"].split(":")[1])


async def click(fake: FakeDiscord, message: dict[str, Any], label: str, **options: Any) -> FakeInteraction:
    interaction = await fake.click(message, button(message, label)["custom_id"], **options)
    ack = await interaction.wait_ack()
    assert ack.delay < 3.0, ack
    return interaction


async def ephemeral(interaction: FakeInteraction) -> str:
    note = await interaction.wait_followup(lambda m: bool(m["flags"] & EPHEMERAL), timeout=60)
    return str(note["content"])


async def answer(interaction: FakeInteraction) -> str:
    """The ephemeral answer of a deferred (thinking) command."""
    ack = await interaction.wait_ack()
    assert ack.delay < 3.0 and ack.type == 5 and ack.data.get("flags", 0) & EPHEMERAL, ack
    message = await interaction.wait_original(lambda m: not m["flags"] & 128, timeout=60)  # no longer "thinking"
    return str(message["content"])


async def imagine(fake: FakeDiscord, prompt: str, user: FakeUser | None = None) -> FakeInteraction:
    interaction = await fake.slash_command("imagine", {"prompt": prompt}, user=user)
    assert (await interaction.wait_ack()).delay < 3.0
    return interaction


def _jobs_of(*, session: Session, user_id: int) -> list[Job]:
    return list(session.execute(select(Job).where(Job.user_id == user_id).order_by(Job.id)).scalars())


def _live_jobs(*, session: Session) -> list[tuple[Any, ...]]:
    """Jobs queued or running, anyone's: what a position counts."""
    return [tuple(row) for row in session.execute(
        select(Job.id, Job.user_id, Job.queue, Job.state, Job.published_at, Job.started_at)
        .where(Job.state.in_([JobState.QUEUED.value, JobState.RUNNING.value])).order_by(Job.id))]


def _make_stealth(*, session: Session, job_id: int) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(stealth=True))


@pytest.fixture(scope="module")
async def grid(fake: FakeDiscord, bot: ImagineBot) -> dict[str, Any]:
    interaction = await imagine(fake, "a fox in the snow --seed 77")
    return await interaction.wait_original(shows_result, timeout=TIMEOUT)


async def test_the_result_names_model_lane_times_and_its_file_comes_from_the_prompt(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    job = await bot.services.db.run(jobs_db.get, job_id=job_id_of(grid))
    assert job is not None
    title = grid["content"].splitlines()[0]
    assert title.startswith("**a fox in the snow --seed 77** - ")
    assert re.search(rf"\({job.model} · fast · ready in [0-9.]+ (s|min)[^)]* · GPU [0-9.]+ s\)$", title), title
    assert [f.filename for f in fake.files(grid)] == [f"a_fox_in_the_snow_{job.id}.png"]


async def test_rerolls_minutes_apart_are_two_jobs_and_a_double_click_is_one(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    first = await (await click(fake, grid, "🔄")).wait_followup(shows_result, timeout=TIMEOUT)
    # A double click: the same member and button at once.
    fake.advance_clock(240)
    cid = button(grid, "🔄")["custom_id"]
    a, b = await fake.click(grid, cid), await fake.click(grid, cid)
    for interaction in (a, b):
        assert (await interaction.wait_ack()).delay < 3.0
    second = await fake.wait_until(lambda: [m for i in (a, b) for m in i.followups if shows_result(m)] or None,
                                   timeout=TIMEOUT, what="the second reroll")
    await bot.delivery.wait_idle()
    rerolls = [j for j in await bot.services.db.run(_jobs_of, user_id=fake.user.id)
               if j.kind == JobKind.REROLL and j.idem_key.startswith(f"button:{grid['id']}:{cid}:")]
    assert [j.id for j in rerolls] == [job_id_of(first), job_id_of(second[0])]
    assert rerolls[0].spec["seed"] != rerolls[1].spec["seed"]


async def test_a_used_u_button_is_marked_and_upscaling_it_again_points_to_the_result(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    assert button(grid, "U3")["style"] == 2  # secondary: not used yet
    upscale = await (await click(fake, grid, "U3")).wait_followup(shows_result, timeout=TIMEOUT)
    marked = fake.message(grid)
    assert button(marked, "U3")["style"] == 1 and button(marked, "U1")["style"] == 2  # primary: used
    assert labels(marked) == GRID_LABELS
    job = await bot.services.db.run(jobs_db.get, job_id=job_id_of(upscale))
    assert job is not None
    assert [f.filename for f in fake.files(upscale)] == [f"a_fox_in_the_snow_{job.id}_3.png"]
    # Its Recipe names the job, for /show.
    recipe = await (await click(fake, upscale, "Recipe")).wait_original()
    assert f"Job: `{job.id}` (`/show {job.id}` posts it again)" in recipe["content"]

    fake.advance_clock(60)
    before = len(await bot.services.db.run(_jobs_of, user_id=fake.user.id))
    again = await click(fake, marked, "U3")
    note = await ephemeral(again)
    assert note.startswith("You already upscaled Image #3") and upscale["id"] in note, note
    assert len(await bot.services.db.run(_jobs_of, user_id=fake.user.id)) == before


async def test_three_queued_jobs_count_down_to_1_with_an_eta_and_queue_and_cancel_work(
    fake: FakeDiscord, bot: ImagineBot, worker: WorkerProcess
) -> None:
    # The session's worker may still be running what earlier modules left queued: positions count from here.
    await eventually(lambda: bot.services.db.run(_live_jobs), lambda live: not live, timeout=240)
    blocker_owner, member = fake.add_user("blocker"), fake.add_user("queuer")
    blocker = await imagine(fake, f"a long night {LONG} --seed 1", blocker_owner)
    await blocker.wait_original(lambda m: "%" in m["content"], timeout=TIMEOUT)
    # The blocker runs until the member's jobs have been listed and one cancelled (on a quiet machine its 150
    # steps took 5 s: the queued jobs started before their positions were read).
    with worker.paused():
        waiting = [await imagine(fake, f"a queued thing number {n} --seed {n}", member) for n in (1, 2, 3)]
        try:
            third = await waiting[2].wait_original(lambda m: "position 3 in the queue, about" in m["content"],
                                                   timeout=60)
        except TimeoutError:
            live = await bot.services.db.run(_live_jobs)
            read = [v["content"] for v in fake.message_versions.get(int(waiting[2].original["id"]), [])] \
                if waiting[2].original else []
            raise AssertionError(f"the third job's message read {read}; jobs queued or running: {live}") from None

        # /queue lists the member's three jobs with positions and ETAs.
        listed = await answer(await fake.slash_command("queue", {}, user=member))
        lines = listed.splitlines()
        assert lines[0] == "**Your jobs** (3 queued or running)"
        assert [re.search(r"position (\d) in the queue · about \d+ (s|min)", line) is not None
                for line in lines[1:]] == [True] * 3, listed

        # /cancel JOB: the second one goes; someone else's job is not theirs to cancel.
        rows = await bot.services.db.run(_jobs_of, user_id=member.id)
        assert await answer(await fake.slash_command("cancel", {"job": rows[0].id}, user=blocker_owner)) == (
            f"There is no job `{rows[0].id}` that you can see. `/queue` lists yours; a Recipe names its job.")
        cancelled = await answer(await fake.slash_command("cancel", {"job": rows[1].id}, user=member))
        assert cancelled.startswith(f"Cancelled `{rows[1].id}`")
        await waiting[1].wait_original(lambda m: "(cancelled)" in m["content"] and not buttons(m), timeout=60)
    # /cancel with no job: all of the blocker's jobs (the running one stops at its next step).
    stopping = await answer(await fake.slash_command("cancel", {}, user=blocker_owner))
    assert stopping.startswith("Stopping `"), stopping
    assert await answer(await fake.slash_command("cancel", {}, user=blocker_owner)) == (
        "You have no queued or running jobs to cancel.")

    done = await waiting[2].wait_original(shows_result, timeout=TIMEOUT)
    shown: list[int] = []
    for version in fake.message_versions[int(third["id"])]:
        found = re.search(r"position (\d+) in the queue, about \d+ (s|min)\)", version["content"])
        if found and (not shown or shown[-1] != int(found[1])):
            shown.append(int(found[1]))
    assert shown == [3, 2, 1], [v["content"] for v in fake.message_versions[int(third["id"])]]
    assert "a queued thing number 3" in done["content"]


async def test_show_posts_a_job_again_with_fresh_buttons_to_whoever_may_see_it(
    fake: FakeDiscord, bot: ImagineBot, grid: dict[str, Any]
) -> None:
    job_id = job_id_of(grid)
    mine = await fake.slash_command("show", {"job": job_id})
    assert await answer(mine) == f"Job `{job_id}` is posted again below."
    posted = await mine.wait_followup(shows_result, timeout=60)
    assert labels(posted) == GRID_LABELS and not posted["flags"] & EPHEMERAL
    assert posted["content"].splitlines()[0] == grid["content"].splitlines()[0]
    assert fake.files(posted)[0].data == fake.files(grid)[0].data
    # Its fresh buttons work: V2 from the re-posted message is a new job.
    varied = await (await click(fake, posted, "V2")).wait_followup(shows_result, timeout=TIMEOUT)
    assert "Variations (Strong) by" in varied["content"]

    # Another member in the same server may see it; once it is stealth, only its owner may.
    dave = fake.add_user("dave")
    theirs = await fake.slash_command("show", {"job": job_id}, user=dave)
    assert await answer(theirs) == f"Job `{job_id}` is posted again below."
    await bot.services.db.run(_make_stealth, job_id=job_id)
    refused = await fake.slash_command("show", {"job": job_id}, user=dave)
    assert await answer(refused) == (
        f"There is no job `{job_id}` that you can see. `/queue` lists yours; a Recipe names its job.")
    assert not [m for m in refused.followups if not m["flags"] & EPHEMERAL]  # nothing public was posted


async def test_the_longest_prompt_with_every_note_stays_within_discord_and_keeps_its_seed(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    ignored = ("--hd --test --testp --upbeta --uplight --upanime --creative --video --loop --public "
               "--stealth --beta --remaster --iw 2 --weird 5 --sv 4 --sref https://x.y/a.png --profile abc --style 4a")
    repeats = " ".join(f"--ar {n}:{n + 1}" for n in range(1, 25))
    text = ("\u200b" + "an old lighthouse on a cliff ") * 60
    text = text[: MAX_PROMPT_CHARS - 20]
    prompt = (f"https://x.y/ref.png {text} --no fog {ignored} {repeats} --q 5 --s 4000 --v 9 "
              "--seed 4294967295 --c 100 --stop 90 --steps 8")
    assert len(prompt) <= 6000
    interaction = await imagine(fake, prompt)
    message = await interaction.wait_original(shows_result, timeout=TIMEOUT)
    for version in fake.message_versions[int(message["id"])]:
        assert len(version["content"]) <= MAX_CONTENT
    title = message["content"].splitlines()[0]
    assert "…" in title and "--seed 4294967295 --no fog" in title and "--steps 8" in title
    notes = [line for line in message["content"].splitlines() if line.startswith("-# ")]
    assert len(notes) > 5


async def test_prompts_pasted_from_older_midjourney_versions_run_with_notes(
    fake: FakeDiscord, bot: ImagineBot
) -> None:
    interaction = await imagine(fake, "an old castle --s 4000 --q 5 --beta --upbeta --seed 9")
    message = await interaction.wait_original(shows_result, timeout=TIMEOUT)
    lines = message["content"].splitlines()
    assert lines[0].startswith("**an old castle --seed 9 --s 1000 --q 2** - ")
    assert "-# Ignored Midjourney parameters this bot does not have: `--beta`, `--upbeta`." in lines
    assert "-# `--s 4000` (older Midjourney versions) is above this bot's 1000; used `--s 1000`." in lines
    assert "-# `--q 5` (older Midjourney versions) is not available here; used `--q 2`, the highest." in lines
    job = await eventually(lambda: bot.services.db.run(jobs_db.get, job_id=job_id_of(message)),
                           lambda j: j is not None and j.delivered_state == JobState.SUCCEEDED)
    assert job is not None and job.spec["stylize"] == 1000 and job.spec["quality"] == 2.0


async def test_imagine_offers_the_documented_options_with_their_ranges(fake: FakeDiscord, bot: ImagineBot) -> None:
    options = {o["name"]: o for o in fake.commands["imagine"]["options"]}
    assert list(options) == ["prompt", "aspect", "seed", "negative", "model", "stylize", "chaos", "quality", "stop",
                             "tile", "raw", "repeat", "steps", "cfg", "sampler", "lora"]
    assert (options["stylize"]["min_value"], options["stylize"]["max_value"]) == (0, 1000)
    assert (options["cfg"]["min_value"], options["cfg"]["max_value"]) == (0, 30)
    assert [c["value"] for c in options["quality"]["choices"]] == [0.25, 0.5, 1, 2]
    typed = await fake.slash_command("imagine", {"prompt": "a red kite", "stylize": 250, "chaos": 10,
                                                 "quality": 0.5, "seed": 3, "tile": True})
    message = await typed.wait_original(shows_result, timeout=TIMEOUT)
    assert message["content"].startswith("**a red kite --seed 3 --s 250 --c 10 --q 0.5 --tile** - ")


def _grant_until(*, session: Session, user_id: int, expires_at: datetime) -> None:
    from domain.plans import load_plans
    from tests.bot.conftest import TEST_PLANS

    plans_db.grant_plan(session=session, user_id=user_id, plan="premium", book=load_plans(TEST_PLANS),
                        granted_by=None, expires_at=expires_at)


async def test_info_says_when_a_grant_ends_not_a_renewal_it_will_not_see(fake: FakeDiscord, bot: ImagineBot) -> None:
    granted = fake.add_user("granted")
    ends = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=20)
    await bot.services.db.run(_grant_until, user_id=granted.id, expires_at=ends)
    interaction = await fake.slash_command("info", {}, user=granted)
    text = (await ephemeral_answer(interaction))["content"]
    assert f"**Ends:** {ends:%Y-%m-%d}" in text and "Renews" not in text, text
