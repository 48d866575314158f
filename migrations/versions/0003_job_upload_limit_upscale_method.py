"""jobs: upload limit and upscale method

The interaction's attachment_size_limit, so delivery re-encodes images to fit the channel; and how an
upscale was made (esrgan, creative, lanczos), shown on its message.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 22:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('upload_limit', sa.BigInteger(), nullable=True))
    op.add_column('jobs', sa.Column('upscale_method', sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column('jobs', 'upscale_method')
    op.drop_column('jobs', 'upload_limit')
