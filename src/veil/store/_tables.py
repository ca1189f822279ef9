"""Table definitions shared by the code and the Alembic migrations."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Facts about this Veil installation (instance id, schema creation time).
veil_meta = Table(
    "veil_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The audit ledger (veil.audit): one row per entry, in sequence, with its RFC 6962 leaf
# hash and the tree root after it; signed tree heads; the sequencer's state row, whose
# lock serializes appends across processes and hosts.
audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(200), nullable=False),
    Column("outcome", String(50), nullable=False),
    Column("subject", String(200)),
    Column("resource", String(500)),
    Column("entry", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Index("ix_audit_entries_time", "time"),
    Index("ix_audit_entries_actor", "actor"),
    Index("ix_audit_entries_action", "action"),
    Index("ix_audit_entries_subject", "subject"),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("key_id", String(40), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
)

audit_state = Table(
    "audit_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("frontier", LargeBinary, nullable=False),
)

# Ranges of the ledger archived for retention: entries below ``end_size`` were exported
# and dropped; the tree's right edge at ``end_size`` lets verification continue after it.
audit_segments = Table(
    "audit_segments",
    metadata,
    Column("end_size", BigInteger, primary_key=True, autoincrement=False),
    Column("start_size", BigInteger, nullable=False),
    Column("frontier", LargeBinary, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("archive_sha256", String(64), nullable=False),
    Column("archived_at", DateTime(timezone=True), nullable=False),
)

# Data keys (veil.keys): random 256-bit keys per purpose and subject, stored only wrapped
# by the root key; ``wrapped`` is NULL once a subject's key is shredded.
data_keys = Table(
    "data_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("purpose", String(100), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("wrapped", LargeBinary),
    Column("root_key_id", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True)),
    UniqueConstraint("purpose", "subject", name="uq_data_keys_purpose"),
)

# The vault: one sealed value per name; ``previous`` holds the value being rotated away
# until the rotation is committed.
vault_secrets = Table(
    "vault_secrets",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("previous", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True), nullable=False),
)

# Gateway virtual keys: only a keyed hash (HMAC-SHA-256 under a data key) of the key is
# stored; ``models`` is a JSON list (empty: every model); limits as written by the user.
virtual_keys = Table(
    "virtual_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("key_hash", LargeBinary(32), nullable=False),
    Column("models", Text, nullable=False),
    Column("rate", String(40)),
    Column("tokens", String(40)),
    Column("policy", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# Analytics events (veil.analytics): one row per event, the actor as a keyed hash,
# dimensions and numeric values as JSON objects; never content.
analytics_events = Table(
    "analytics_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("source", String(50), nullable=False),
    Column("action", String(100), nullable=False),
    Column("outcome", String(50), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("dims", Text, nullable=False),
    Column("event_values", Text, nullable=False),
    Index("ix_analytics_events_time", "time"),
)
