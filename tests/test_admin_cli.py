"""`imagine admin` as an operator uses it: grants, usage, plans; bad input changes nothing; and it works on
the embedded database that `imagine run` holds (same DATA_DIR)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select

from db import plans as plans_db
from db.models import Grant
from db.session import libpq_url, make_engine, make_sessionmaker
from db.submission import submit_jobs
from domain.plans import load_plans
from imagine.cli import main
from imagine.services import EmbeddedPostgres, create_database
from tests.support.factories import new_job, next_id
from tests.support.services import REPO

SHIPPED = REPO / "imagine" / "plans.toml"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("PLANS_FILE", raising=False)
    return database_url


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["admin", *args])
    except SystemExit as exc:  # argparse refusing an argument
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def grants_of(database_url: str, user: int) -> int:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            count = select(func.count()).select_from(Grant).where(Grant.user_id == user)
            return int(session.execute(count).scalar_one())
    finally:
        engine.dispose()


def test_plans_lists_the_plans_file(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = admin(capsys, "plans", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["default"] == "trial"
    assert [p["name"] for p in data["plans"]] == ["trial", "basic", "standard", "pro", "mega"]
    assert data["plans"][1]["fast_seconds"] == 11880 and data["plans"][1]["queued"]["fast"] == 10
    code, out, _ = admin(capsys, "plans")
    assert code == 0 and "standard" in out and "unlimited relax" in out


def test_grant_then_usage(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    user = next_id()
    code, out, err = admin(capsys, "grant", "--user", str(user), "--plan", "Pro", "--days", "30")
    assert code == 0, err
    expected = datetime.now(UTC) + timedelta(days=30)
    assert out.startswith(f"granted pro (Pro) to {user} until {expected:%Y-%m-%d}")

    # The member asks for a job (as the bot would, with the plan the grant gives).
    engine = make_engine(env)
    book = load_plans(SHIPPED)
    with make_sessionmaker(engine)() as session, session.begin():
        account = plans_db.load_account(session=session, requester=plans_db.Requester(user), book=book,
                                        now=datetime.now(UTC))
        submit_jobs(session=session, new_jobs=[new_job(user)], resolved=account.resolved, estimates=[4_000])
    engine.dispose()

    code, out, _ = admin(capsys, "usage", "--user", str(user), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["plan"] == "pro" and report["plan_display_name"] == "Pro"
    assert report["fast_seconds"] == {"limit": 108_000.0, "used": 0.0, "reserved": 4.0, "left": 107_996.0}
    assert report["jobs"]["queued"] == 1 and report["jobs"]["succeeded"] == 0
    assert report["period"]["end"] is not None and report["grants"][0]["plan"] == "pro"

    code, out, _ = admin(capsys, "usage", "--user", str(user))
    assert code == 0 and "plan pro (Pro)" in out and "4s reserved" in out

    code, out, _ = admin(capsys, "revoke", "--user", str(user))
    assert (code, out.strip()) == (0, f"revoked 1 grant of {user}")
    code, out, _ = admin(capsys, "usage", "--user", str(user), "--json")
    assert json.loads(out)["grants"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plan", "gold"], "imagine: Unknown plan `gold`. Choose one of: `trial`, `basic`"),
        (["--plan", "pro", "--days", "0"], "days must be from 1 to 3650, not 0"),
        (["--plan", "pro", "--days", "-7"], "days must be from 1 to 3650, not -7"),
        (["--plan", "pro", "--days", "100000"], "days must be from 1 to 3650, not 100000"),
        (["--plan", "pro", "--days", "soon"], "'soon' is not a whole number of days"),
    ],
)
def test_a_bad_grant_is_refused_and_changes_nothing(
    env: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    user = next_id()
    code, _, err = admin(capsys, "grant", "--user", str(user), *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert grants_of(env, user) == 0


def test_bad_users(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = admin(capsys, "grant", "--user", "bob", "--plan", "pro")
    assert code == 2 and "'bob' is not a Discord user id" in err
    stranger = next_id()
    code, _, err = admin(capsys, "usage", "--user", str(stranger), "--json")
    assert code == 2 and err.strip() == f"imagine: User {stranger} has never used the bot."


@pytest.fixture
def data_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="imagine-admin-"))
    root.chmod(0o755)  # the embedded server runs as its own system user when tests run as root
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_admin_works_on_the_embedded_database_that_imagine_run_holds(data_root: Path) -> None:
    data_dir = data_root / "data"
    data_dir.mkdir()
    held = EmbeddedPostgres(data_dir / "postgres")  # as `imagine run` holds it
    try:
        url = create_database(held.url, "imagine")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(data_root), "DATA_DIR": str(data_dir)}
        user = str(next_id())

        def imagine(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "imagine.cli", "admin", *args], cwd=data_root, env=env,
                                  capture_output=True, text=True, timeout=120)

        granted = imagine("grant", "--user", user, "--plan", "standard")
        assert granted.returncode == 0, granted.stderr
        usage = imagine("usage", "--user", user, "--json")
        assert usage.returncode == 0, usage.stderr
        assert json.loads(usage.stdout)["plan"] == "standard"
        # The command attached to the running server and left it running: the grant is there.
        with psycopg.connect(libpq_url(url)) as conn:
            assert conn.execute("SELECT plan FROM grants WHERE user_id = %s", (int(user),)).fetchall() == [
                ("standard",)]
    finally:
        held.stop()


def test_ban_and_unban_act_everywhere(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    user = next_id()
    banned = admin(capsys, "ban", "--user", str(user), "--reason", "spam")
    assert banned == (0, f"banned {user} everywhere (spam)\n", "")
    code, out, _ = admin(capsys, "usage", "--user", str(user), "--json")
    assert code == 0 and json.loads(out)["ban_reason"] == "spam"
    assert admin(capsys, "ban", "--user", str(user), "--reason", "")[0] == 2  # refused by argparse
    assert admin(capsys, "unban", "--user", str(user)) == (0, f"unbanned {user}\n", "")
    assert admin(capsys, "unban", "--user", str(user)) == (0, f"{user} had no global ban\n", "")
