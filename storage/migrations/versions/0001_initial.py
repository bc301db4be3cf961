"""Chats with conversation state, tips, attachments, tip owners, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the first tables."""
    op.create_table(
        "chats",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("flow", sa.String(32), nullable=True),
        sa.Column("step", sa.String(32), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prompt_token", sa.String(8), nullable=True),
        sa.Column("prompt_actions", sa.JSON(), nullable=False),
        sa.Column("expired_notice", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_chats_flow_updated", "chats", ["flow", "updated_at"])
    op.create_table(
        "tips",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("pin_hash", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("place_text", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occurred", sa.String(16), nullable=False),
        sa.Column("contact_enc", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_tips_status_created", "tips", ["status", "created_at"])
    op.create_table(
        "tip_attachments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tip_id", sa.Integer(), sa.ForeignKey("tips.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("file_ref", sa.Text(), nullable=False),
        sa.Column("mime_type", sa.String(128), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
    )
    op.create_index("ix_tip_attachments_tip_id", "tip_attachments", ["tip_id"])
    op.create_table(
        "tip_owners",
        sa.Column(
            "tip_id",
            sa.Integer(),
            sa.ForeignKey("tips.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("owner_hash", sa.String(64), nullable=False),
        sa.Column("reply_address_enc", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_tip_owners_owner_hash", "tip_owners", ["owner_hash"])
    op.create_index("ix_tip_owners_owner_created", "tip_owners", ["owner_hash", "created_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop everything."""
    for table in ("audit_log", "tip_owners", "tip_attachments", "tips", "chats"):
        op.drop_table(table)
