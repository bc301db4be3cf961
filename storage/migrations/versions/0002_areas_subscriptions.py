"""Areas: imported neighbourhoods, alert subscriptions, a tip's area, blocked chats.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add neighbourhoods and subscriptions; tips get an area; chats a blocked flag."""
    op.create_table(
        "neighbourhoods",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("ward_code", sa.String(16), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("polygons", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_neighbourhoods_ward_code", "neighbourhoods", ["ward_code"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("address_enc", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("area_code", sa.String(64), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("address_hash", "area_code", name="uq_subscription_area"),
    )
    op.create_index("ix_subscriptions_area_code", "subscriptions", ["area_code"])
    with op.batch_alter_table("tips") as batch:
        batch.add_column(sa.Column("area_code", sa.String(64), nullable=True))
        batch.create_index("ix_tips_area_code", ["area_code"])
    with op.batch_alter_table("chats") as batch:
        batch.add_column(
            sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Remove what upgrade added."""
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("blocked")
    with op.batch_alter_table("tips") as batch:
        batch.drop_index("ix_tips_area_code")
        batch.drop_column("area_code")
    op.drop_table("subscriptions")
    op.drop_table("neighbourhoods")
