"""`imagine admin grant` and `usage` as an operator uses them, on a real PostgreSQL: a grant to a member the bot
has never seen is accepted and says so, and `usage` shows the granted plan at once."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

from db import plans as plans_db
from db.plans import Requester
from db.session import make_engine, make_sessionmaker
from domain.plans import load_plans
from tests.bot.conftest import TEST_PLANS
from tests.support.factories import next_id
from tests.support.services import REPO


def admin(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONUNBUFFERED": "1", "DATABASE_URL": database_url,
           "PLANS_FILE": str(TEST_PLANS)}
    return subprocess.run([sys.executable, "-m", "imagine.cli", "admin", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_grant_to_a_new_member_is_accepted_and_usage_shows_it_at_once(database_url: str) -> None:
    newcomer = str(next_id() * 1000)
    granted = admin(database_url, "grant", "--user", newcomer, "--plan", "premium", "--days", "30")
    assert granted.returncode == 0, granted.stderr
    assert granted.stdout.startswith(f"granted premium (Premium) to {newcomer} until ")
    assert "they have not used the bot yet" in granted.stdout
    usage = admin(database_url, "usage", "--user", newcomer, "--json")
    assert usage.returncode == 0, usage.stderr
    assert json.loads(usage.stdout)["plan"] == "premium"

    # A member the bot knows, on the default plan (their balance says so): the grant shows in usage at once.
    member = next_id() * 1000
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            account = plans_db.load_account(session=session, requester=Requester(member, "known"),
                                            book=load_plans(TEST_PLANS), now=datetime.now(UTC))
            assert account.plan.name == "trial"
    finally:
        engine.dispose()
    assert admin(database_url, "grant", "--user", str(member), "--plan", "premium").returncode == 0
    assert "not used the bot" not in admin(database_url, "grant", "--user", str(member), "--plan", "premium").stdout
    shown = admin(database_url, "usage", "--user", str(member))
    assert shown.returncode == 0, shown.stderr
    assert f"user {member} (known): plan premium (Premium)" in shown.stdout

    # Nobody granted anything and the bot never saw them: refused, in one line.
    stranger = admin(database_url, "usage", "--user", str(next_id() * 1000))
    assert stranger.returncode == 2 and "never used the bot" in stranger.stderr
