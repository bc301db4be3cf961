"""Proactive messages waiting for web-chat visitors.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the web_inbox table."""
    op.create_table(
        "web_inbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_web_inbox_address_hash", "web_inbox", ["address_hash"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_web_inbox_address_hash", table_name="web_inbox")
    op.drop_table("web_inbox")
