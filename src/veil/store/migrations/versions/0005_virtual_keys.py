"""gateway virtual keys

Revision ID: 0005_virtual_keys
Revises: 0004_keys_and_vault
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_virtual_keys"
down_revision: str | None = "0004_keys_and_vault"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "virtual_keys",
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("rate", sa.String(40), nullable=True),
        sa.Column("tokens", sa.String(40), nullable=True),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_virtual_keys"),
    )


def downgrade() -> None:
    op.drop_table("virtual_keys")
