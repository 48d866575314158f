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
