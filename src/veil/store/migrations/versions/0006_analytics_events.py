"""analytics events

Revision ID: 0006_analytics_events
Revises: 0005_virtual_keys
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_analytics_events"
down_revision: str | None = "0005_virtual_keys"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(50), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("dims", sa.Text(), nullable=False),
        sa.Column("event_values", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_analytics_events"),
    )
    op.create_index("ix_analytics_events_time", "analytics_events", ["time"])


def downgrade() -> None:
    op.drop_index("ix_analytics_events_time", table_name="analytics_events")
    op.drop_table("analytics_events")
