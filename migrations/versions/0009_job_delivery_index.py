"""jobs: a partial index of the jobs still to deliver

``db.jobs.undelivered`` (the bot's reconcile, at start-up and every 5 s) looked for finished jobs whose
delivered state differs from their state with a sequential scan of the whole table, which grows with the
history (bench/growth.py, this loaded 2-core machine: 4.7 ms at 10^3 finished jobs, 18 ms at 2 x 10^4, a
sequential scan in its plan; with this index 2.3-2.8 ms from 10^4 to 10^6). Only the jobs still to deliver are in
this index, least tried first, so the read stays a few rows whatever the history.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:50:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TO_DELIVER = "state IN ('succeeded', 'failed', 'cancelled') AND delivered_state IS DISTINCT FROM state"


def upgrade() -> None:
    op.create_index('ix_jobs_to_deliver', 'jobs', ['delivery_attempts', 'id'], unique=False,
                    postgresql_where=sa.text(TO_DELIVER))


def downgrade() -> None:
    op.drop_index('ix_jobs_to_deliver', table_name='jobs', postgresql_where=sa.text(TO_DELIVER))
