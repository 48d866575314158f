"""Which lane a job runs in: the member's chosen lane, what their plan allows, and the fast time left.

Lanes are tried in order from the chosen one down: turbo (twice the fast time, served first), fast (the
GPU time), relax (free, served last). A lane the plan does not include is skipped with a note. When the
fast time left cannot cover a job, it moves down a lane (turbo to fast, fast to relax) if the plan
allows, with a note; when no lane is left the job is refused, and the message says how to get more.

:func:`choose_lane` holds that rule once: the submit transaction calls it with a conditional reservation
(``db.submission``), :func:`assign_lanes` with a snapshot of the fast time left, so the bot can refuse
before it answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.costs import reserve_ms
from domain.errors import NotAllowedError, OutOfFastTimeError
from domain.plans import Period, Plan, format_ms
from domain.spec import LANE_ORDER, Lane

__all__ = [
    "LaneChoice",
    "assign_lanes",
    "check_lane_allowed",
    "choose_lane",
    "describe_lane",
    "fallback_note",
    "lanes_to_try",
    "out_of_fast_time",
    "renewal_text",
]

_SUBSCRIBE = "Use `/subscribe` to see the plans"


@dataclass(frozen=True, slots=True)
class LaneChoice:
    lane: Lane
    #: Why the job runs in another lane than the member chose; None when it runs where they chose.
    note: str | None = None


def renewal_text(period: Period) -> str:
    return f"renews on {period.end:%Y-%m-%d}" if period.end is not None else "does not renew"


def check_lane_allowed(lane: Lane, plan: Plan) -> None:
    """Raise :class:`NotAllowedError` when ``plan`` does not include ``lane`` (for /relax, /turbo)."""
    if not plan.allows(lane):
        raise NotAllowedError(
            f"Your plan ({plan.display_name}) has no {lane.value} mode. {_SUBSCRIBE} that include it."
        )


def lanes_to_try(requested: Lane, plan: Plan) -> tuple[list[Lane], str | None]:
    """The lanes to try, best first, and a note when the chosen lane is not in the plan."""
    lanes = [lane for lane in LANE_ORDER[LANE_ORDER.index(requested):] if plan.allows(lane)]
    note = None
    if not plan.allows(requested):
        # A chosen lane the plan lost (a downgrade): run in fast, the lane every plan has.
        lanes = [Lane.FAST, *(lane for lane in lanes if lane is not Lane.FAST)]
        note = f"Your plan has no {requested.value} mode, so this job runs in fast mode."
    return lanes, note


def fallback_note(skipped: Lane, lane: Lane, period: Period) -> str:
    """The note on a job moved from ``skipped`` to ``lane`` for want of fast time."""
    if skipped is Lane.TURBO:
        return f"Not enough fast time left for turbo (it costs twice as much), so this job runs in {lane.value} mode."
    return (
        f"You have used your fast time for this period, so this job runs in relax mode. "
        f"Fast time {renewal_text(period)}; {_SUBSCRIBE.lower()} with more."
    )


def out_of_fast_time(plan: Plan, period: Period, needed_ms: int, left_ms: int) -> OutOfFastTimeError:
    """The refusal for a job that no lane of the plan can take."""
    if plan.renews:
        when = f"Your {plan.display_name} plan's fast time {renewal_text(period)}"
    else:
        when = f"The {plan.display_name} plan's fast time does not renew"
    return OutOfFastTimeError(
        f"Not enough fast time: this needs about {format_ms(needed_ms)} and you have {format_ms(left_ms)} left. "
        f"{when}. {_SUBSCRIBE} with more fast time"
        + (" or relax mode." if not plan.relax else ".")
    )


def choose_lane(
    requested: Lane, plan: Plan, period: Period, estimate: int, *,
    reserve: Callable[[int], bool], left_ms: Callable[[], int],
) -> tuple[LaneChoice, int]:
    """The lane of one job and the fast time it holds there.

    From ``requested`` down, the first lane the plan includes whose reservation ``reserve(amount)`` accepts
    (relax reserves nothing, so it always fits). Raises :class:`OutOfFastTimeError` (with ``left_ms()``)
    when no lane can take the job.
    """
    lanes, first_note = lanes_to_try(requested, plan)
    for index, lane in enumerate(lanes):
        amount = reserve_ms(lane, estimate)
        if amount == 0 or reserve(amount):
            note = fallback_note(lanes[index - 1], lane, period) if index else first_note
            return LaneChoice(lane, note), amount
    raise out_of_fast_time(plan, period, reserve_ms(lanes[-1], estimate) or estimate, left_ms())


def assign_lanes(requested: Lane, plan: Plan, period: Period, left_ms: int,
                 estimates: Sequence[int]) -> list[LaneChoice]:
    """The lane of each job of one request, given ``left_ms`` of fast time; raises
    :class:`OutOfFastTimeError` when one of them fits no lane (then none is submitted)."""
    left = [left_ms]

    def take(amount: int) -> bool:
        if amount > left[0]:
            return False
        left[0] -= amount
        return True

    return [choose_lane(requested, plan, period, estimate, reserve=take, left_ms=lambda: left[0])[0]
            for estimate in estimates]


def describe_lane(chosen: Lane, plan: Plan, left_ms: int) -> str:
    """The member's lane for /info: what they chose and where their next job would run."""
    lanes, _ = lanes_to_try(chosen, plan)
    effective = lanes[0]
    if effective is not Lane.RELAX and left_ms <= 0:
        effective = Lane.RELAX if plan.relax else effective
        if effective is Lane.RELAX:
            return f"{chosen.value} (out of fast time: jobs run in relax)"
        return f"{chosen.value} (out of fast time)"
    if effective is not chosen:
        return f"{effective.value} (your plan has no {chosen.value} mode)"
    return chosen.value
