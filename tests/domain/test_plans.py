"""Plans: the shipped file, the file format and its errors, periods, where a plan comes from, lanes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.errors import NotAllowedError, OutOfFastTimeError, PlanError
from domain.lanes import assign_lanes, check_lane_allowed, describe_lane, lanes_to_try
from domain.plans import (
    Period,
    PlanSource,
    SourceKind,
    add_months,
    current_period,
    format_ms,
    grant_expiry,
    load_plans,
    parse_plans,
    resolve_plan,
)
from domain.spec import Lane
from tests.support.services import REPO

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


def book(**plans: dict[str, Any]) -> Any:
    return parse_plans({"default": next(iter(plans)), "plans": plans})


# -- the shipped file --------------------------------------------------------------------------------------


def test_the_shipped_plans_follow_the_market_leader() -> None:
    shipped = load_plans(REPO / "imagine" / "plans.toml")
    assert shipped.default == "trial"
    assert [p.name for p in shipped.ranked()] == ["trial", "basic", "standard", "pro", "mega"]
    trial, basic, standard, pro, mega = shipped.ranked()
    assert trial.fast_ms > 0 and not trial.renews and not trial.relax  # a fresh install answers at once
    assert (basic.fast_ms, basic.running_limit(Lane.FAST), basic.queued[Lane.FAST]) == (11_880_000, 3, 10)
    assert not basic.relax and standard.relax and standard.fast_ms == 15 * 3_600_000
    assert pro.fast_ms == 30 * 3_600_000 and pro.stealth and pro.running_limit(Lane.FAST) == 12
    assert mega.fast_ms == 60 * 3_600_000
    assert "unlimited relax" in standard.summary() and "3h 18m" in basic.summary()


# -- the file format ---------------------------------------------------------------------------------------


def test_a_plan_in_full() -> None:
    plans = parse_plans({
        "default": "free",
        "plans": {
            "free": {"fast_seconds": 60, "period": "once"},
            "gold": {"display_name": "Gold", "rank": 99, "fast_hours": 1.5, "relax": True, "turbo": True,
                     "stealth": True, "concurrent": {"fast": 5, "relax": 2}, "queued": 7, "max_jobs": 12,
                     "price": "$5", "sku_ids": [123, "456"]},
        },
        "costs": {"tiny": {"overhead_ms": 1000, "ms_per_megapixel_step": 0}},
    })
    gold = plans.get("GOLD")
    assert (gold.display_name, gold.rank, gold.fast_ms, gold.max_jobs, gold.sku_ids) == ("Gold", 99, 5_400_000,
                                                                                        12, (123, 456))
    assert gold.concurrent == {Lane.TURBO: 3, Lane.FAST: 5, Lane.RELAX: 2}
    assert gold.active_limit(Lane.FAST) == 12 and gold.lanes == [Lane.TURBO, Lane.FAST, Lane.RELAX]
    assert plans.for_sku(456) is gold and plans.for_sku(1) is None
    assert plans.plans["free"].lanes == [Lane.FAST] and not plans.plans["free"].renews
    assert plans.cost_model("tiny", "sd15").overhead_ms == 1000
    assert plans.cost_model("other", "sdxl") == plans.costs["sdxl"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"plans": {}}, "defines no"),
        ({"default": "nope", "plans": {"a": {}}}, "default plan 'nope'"),
        ({"plans": {"a": {"fast_hours": -1}}}, "fast time must be a number >= 0"),
        ({"plans": {"a": {"fast_hours": 1, "fast_seconds": 2}}}, "not both"),
        ({"plans": {"a": {"relax": "yes"}}}, "`relax` must be true or false"),
        ({"plans": {"a": {"period": "weekly"}}}, "`period` must be one of month, once"),
        ({"plans": {"a": {"concurrent": 0}}}, "`concurrent.turbo` must be a whole number >= 1"),
        ({"plans": {"a": {"queued": {"slow": 1}}}}, "unknown lanes"),
        ({"plans": {"a": {"fast_hourz": 1}}}, "unknown keys ['fast_hourz']"),
        ({"plans": {"A b": {}}}, "must be lower-case"),
        ({"plans": {"a": {"sku_ids": [1]}, "b": {"sku_ids": [1]}}}, "SKU 1 is listed by both"),
        ({"plans": {"a": {}}, "costs": {"sd15": {"overhead_ms": -1}}}, "must be a number >= 0"),
    ],
)
def test_a_bad_plans_file_says_what_is_wrong(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plans(data)
    assert message in str(caught.value)


def test_load_plans_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="does not exist"):
        load_plans(tmp_path / "missing.toml")
    broken = tmp_path / "plans.toml"
    broken.write_text("[plans.a\n")
    with pytest.raises(PlanError, match="is not valid TOML"):
        load_plans(broken)
    broken.write_text("[plans.a]\nrelax = 1\n")
    with pytest.raises(PlanError, match=f"plans file {broken}: plan 'a'"):
        load_plans(broken)


def test_an_unknown_plan_names_the_known_ones() -> None:
    with pytest.raises(PlanError, match=r"Unknown plan `gold`\. Choose one of: `a`, `b`"):
        book(a={}, b={}).get("gold")


@pytest.mark.parametrize("days", [0, -3, 3651, 10**9, True])
def test_grants_of_bad_length_are_refused(days: int) -> None:
    with pytest.raises(PlanError, match="from 1 to 3650"):
        grant_expiry(NOW, days)


def test_grant_expiry() -> None:
    assert grant_expiry(NOW, None) is None
    assert grant_expiry(NOW, 30) == NOW + timedelta(days=30)


# -- periods -----------------------------------------------------------------------------------------------


def test_months_clamp_to_the_end_of_the_month_and_come_back() -> None:
    anchor = datetime(2026, 1, 31, 9, tzinfo=UTC)
    assert add_months(anchor, 1) == datetime(2026, 2, 28, 9, tzinfo=UTC)
    assert add_months(anchor, 2) == datetime(2026, 3, 31, 9, tzinfo=UTC)
    assert add_months(anchor, 13) == datetime(2027, 2, 28, 9, tzinfo=UTC)
    assert add_months(anchor, -2) == datetime(2025, 11, 30, 9, tzinfo=UTC)


def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (at(2026, 1, 31, 9), at(2026, 1, 31, 9), at(2026, 2, 28, 9)),
        (at(2026, 2, 28, 8), at(2026, 1, 31, 9), at(2026, 2, 28, 9)),
        (at(2026, 2, 28, 9), at(2026, 2, 28, 9), at(2026, 3, 31, 9)),
        (at(2026, 4, 1), at(2026, 3, 31, 9), at(2026, 4, 30, 9)),
        (at(2027, 1, 30), at(2026, 12, 31, 9), at(2027, 1, 31, 9)),
    ],
)
def test_periods_renew_monthly_from_the_anchor(now: datetime, start: datetime, end: datetime) -> None:
    assert current_period(at(2026, 1, 31, 9), now) == Period(start, end)


def test_a_moment_before_the_anchor_is_in_the_first_period() -> None:
    anchor = at(2026, 3, 15, 12)
    assert current_period(anchor, anchor - timedelta(milliseconds=3)) == Period(anchor, at(2026, 4, 15, 12))


def test_a_period_that_never_renews() -> None:
    anchor = datetime(2025, 5, 5, tzinfo=UTC)
    assert current_period(anchor, NOW, renews=False) == Period(anchor, None)


# -- where a plan comes from -------------------------------------------------------------------------------


def test_the_highest_ranked_source_wins_and_its_anchor_starts_the_period() -> None:
    plans = book(free={"rank": 0}, basic={"rank": 10}, pro={"rank": 30})
    joined = datetime(2025, 12, 20, tzinfo=UTC)
    subscribed = datetime(2026, 3, 2, tzinfo=UTC)
    sources = [
        PlanSource("basic", SourceKind.ROLE, joined, "role"),
        PlanSource("pro", SourceKind.SUBSCRIPTION, subscribed, "subscription"),
        PlanSource("mega", SourceKind.GRANT, joined, "a plan the file no longer has"),
        PlanSource("pro", SourceKind.GRANT, joined, "expired", expires_at=NOW - timedelta(days=1)),
    ]
    resolved = resolve_plan(plans, sources, default_anchor=joined, now=NOW)
    assert (resolved.plan.name, resolved.source.kind) == ("pro", SourceKind.SUBSCRIPTION)
    assert resolved.period == Period(subscribed, datetime(2026, 4, 2, tzinfo=UTC))

    role_only = resolve_plan(plans, sources[:1], default_anchor=joined, now=NOW)
    assert (role_only.plan.name, role_only.period.start) == ("basic", datetime(2026, 2, 20, tzinfo=UTC))
    nothing = resolve_plan(plans, [], default_anchor=joined, now=NOW)
    assert (nothing.plan.name, nothing.source.kind) == ("free", SourceKind.DEFAULT)


def test_between_sources_of_the_same_plan_a_subscription_wins() -> None:
    plans = book(free={}, pro={})
    sources = [PlanSource("pro", SourceKind.GRANT, NOW, "grant"),
               PlanSource("pro", SourceKind.SUBSCRIPTION, NOW, "subscription")]
    assert resolve_plan(plans, sources, default_anchor=NOW, now=NOW).source.kind is SourceKind.SUBSCRIPTION


# -- lanes -------------------------------------------------------------------------------------------------


PERIOD = Period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
LANES = book(trial={"fast_seconds": 10, "period": "once"}, basic={"fast_seconds": 10, "turbo": True},
             standard={"fast_seconds": 10, "relax": True, "turbo": True})


def test_the_lanes_a_plan_tries() -> None:
    standard, basic = LANES.plans["standard"], LANES.plans["basic"]
    assert lanes_to_try(Lane.TURBO, standard) == ([Lane.TURBO, Lane.FAST, Lane.RELAX], None)
    assert lanes_to_try(Lane.RELAX, standard) == ([Lane.RELAX], None)
    lanes, note = lanes_to_try(Lane.RELAX, basic)
    assert lanes == [Lane.FAST] and note == "Your plan has no relax mode, so this job runs in fast mode."


def test_assign_lanes_moves_down_as_fast_time_runs_out() -> None:
    choices = assign_lanes(Lane.TURBO, LANES.plans["standard"], PERIOD, 10_000, [3_000, 3_000, 1_000, 5_000])
    assert [c.lane for c in choices] == [Lane.TURBO, Lane.FAST, Lane.FAST, Lane.RELAX]
    assert choices[0].note is None and "turbo" in (choices[1].note or "")
    assert choices[3].note == (
        "You have used your fast time for this period, so this job runs in relax mode. "
        "Fast time renews on 2026-04-01; use `/subscribe` to see the plans with more."
    )


def test_without_relax_running_out_is_a_refusal_that_says_how_to_get_more() -> None:
    with pytest.raises(OutOfFastTimeError) as caught:
        assign_lanes(Lane.FAST, LANES.plans["basic"], PERIOD, 3_000, [2_000, 2_000])
    assert str(caught.value) == (
        "Not enough fast time: this needs about 2s and you have 1s left. Your Basic plan's fast time renews "
        "on 2026-04-01. Use `/subscribe` to see the plans with more fast time or relax mode."
    )
    with pytest.raises(OutOfFastTimeError, match="Trial plan's fast time does not renew"):
        assign_lanes(Lane.FAST, LANES.plans["trial"], Period(NOW, None), 0, [1_000])


def test_choosing_a_lane_the_plan_lacks_is_refused() -> None:
    check_lane_allowed(Lane.RELAX, LANES.plans["standard"])
    with pytest.raises(NotAllowedError, match=r"Your plan \(Basic\) has no relax mode. Use `/subscribe`"):
        check_lane_allowed(Lane.RELAX, LANES.plans["basic"])


def test_describe_lane() -> None:
    assert describe_lane(Lane.FAST, LANES.plans["standard"], 5_000) == "fast"
    assert describe_lane(Lane.FAST, LANES.plans["standard"], 0) == "fast (out of fast time: jobs run in relax)"
    assert describe_lane(Lane.FAST, LANES.plans["basic"], 0) == "fast (out of fast time)"
    assert describe_lane(Lane.RELAX, LANES.plans["basic"], 5_000) == "fast (your plan has no relax mode)"


@pytest.mark.parametrize(("ms", "text"), [(0, "0s"), (4_200, "4.2s"), (59_000, "59s"), (750_000, "12m 30s"),
                                          (3_900_000, "1h 05m"), (-5, "0s")])
def test_format_ms(ms: int, text: str) -> None:
    assert format_ms(ms) == text


def test_plans_costs_and_lanes_import_no_adapter_library() -> None:
    from tests.test_layering import loaded_after_import

    assert loaded_after_import("domain.plans, domain.costs, domain.lanes") == set()
