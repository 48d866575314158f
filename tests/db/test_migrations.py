"""The migrations build exactly the models (no drift) and go down and up again cleanly."""

from __future__ import annotations

import uuid

from alembic import command

from db.migrate import alembic_config, downgrade, upgrade
from tests.support.services import drop_database, make_test_database


def test_migrations_have_no_drift_and_downgrade_and_upgrade_cleanly(postgres_server_url: str) -> None:
    name = f"imagine_migrations_{uuid.uuid4().hex[:8]}"
    url = make_test_database(postgres_server_url, name)  # created and upgraded to head
    try:
        command.check(alembic_config(url))  # raises when the models and the migrations differ
        downgrade(url, "base")
        upgrade(url)
        command.check(alembic_config(url))
        downgrade(url, "0001")  # quotas off and on again, with the jobs table in place
        upgrade(url)
    finally:
        drop_database(postgres_server_url, name)


def test_0004_keeps_existing_grants_and_bans_as_global_ones(postgres_server_url: str) -> None:
    import psycopg

    from db.session import libpq_url

    name = f"imagine_migrations_{uuid.uuid4().hex[:8]}"
    url = make_test_database(postgres_server_url, name)
    try:
        downgrade(url, "0003")
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("INSERT INTO users (id, name, banned_at, banned_by, ban_reason) "
                         "VALUES (1, 'spammer', now(), 9, 'spam'), (2, 'fine', NULL, NULL, NULL)")
            conn.execute("INSERT INTO grants (user_id, plan, granted_by) VALUES (2, 'pro', 9)")
        upgrade(url)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            bans = conn.execute("SELECT user_id, guild_id, banned_by, reason, lifted_at FROM bans").fetchall()
            grants = conn.execute("SELECT user_id, guild_id, plan FROM grants").fetchall()
        assert bans == [(1, None, 9, "spam", None)]  # a global ban, as before
        assert grants == [(2, None, "pro")]  # a global (operator) grant
        downgrade(url, "0003")
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            banned = conn.execute("SELECT id, ban_reason FROM users WHERE banned_at IS NOT NULL").fetchall()
        assert banned == [(1, "spam")]
    finally:
        drop_database(postgres_server_url, name)
