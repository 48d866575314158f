"""jobs: indexes for queue positions and ETAs

A queued job's message shows how many queued jobs of its model and lane are ahead of it, and an ETA from
the recent run times of that queue (``db.queue``); both are read on every progress edit, so each has a
partial index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:30:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_jobs_queued_by_queue', 'jobs', ['queue', 'id'], unique=False,
                    postgresql_where=sa.text("state = 'queued'"))
    op.create_index('ix_jobs_succeeded_by_queue', 'jobs', ['queue', 'finished_at'], unique=False,
                    postgresql_where=sa.text("state = 'succeeded'"))


def downgrade() -> None:
    op.drop_index('ix_jobs_succeeded_by_queue', table_name='jobs', postgresql_where=sa.text("state = 'succeeded'"))
    op.drop_index('ix_jobs_queued_by_queue', table_name='jobs', postgresql_where=sa.text("state = 'queued'"))
