"""Groups told apart from residents, bulletin photos, and when a bulletin was last paused.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add subscriptions.is_group, outbox.is_group, and bulletins' photo_ref and pause times."""
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column("is_group", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("is_group", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("bulletins") as batch:
        batch.add_column(sa.Column("photo_ref", sa.Text(), nullable=True))
        batch.add_column(sa.Column("paused_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("resumed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("bulletins") as batch:
        batch.drop_column("resumed_at")
        batch.drop_column("paused_at")
        batch.drop_column("photo_ref")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("is_group")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("is_group")
