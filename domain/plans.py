"""Plans: what each member gets (fast GPU time, lanes, limits), read from the plans file.

A member's plan comes from several places; the highest-ranked one wins (:func:`resolve_plan`):
a Discord premium subscription (an entitlement whose SKU a plan lists), a guild role mapped to a plan,
an admin's grant (with an expiry), and the default plan. Fast time is given per *period*: a month from
the anchor date of the plan's source (the subscription's start, the grant's date, the member's first
contact), or, for a plan with ``period = "once"``, one period that never renews (a free trial).

The file is TOML, read once at start-up (see ``imagine/plans.toml`` for the shipped defaults)::

    default = "trial"             # every member without a subscription, role plan or grant

    [plans.basic]
    display_name = "Basic"
    rank = 10                     # highest wins; default: the order in the file
    fast_hours = 3.3              # or fast_seconds = 11880
    period = "month"              # "month" (renews from the anchor date) or "once" (never renews)
    relax = false                 # may run unmetered jobs in the relax lane
    turbo = true                  # may run jobs in the turbo lane (twice the fast time, served first)
    stealth = false               # may hide their jobs from public listings
    concurrent = 3                # jobs running at once, per lane; or { turbo = 3, fast = 3, relax = 3 }
    queued = 10                   # jobs waiting, per lane; same forms
    max_jobs = 10                 # most jobs one prompt may start (permutations times --r)
    price = "$10 / month"         # shown by /subscribe
    description = "..."
    sku_ids = [1234567890]        # Discord premium SKUs that give this plan

    [costs.sdxl]                  # optional: the cost model of a model family (or one model, by name)
    ms_per_megapixel_step = 200
    overhead_ms = 1500
    upscale_ms_per_megapixel = 120
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from domain.catalog import ModelPreset
from domain.costs import DEFAULT_COSTS, CostModel, estimate_ms
from domain.errors import PlanError
from domain.spec import LANE_ORDER, JobKind, JobSpec, Lane
from domain.tomlfile import read_toml

__all__ = [
    "MAX_GRANT_DAYS",
    "Period",
    "Plan",
    "PlanBook",
    "PlanSource",
    "ResolvedPlan",
    "SourceKind",
    "add_months",
    "current_period",
    "format_ms",
    "grant_expiry",
    "load_plans",
    "parse_plans",
    "resolve_plan",
]

#: The longest admin grant, in days (ten years); longer is almost surely a typo.
MAX_GRANT_DAYS = 3650
_PERIODS = ("month", "once")
_PLAN_KEYS = {
    "display_name", "rank", "fast_hours", "fast_seconds", "period", "relax", "turbo", "stealth", "concurrent",
    "queued", "max_jobs", "price", "description", "sku_ids",
}
_COST_KEYS = {"ms_per_megapixel_step", "overhead_ms", "upscale_ms_per_megapixel"}


@dataclass(frozen=True, slots=True)
class Plan:
    """One plan of the plans file. Times are in milliseconds of GPU time."""

    name: str
    display_name: str
    rank: int
    fast_ms: int
    period: str = "month"
    relax: bool = False
    turbo: bool = False
    stealth: bool = False
    #: Jobs running at once, per lane.
    concurrent: Mapping[Lane, int] = field(default_factory=dict)
    #: Jobs waiting to start, per lane.
    queued: Mapping[Lane, int] = field(default_factory=dict)
    max_jobs: int = 10
    price: str = ""
    description: str = ""
    sku_ids: tuple[int, ...] = ()

    @property
    def renews(self) -> bool:
        return self.period == "month"

    def allows(self, lane: Lane) -> bool:
        """Whether members on this plan may use ``lane`` (fast always; relax and turbo if included)."""
        return lane is Lane.FAST or (lane is Lane.RELAX and self.relax) or (lane is Lane.TURBO and self.turbo)

    def running_limit(self, lane: Lane) -> int:
        return self.concurrent.get(lane, 0)

    def active_limit(self, lane: Lane) -> int:
        """Jobs a member may have in ``lane`` at once: running plus waiting."""
        return self.concurrent.get(lane, 0) + self.queued.get(lane, 0)

    @property
    def lanes(self) -> list[Lane]:
        return [lane for lane in LANE_ORDER if self.allows(lane)]

    def summary(self) -> str:
        """One line for /subscribe and the CLI: fast time, lanes, limits."""
        parts = [f"{format_ms(self.fast_ms)} fast time" + (" a month" if self.renews else ", once")]
        if self.relax:
            parts.append("unlimited relax")
        if self.turbo:
            parts.append("turbo")
        if self.stealth:
            parts.append("stealth")
        running = self.running_limit(Lane.FAST)
        parts.append(f"{running} fast job{'s' if running != 1 else ''} at once, {self.queued.get(Lane.FAST, 0)} queued")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class PlanBook:
    """The plans file: the plans by name, the default, and the cost models."""

    plans: dict[str, Plan]
    default: str
    costs: dict[str, CostModel] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.default not in self.plans:
            raise PlanError(f"default plan {self.default!r} is not defined under [plans]")
        owners: dict[int, str] = {}
        for plan in self.plans.values():
            for sku in plan.sku_ids:
                owner = owners.setdefault(sku, plan.name)
                if owner != plan.name:
                    raise PlanError(f"SKU {sku} is listed by both plan {owner!r} and plan {plan.name!r}")

    @property
    def default_plan(self) -> Plan:
        return self.plans[self.default]

    @property
    def names(self) -> list[str]:
        return list(self.plans)

    def ranked(self) -> list[Plan]:
        """The plans, lowest rank first (the order /subscribe shows them)."""
        return sorted(self.plans.values(), key=lambda p: p.rank)

    def get(self, name: str) -> Plan:
        """The plan called ``name`` (case-insensitive); raises :class:`PlanError` naming the plans there are."""
        plan = self.plans.get(name.strip().lower())
        if plan is None:
            choices = ", ".join(f"`{n}`" for n in self.plans)
            raise PlanError(f"Unknown plan `{name}`. Choose one of: {choices}.")
        return plan

    def for_sku(self, sku_id: int) -> Plan | None:
        return next((p for p in self.plans.values() if sku_id in p.sku_ids), None)

    @property
    def sku_ids(self) -> list[int]:
        return [sku for plan in self.ranked() for sku in plan.sku_ids]

    def cost_model(self, model: str, family: str) -> CostModel:
        """The cost model of a model: its own ``[costs.<model>]``, else its family's (every family has a default)."""
        return self.costs.get(model) or self.costs.get(family) or DEFAULT_COSTS["sd15"]

    def estimate_ms(self, spec: JobSpec, kind: JobKind, preset: ModelPreset) -> int:
        """GPU milliseconds a job should take, from its model's cost model (before the lane multiplier).

        A ``--draft`` job drawn by another model (``draft = "<model>"``) is costed with that model's.
        """
        name = preset.name
        if spec.draft and preset.draft is not None and preset.draft.model:
            name = preset.draft.model
        return estimate_ms(spec, kind, self.cost_model(name, preset.family), preset.capabilities)


# -- periods ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A span of fast time: ``end`` is None for a period that never renews."""

    start: datetime
    end: datetime | None


def add_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by whole months, the day clamped to the month's end (Jan 31 + 1 month = Feb 28)."""
    month_index = anchor.month - 1 + months
    year, month = anchor.year + month_index // 12, month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def current_period(anchor: datetime, now: datetime, renews: bool = True) -> Period:
    """The period that holds ``now``: monthly from ``anchor`` (each start computed from the anchor itself,
    so a period starting on the 31st comes back to the 31st), or one endless period when not ``renews``.
    Before the anchor is the first period."""
    if not renews:
        return Period(anchor, None)
    now = max(now, anchor)  # an anchor a moment ahead of ``now`` (the database's clock): the first period
    months = (now.year - anchor.year) * 12 + (now.month - anchor.month)
    start = add_months(anchor, months)
    while start > now:
        months -= 1
        start = add_months(anchor, months)
    while add_months(anchor, months + 1) <= now:
        months += 1
        start = add_months(anchor, months)
    return Period(start, add_months(anchor, months + 1))


# -- where a plan comes from -------------------------------------------------------------------------------


class SourceKind(StrEnum):
    SUBSCRIPTION = "subscription"
    ROLE = "role"
    GRANT = "grant"
    DEFAULT = "default"


#: Which source wins between two plans of the same rank.
_SOURCE_ORDER = {SourceKind.SUBSCRIPTION: 3, SourceKind.GRANT: 2, SourceKind.ROLE: 1, SourceKind.DEFAULT: 0}


@dataclass(frozen=True, slots=True)
class PlanSource:
    """One reason a member has a plan: its kind, the date its periods count from, and what it is."""

    plan: str
    kind: SourceKind
    anchor: datetime
    detail: str = ""
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ResolvedPlan:
    plan: Plan
    source: PlanSource
    period: Period


def resolve_plan(book: PlanBook, sources: Iterable[PlanSource], *, default_anchor: datetime,
                 now: datetime) -> ResolvedPlan:
    """The member's plan: the highest-ranked of ``sources`` that names a known plan and has not expired,
    else the default plan anchored at ``default_anchor`` (the member's first contact).

    Sources naming a plan the file no longer has are skipped (an operator removed it), not an error.
    """
    default = PlanSource(book.default, SourceKind.DEFAULT, default_anchor, "default plan")
    best = default
    for source in sources:
        plan = book.plans.get(source.plan)
        if plan is None or (source.expires_at is not None and source.expires_at <= now):
            continue
        current = book.plans[best.plan]
        if (plan.rank, _SOURCE_ORDER[source.kind]) > (current.rank, _SOURCE_ORDER[best.kind]):
            best = source
    plan = book.plans[best.plan]
    return ResolvedPlan(plan, best, current_period(best.anchor, now, plan.renews))


# -- the file ----------------------------------------------------------------------------------------------


def format_ms(ms: int) -> str:
    """GPU time for people: ``1h 05m``, ``12m 30s``, ``4.2s``."""
    ms = max(0, int(ms))
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 and ms % 1000 else f"{int(seconds)}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _per_lane(name: str, key: str, value: Any, default: int, minimum: int = 0) -> dict[Lane, int]:
    if value is None:
        return dict.fromkeys(Lane, default)
    if isinstance(value, bool) or not isinstance(value, int | dict):
        raise PlanError(f"plan {name!r}: `{key}` must be a whole number or a table per lane, not {value!r}")
    if isinstance(value, int):
        value = dict.fromkeys((lane.value for lane in Lane), value)
    unknown = set(value) - {lane.value for lane in Lane}
    if unknown:
        raise PlanError(f"plan {name!r}: `{key}` names unknown lanes {sorted(unknown)}; use turbo, fast, relax")
    out: dict[Lane, int] = {}
    for lane in Lane:
        count = value.get(lane.value, default)
        if isinstance(count, bool) or not isinstance(count, int) or count < minimum:
            raise PlanError(
                f"plan {name!r}: `{key}.{lane.value}` must be a whole number >= {minimum}, not {count!r}"
            )
        out[lane] = count
    return out


def _fast_ms(name: str, table: dict[str, Any]) -> int:
    if "fast_hours" in table and "fast_seconds" in table:
        raise PlanError(f"plan {name!r}: give `fast_hours` or `fast_seconds`, not both")
    raw = table.get("fast_seconds", table.get("fast_hours", 0))
    scale = 1000 if "fast_seconds" in table else 3_600_000
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw < 1e7:
        raise PlanError(f"plan {name!r}: fast time must be a number >= 0, not {raw!r}")
    return round(raw * scale)


def _plan(name: str, table: Any, position: int) -> Plan:
    if not isinstance(table, dict):
        raise PlanError(f"plan {name!r} must be a table ([plans.{name}])")
    if name != name.lower() or not name.replace("_", "").replace("-", "").isalnum() or len(name) > 40:
        raise PlanError(f"plan name {name!r} must be lower-case letters, digits, - or _ (at most 40)")
    unknown = set(table) - _PLAN_KEYS
    if unknown:
        raise PlanError(f"plan {name!r}: unknown keys {sorted(unknown)}; known: {sorted(_PLAN_KEYS)}")
    period = str(table.get("period", "month"))
    if period not in _PERIODS:
        raise PlanError(f"plan {name!r}: `period` must be one of {', '.join(_PERIODS)}, not {period!r}")
    for flag in ("relax", "turbo", "stealth"):
        if not isinstance(table.get(flag, False), bool):
            raise PlanError(f"plan {name!r}: `{flag}` must be true or false")
    rank = table.get("rank", position)
    max_jobs = table.get("max_jobs", 10)
    for key, value in (("rank", rank), ("max_jobs", max_jobs)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlanError(f"plan {name!r}: `{key}` must be a whole number, not {value!r}")
    if max_jobs < 1:
        raise PlanError(f"plan {name!r}: `max_jobs` must be at least 1, not {max_jobs}")
    skus = table.get("sku_ids", [])
    if not isinstance(skus, list) or not all(isinstance(s, int | str) and str(s).isdigit() for s in skus):
        raise PlanError(f"plan {name!r}: `sku_ids` must be a list of Discord SKU ids")
    return Plan(
        name=name,
        display_name=str(table.get("display_name", name.title())),
        rank=rank,
        fast_ms=_fast_ms(name, table),
        period=period,
        relax=table.get("relax", False),
        turbo=table.get("turbo", False),
        stealth=table.get("stealth", False),
        concurrent=_per_lane(name, "concurrent", table.get("concurrent"), 3, minimum=1),
        queued=_per_lane(name, "queued", table.get("queued"), 10),
        max_jobs=max_jobs,
        price=str(table.get("price", "")),
        description=str(table.get("description", "")),
        sku_ids=tuple(int(s) for s in skus),
    )


def _cost(name: str, table: Any) -> CostModel:
    if not isinstance(table, dict):
        raise PlanError(f"costs {name!r} must be a table ([costs.{name}])")
    unknown = set(table) - _COST_KEYS
    if unknown:
        raise PlanError(f"costs {name!r}: unknown keys {sorted(unknown)}; known: {sorted(_COST_KEYS)}")
    base = DEFAULT_COSTS.get(name, DEFAULT_COSTS["sd15"])
    values: dict[str, float] = {}
    for key in _COST_KEYS:
        value = table.get(key, getattr(base, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise PlanError(f"costs {name!r}: `{key}` must be a number >= 0, not {value!r}")
        values[key] = float(value)
    return CostModel(**values)


def parse_plans(data: dict[str, Any], path: Path | None = None) -> PlanBook:
    tables = data.get("plans")
    if not isinstance(tables, dict) or not tables:
        raise PlanError("the plans file defines no [plans.<name>] table")
    plans = {name: _plan(name, table, index * 10) for index, (name, table) in enumerate(tables.items())}
    costs = dict(DEFAULT_COSTS)
    cost_tables = data.get("costs", {})
    if not isinstance(cost_tables, dict):
        raise PlanError("`costs` must be a table of [costs.<family or model>] tables")
    costs.update({name: _cost(name, table) for name, table in cost_tables.items()})
    default = str(data.get("default", next(iter(plans))))
    return PlanBook(plans=plans, default=default, costs=costs, path=path)


def load_plans(path: Path) -> PlanBook:
    """Read a plans file. Raises :class:`PlanError` with the file name on any problem."""
    data = read_toml(path, "plans", PlanError)
    try:
        return parse_plans(data, path)
    except PlanError as exc:
        raise PlanError(f"plans file {path}: {exc}") from None


def grant_expiry(now: datetime, days: int | None) -> datetime | None:
    """When a grant of ``days`` made ``now`` ends (None: never). Raises :class:`PlanError` for bad days."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_GRANT_DAYS:
        raise PlanError(f"Days must be a whole number from 1 to {MAX_GRANT_DAYS}, not {days!r}.")
    return now + timedelta(days=days)
