"""The outbox, bulletins and their runs, and the buttons of proactive messages.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add message_prompts, bulletins, bulletin_runs and outbox."""
    op.create_table(
        "message_prompts",
        sa.Column("token", sa.String(16), primary_key=True),
        sa.Column("address_hash", sa.String(64), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "bulletins",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("topic", sa.String(16), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("creator_address_enc", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "bulletin_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "bulletin_id",
            sa.Integer(),
            sa.ForeignKey("bulletins.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("scheduled_for", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("prompt_token", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("bulletin_id", "scheduled_for", name="uq_run_schedule"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("address_enc", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.String(64), nullable=True),
        sa.Column(
            "run_id",
            sa.Integer(),
            sa.ForeignKey("bulletin_runs.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("run_id", "address_hash", name="uq_outbox_run_address"),
    )
    op.create_index(
        "ix_outbox_channel_status_next", "outbox", ["channel", "status", "next_attempt_at"]
    )
    op.create_index("ix_outbox_run_status", "outbox", ["run_id", "status"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_outbox_run_status", table_name="outbox")
    op.drop_index("ix_outbox_channel_status_next", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("bulletin_runs")
    op.drop_table("bulletins")
    op.drop_table("message_prompts")
