"""veil_meta: facts about this installation (instance id, schema creation time)

Revision ID: 0001_meta
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001_meta"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    meta = op.create_table(
        "veil_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_veil_meta"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        meta,
        [
            {"key": "instance_id", "value": uuid.uuid4().hex, "updated_at": now},
            {"key": "schema_created_at", "value": now.isoformat(), "updated_at": now},
        ],
    )


def downgrade() -> None:
    op.drop_table("veil_meta")
