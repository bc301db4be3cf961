"""The officer workspace: tip owners, priority, duplicates, rewards, timelines, blocks.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the case columns, tip_events and blocked_tipsters, and the queue's indexes."""
    with op.batch_alter_table("tips") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("priority", sa.String(8), nullable=False, server_default="normal")
        )
        batch.add_column(sa.Column("duplicate_of", sa.String(16), nullable=True))
        batch.add_column(sa.Column("first_response_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("reward_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reward_at", UTCDateTime(), nullable=True))
    op.create_index("ix_tips_created", "tips", ["created_at"])
    op.create_index("ix_tips_area_created", "tips", ["area_code", "created_at"])
    op.create_index("ix_tips_category_created", "tips", ["category", "created_at"])
    op.create_index("ix_tips_owner_status", "tips", ["owner", "status"])
    with op.batch_alter_table("tip_owners") as batch:
        batch.add_column(
            sa.Column("updates", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("staff") as batch:
        batch.add_column(
            sa.Column("notify", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "tip_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tip_id", sa.Integer(), sa.ForeignKey("tips.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_tip_events_tip", "tip_events", ["tip_id", "id"])
    op.create_table(
        "blocked_tipsters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("tip_code", sa.String(16), nullable=False),
        sa.Column("blocked_by", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("blocked_tipsters")
    op.drop_index("ix_tip_events_tip", table_name="tip_events")
    op.drop_table("tip_events")
    with op.batch_alter_table("staff") as batch:
        batch.drop_column("notify")
    with op.batch_alter_table("tip_owners") as batch:
        batch.drop_column("updates")
    for name in ("ix_tips_owner_status", "ix_tips_category_created", "ix_tips_area_created"):
        op.drop_index(name, table_name="tips")
    op.drop_index("ix_tips_created", table_name="tips")
    with op.batch_alter_table("tips") as batch:
        for column in (
            "reward_at",
            "reward_note",
            "first_response_at",
            "duplicate_of",
            "priority",
            "owner",
        ):
            batch.drop_column(column)
