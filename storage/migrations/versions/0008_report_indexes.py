"""Indexes for the queue's filters and a period's figures over a large tips table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A category's or an owner's open tips without reading every row; a period's figures from the
# index alone (time, category, status, area, first response, closing: all /stats reads).
INDEXES = {
    "ix_tips_category_status_created": ["category", "status", "created_at"],
    "ix_tips_owner_status_created": ["owner", "status", "created_at"],
    "ix_tips_created_figures": [
        "created_at",
        "category",
        "status",
        "area_code",
        "first_response_at",
        "closed_at",
    ],
}


def upgrade() -> None:
    """Add them."""
    for name, columns in INDEXES.items():
        op.create_index(name, "tips", columns)


def downgrade() -> None:
    """Drop them."""
    for name in INDEXES:
        op.drop_index(name, table_name="tips")
