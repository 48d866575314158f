"""jobs: when and into which broker a job's message went; delivery retries and failures

``published_at`` / ``broker_epoch``: a queued job has one message in the broker while ``published_at`` is
set, sent into the broker whose epoch (a key the reaper keeps in Redis) is ``broker_epoch``; the reaper
re-publishes only jobs with no message, or whose broker lost its data since. ``delivery_attempts``,
``delivery_retry_at``, ``delivery_error``: a delivery that failed for a transient reason waits (exponential
backoff) without blocking newer ones; a permanent failure is recorded once and not retried.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:40:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('broker_epoch', sa.String(length=40), nullable=True))
    op.add_column('jobs', sa.Column('delivery_attempts', sa.Integer(), server_default=sa.text('0'),
                                    nullable=False))
    op.add_column('jobs', sa.Column('delivery_retry_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('jobs', sa.Column('delivery_error', sa.Text(), nullable=True))
    # Jobs already queued when this runs have a message somewhere: mark them published, into no known broker,
    # so the reaper's first pass re-publishes them once (a duplicate is harmless: the claim skips it).
    op.execute("UPDATE jobs SET published_at = queued_at WHERE state = 'queued'")
    op.create_index('ix_jobs_user_lane_state', 'jobs', ['user_id', 'lane', 'state'])


def downgrade() -> None:
    op.drop_index('ix_jobs_user_lane_state', table_name='jobs')
    op.drop_column('jobs', 'delivery_error')
    op.drop_column('jobs', 'delivery_retry_at')
    op.drop_column('jobs', 'delivery_attempts')
    op.drop_column('jobs', 'broker_epoch')
    op.drop_column('jobs', 'published_at')
