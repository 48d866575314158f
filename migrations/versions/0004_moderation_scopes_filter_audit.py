"""moderation: per-server grants and bans, the prompt filter's terms, image policies, the audit log

Grants get a server (``guild_id``; the existing ones stay NULL: operators' grants, valid everywhere).
Bans move from three columns of ``users`` to a ``bans`` table with a server (the existing ones become
global bans). Jobs record the action for flagged images and whether theirs were flagged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:20:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('filter_terms',
    sa.Column('guild_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('term', sa.String(length=80), nullable=False),
    sa.Column('shown', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('set_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('block', 'allow')", name=op.f('ck_filter_terms_kind')),
    sa.PrimaryKeyConstraint('guild_id', 'term', name=op.f('pk_filter_terms'))
    )
    op.create_table('image_policies',
    sa.Column('guild_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('set_by', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("action IN ('allow', 'spoiler', 'block')", name=op.f('ck_image_policies_action')),
    sa.CheckConstraint("scope IN ('server', 'age_restricted', 'channel')",
                       name=op.f('ck_image_policies_scope')),
    sa.PrimaryKeyConstraint('guild_id', 'scope', 'channel_id', name=op.f('pk_image_policies'))
    )
    op.create_table('moderation_events',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=True),
    sa.Column('channel_id', sa.BigInteger(), nullable=True),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('interaction_id', sa.BigInteger(), nullable=True),
    sa.Column('job_id', sa.BigInteger(), nullable=True),
    sa.Column('term', sa.String(length=80), nullable=True),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('appealed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('prompt_blocked', 'image_blocked', 'image_spoiler')",
                       name=op.f('ck_moderation_events_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_events')),
    sa.UniqueConstraint('interaction_id', name=op.f('uq_moderation_events_interaction_id'))
    )
    op.create_index('ix_moderation_events_guild_id_id', 'moderation_events', ['guild_id', 'id'], unique=False)
    op.create_table('bans',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=True),
    sa.Column('banned_by', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_bans_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bans'))
    )
    op.create_index('ix_bans_user_active', 'bans', ['user_id', 'guild_id'], unique=False,
                    postgresql_where=sa.text('lifted_at IS NULL'))
    op.add_column('grants', sa.Column('guild_id', sa.BigInteger(), nullable=True))
    op.add_column('jobs', sa.Column('image_action', sa.String(length=8), nullable=True))
    op.add_column('jobs', sa.Column('flagged', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    # Existing bans applied everywhere: they become operators' (global) bans.
    op.execute(
        "INSERT INTO bans (user_id, guild_id, banned_by, reason, created_at) "
        "SELECT id, NULL, banned_by, ban_reason, banned_at FROM users WHERE banned_at IS NOT NULL"
    )
    op.drop_column('users', 'banned_by')
    op.drop_column('users', 'banned_at')
    op.drop_column('users', 'ban_reason')


def downgrade() -> None:
    op.add_column('users', sa.Column('ban_reason', sa.VARCHAR(length=300), autoincrement=False, nullable=True))
    op.add_column('users', sa.Column('banned_at', postgresql.TIMESTAMP(timezone=True), autoincrement=False,
                                     nullable=True))
    op.add_column('users', sa.Column('banned_by', sa.BIGINT(), autoincrement=False, nullable=True))
    # Only global bans existed before: keep those; per-server bans and grants are dropped.
    op.execute(
        "UPDATE users SET banned_at = b.created_at, banned_by = b.banned_by, ban_reason = b.reason "
        "FROM bans b WHERE b.user_id = users.id AND b.guild_id IS NULL AND b.lifted_at IS NULL"
    )
    op.execute("DELETE FROM grants WHERE guild_id IS NOT NULL")
    op.drop_column('jobs', 'flagged')
    op.drop_column('jobs', 'image_action')
    op.drop_column('grants', 'guild_id')
    op.drop_index('ix_bans_user_active', table_name='bans', postgresql_where=sa.text('lifted_at IS NULL'))
    op.drop_table('bans')
    op.drop_index('ix_moderation_events_guild_id_id', table_name='moderation_events')
    op.drop_table('moderation_events')
    op.drop_table('image_policies')
    op.drop_table('filter_terms')
