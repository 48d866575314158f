"""``imagine admin``: plans and usage from the command line, for operators.

    imagine admin plans [--json]                            the plans of PLANS_FILE
    imagine admin grant --user ID --plan NAME [--days N]    give a member a plan (replaces their grant; a member
                                                            who never used the bot gets it from their first use)
    imagine admin revoke --user ID                          end a member's grant now
    imagine admin usage --user ID [--json]                  plan, period, fast time, jobs by state
    imagine admin ban --user ID [--reason TEXT]             keep a member from using the bot anywhere
    imagine admin unban --user ID                           lift an operator's (global) ban

Like the operators' ``/admin`` commands, these act everywhere: their grants and bans apply in every server.

They work on the database of the running bot: ``DATABASE_URL``, or with none set, the embedded PostgreSQL
under ``DATA_DIR`` that ``imagine run`` uses (attached to while ``imagine run`` holds it, started and
stopped again otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from domain.plans import MAX_GRANT_DAYS, PlanBook, format_ms, grant_expiry, load_plans
from domain.spec import Lane
from imagine.settings import Settings

__all__ = ["add_admin_parser", "admin_database"]

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Discord snowflakes are positive 64-bit integers.
_MAX_SNOWFLAKE = 2**63 - 1


@contextlib.contextmanager
def admin_database(settings: Settings) -> Iterator[str]:
    """The URL of the bot's database: ``DATABASE_URL``, or the embedded server under ``DATA_DIR``."""
    from imagine.checks import check_database

    if settings.database_url:
        check_database(settings.database_url)
        yield settings.database_url
        return
    from db.migrate import upgrade
    from imagine.services import EmbeddedPostgres, create_database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(settings.data_dir / "postgres")  # attaches to `imagine run`'s server if it runs
    try:
        url = create_database(server.url, "imagine")
        upgrade(url)  # the embedded database is ours to keep current, as `imagine run` does
        yield url
    finally:
        server.stop()  # stops it only if no other process (`imagine run`) holds it


def _run(settings: Settings, fn: Callable[..., T], **kwargs: Any) -> T:
    """Call a ``db`` function in one committed transaction on the bot's database."""
    from db.session import make_engine, make_sessionmaker

    with admin_database(settings) as url:
        engine = make_engine(url)
        try:
            with make_sessionmaker(engine)() as session, session.begin():
                return fn(session=session, **kwargs)
        finally:
            engine.dispose()


def _plans(settings: Settings) -> PlanBook:
    return load_plans(settings.plans_path)


def _user_id(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) <= _MAX_SNOWFLAKE:
        raise argparse.ArgumentTypeError(f"{value!r} is not a Discord user id (a positive number)")
    return int(value)


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days") from None
    if not 1 <= days <= MAX_GRANT_DAYS:
        raise argparse.ArgumentTypeError(f"days must be from 1 to {MAX_GRANT_DAYS}, not {days}")
    return days


def _plan_row(plan: Any) -> dict[str, Any]:
    return {
        "name": plan.name,
        "display_name": plan.display_name,
        "rank": plan.rank,
        "fast_seconds": plan.fast_ms / 1000,
        "period": plan.period,
        "relax": plan.relax,
        "turbo": plan.turbo,
        "stealth": plan.stealth,
        "concurrent": {lane.value: plan.concurrent[lane] for lane in Lane},
        "queued": {lane.value: plan.queued[lane] for lane in Lane},
        "max_jobs": plan.max_jobs,
        "price": plan.price,
        "sku_ids": [str(sku) for sku in plan.sku_ids],
    }


def cmd_plans(settings: Settings, args: argparse.Namespace) -> int:
    book = _plans(settings)
    if args.json:
        print(json.dumps({"default": book.default, "file": str(book.path),
                          "plans": [_plan_row(p) for p in book.ranked()]}, indent=2))
        return 0
    print(f"plans from {book.path} (default: {book.default})")
    for plan in book.ranked():
        price = f"  [{plan.price}]" if plan.price else ""
        skus = f"  SKUs {', '.join(map(str, plan.sku_ids))}" if plan.sku_ids else ""
        print(f"  {plan.name:<12} {plan.display_name:<14} {plan.summary()}{price}{skus}")
    return 0


def cmd_grant(settings: Settings, args: argparse.Namespace) -> int:
    book = _plans(settings)
    plan = book.get(args.plan)  # an unknown plan is refused before the database is touched
    expires_at = grant_expiry(datetime.now(UTC), args.days)
    grant, seen = _run(settings, _grant, user_id=args.user, plan=plan.name, book=book, expires_at=expires_at)
    until = f"until {grant.expires_at:%Y-%m-%d %H:%M} UTC" if grant.expires_at else "until revoked"
    first = "" if seen else " (they have not used the bot yet: the plan is theirs from their first command)"
    print(f"granted {plan.name} ({plan.display_name}) to {args.user} {until}{first}")
    return 0


def _grant(*, session: Any, user_id: int, plan: str, book: PlanBook, expires_at: datetime | None) -> tuple[Any, bool]:
    """Grant in one transaction; also says whether the member had used the bot before."""
    from db import plans as plans_db
    from db.models import User

    seen = session.get(User, user_id) is not None
    return plans_db.grant_plan(session=session, user_id=user_id, plan=plan, book=book, granted_by=None,
                               expires_at=expires_at), seen


def cmd_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from db import plans as plans_db

    count = _run(settings, plans_db.revoke_grants, user_id=args.user)
    print(f"revoked {count} grant{'s' if count != 1 else ''} of {args.user}")
    return 0


def cmd_usage(settings: Settings, args: argparse.Namespace) -> int:
    from db import plans as plans_db

    report = _run(settings, plans_db.usage_report, user_id=args.user, book=_plans(settings), now=datetime.now(UTC))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    fast = report["fast_ms"]
    period = report["period"]
    print(f"user {report['user_id']} ({report['name'] or 'unknown'}): plan {report['plan']} "
          f"({report['plan_display_name']})")
    print(f"period: {period['start']} to {period['end'] or 'never renews'}")
    print(f"fast time: {format_ms(fast['used'])} used, {format_ms(fast['reserved'])} reserved, "
          f"{format_ms(fast['limit'] - fast['used'] - fast['reserved'])} left of {format_ms(fast['limit'])}")
    print("jobs: " + ", ".join(f"{count} {state}" for state, count in report["jobs"].items()))
    if report["banned"]:
        print(f"banned: {report['ban_reason'] or 'yes'}")
    return 0


def cmd_ban(settings: Settings, args: argparse.Namespace) -> int:
    from db import plans as plans_db

    _run(settings, plans_db.ban, user_id=args.user, guild_id=None, by=None, reason=args.reason)
    print(f"banned {args.user} everywhere" + (f" ({args.reason})" if args.reason else ""))
    return 0


def cmd_unban(settings: Settings, args: argparse.Namespace) -> int:
    from db import plans as plans_db

    lifted = _run(settings, plans_db.unban, user_id=args.user, guild_id=None)
    print(f"unbanned {args.user}" if lifted else f"{args.user} had no global ban")
    return 0


def _reason(value: str) -> str:
    if not value.strip() or len(value) > 300 or "\x00" in value:
        raise argparse.ArgumentTypeError("the reason must be 1 to 300 characters, without null characters")
    return value.strip()


def add_admin_parser(sub: Any, settings_factory: Callable[[], Settings]) -> None:
    """Add ``imagine admin …`` to the CLI's subcommands."""
    admin = sub.add_parser("admin", help="plans, grants and usage (operators)")
    commands = admin.add_subparsers(dest="admin_command", required=True)

    def bind(parser: argparse.ArgumentParser, fn: Callable[[Settings, argparse.Namespace], int]) -> None:
        parser.set_defaults(func=lambda args: fn(settings_factory(), args))

    plans = commands.add_parser("plans", help="the plans of PLANS_FILE")
    plans.add_argument("--json", action="store_true", help="as JSON")
    bind(plans, cmd_plans)

    grant = commands.add_parser("grant", help="give a member a plan (replaces their earlier grant)")
    grant.add_argument("--user", required=True, type=_user_id, help="the member's Discord user id")
    grant.add_argument("--plan", required=True, help="the plan's name (see `imagine admin plans`)")
    grant.add_argument("--days", type=_days, default=None, help=f"1 to {MAX_GRANT_DAYS} (default: until revoked)")
    bind(grant, cmd_grant)

    revoke = commands.add_parser("revoke", help="end a member's grant now")
    revoke.add_argument("--user", required=True, type=_user_id, help="the member's Discord user id")
    bind(revoke, cmd_revoke)

    usage = commands.add_parser("usage", help="a member's plan, period, fast time and jobs")
    usage.add_argument("--user", required=True, type=_user_id, help="the member's Discord user id")
    usage.add_argument("--json", action="store_true", help="as JSON")
    bind(usage, cmd_usage)

    ban = commands.add_parser("ban", help="keep a member from using the bot in every server")
    ban.add_argument("--user", required=True, type=_user_id, help="the member's Discord user id")
    ban.add_argument("--reason", type=_reason, default=None, help="shown to them when they try")
    bind(ban, cmd_ban)

    unban = commands.add_parser("unban", help="lift a member's global ban")
    unban.add_argument("--user", required=True, type=_user_id, help="the member's Discord user id")
    bind(unban, cmd_unban)
