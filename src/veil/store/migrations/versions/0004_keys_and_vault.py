"""data keys wrapped by the root key; the secret vault

Revision ID: 0004_keys_and_vault
Revises: 0003_audit_segments
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_keys_and_vault"
down_revision: str | None = "0003_audit_segments"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("purpose", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("root_key_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_data_keys"),
        sa.UniqueConstraint("purpose", "subject", name="uq_data_keys_purpose"),
    )
    op.create_table(
        "vault_secrets",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("previous", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_vault_secrets"),
    )


def downgrade() -> None:
    op.drop_table("vault_secrets")
    op.drop_table("data_keys")
