"""audit segments: archived ranges of the ledger (retention)

Revision ID: 0003_audit_segments
Revises: 0002_audit_ledger
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_audit_segments"
down_revision: str | None = "0002_audit_ledger"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_segments",
        sa.Column("end_size", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("start_size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("archive_sha256", sa.String(64), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("end_size", name="pk_audit_segments"),
    )


def downgrade() -> None:
    op.drop_table("audit_segments")
