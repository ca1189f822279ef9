"""Audit ledger throughput against plain INSERTs, on SQLite and PostgreSQL.

- durable appends/s with 1 caller and with 16 concurrent callers (group commit): 16
  threads, and 16 asyncio tasks awaiting ``submit`` (how the gateway appends);
- the reference: plain INSERTs of the same rows with the same durability, one commit per
  row (1 caller) and batched like the ledger's groups (16 callers), into a table shaped
  like the ledger's (same columns, same four query indexes) and into a minimal one
  (sequence, actor, entry);
- verify: entries/s over a ledger of --verify-entries entries;
- inclusion proof size for a 10^6-entry tree.

Usage: python bench/bench_audit.py [--postgres URL] [--appends 2000] [--verify-entries 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import Column, Engine, Index, Integer, LargeBinary, MetaData, String, Table, text

from veil.audit import Ledger, merkle
from veil.keys import RootKey
from veil.store import audit_entries, create_engine_for, upgrade

KEY = RootKey(os.urandom(32))
minimal = Table(
    "bench_plain",
    MetaData(),
    Column("seq", Integer, primary_key=True),
    Column("actor", String(200)),
    Column("entry", LargeBinary),
)
# The ledger's own table definition, copied under another name, with the same four
# query indexes the migration creates.
same_shape = audit_entries.to_metadata(MetaData(), name="bench_plain_same")
# Constraint and index names are per schema on PostgreSQL: the copy's must not collide
# with the ledger's own table in the same schema.
for item in [*same_shape.constraints, *same_shape.indexes]:
    if isinstance(item.name, str):
        item.name = f"bench_same_{item.name}"
for column in ("time", "actor", "action", "subject"):
    Index(f"ix_bench_same_{column}", same_shape.c[column])
ROW = b'{"action":"gateway.call","actor":"svc","details":{"model":"gpt-4o","tokens":120}}'


def fresh_engine(kind: str, postgres: str | None) -> Engine:
    if kind == "sqlite":
        return create_engine_for(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    assert postgres is not None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine_for(postgres)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in postgres else "?"
    return create_engine_for(f"{postgres}{separator}options=-csearch_path%3D{schema}")


def ledger_rate(engine: Engine, callers: int, appends: int) -> float:
    ledger = Ledger(engine, KEY)
    per_caller = appends // callers

    def work(n: int) -> None:
        for i in range(per_caller):
            ledger.append("svc", "gateway.call", "ok", details={"model": "gpt-4o", "i": i})

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=callers) as pool:
        list(pool.map(work, range(callers)))
    elapsed = time.perf_counter() - started
    ledger.close()
    return per_caller * callers / elapsed


def ledger_async_rate(engine: Engine, callers: int, appends: int) -> float:
    """``callers`` asyncio tasks on one event loop, each awaiting its own durable append
    (``submit``): how the gateway appends. The loop thread wakes once per group instead
    of one caller thread per entry."""
    ledger = Ledger(engine, KEY)
    per_caller = appends // callers

    async def work() -> None:
        for i in range(per_caller):
            details = {"model": "gpt-4o", "i": i}
            await asyncio.wrap_future(ledger.submit("svc", "gateway.call", "ok", details=details))

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(callers)))
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    ledger.close()
    return per_caller * callers / elapsed


def ledger_batched_rate(engine: Engine, appends: int, batch: int) -> float:
    """append_many from one thread in groups of ``batch``: the ledger's own cost for the
    same batching as the references, without the hand-off between caller threads."""
    ledger = Ledger(engine, KEY)
    items = [
        {
            "actor": "svc",
            "action": "gateway.call",
            "outcome": "ok",
            "details": {"model": "gpt-4o", "i": i},
        }
        for i in range(appends)
    ]
    started = time.perf_counter()
    for offset in range(0, appends, batch):
        ledger.append_many(items[offset : offset + batch])
    elapsed = time.perf_counter() - started
    ledger.close()
    return appends / elapsed


def plain_rate(
    engine: Engine, appends: int, batch: int, table: Table = minimal, *, multirow: bool = False
) -> float:
    """Plain INSERTs of ``batch`` rows per commit: an executemany, or with ``multirow``
    one multi-row ``INSERT … VALUES (…), (…)`` per batch over DB-API (the ledger's own
    form on SQLite), the fairer reference for the ledger's cost."""
    table.create(engine, checkfirst=True)
    with engine.begin() as connection:
        start = connection.execute(
            text(f"SELECT COALESCE(MAX(seq), 0) FROM {table.name}")  # noqa: S608
        ).scalar_one()
    if table is minimal:
        rows = [{"seq": start + 1 + i, "actor": "svc", "entry": ROW} for i in range(appends)]
    else:
        now = datetime.now(UTC)
        rows = [
            {
                "seq": start + 1 + i,
                "time": now,
                "actor": "svc",
                "action": "gateway.call",
                "outcome": "ok",
                "entry": ROW,
                "leaf_hash": os.urandom(32),
                "root": os.urandom(32),
            }
            for i in range(appends)
        ]
    if not multirow:
        started = time.perf_counter()
        for offset in range(0, appends, batch):
            with engine.begin() as connection:
                connection.execute(table.insert(), rows[offset : offset + batch])
        return appends / (time.perf_counter() - started)
    # The statements and their parameters, as the database stores them, before the clock.
    dialect = engine.dialect
    columns = list(rows[0])
    processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    statements = []
    for offset in range(0, appends, batch):
        chunk = rows[offset : offset + batch]
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES {', '.join([one] * len(chunk))}"
        )
        values = [
            row[c] if processor is None else processor(row[c])
            for row in chunk
            for c, processor in zip(columns, processors, strict=True)
        ]
        statements.append((sql, tuple(values)))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        for sql, values in statements:
            cursor.execute(sql, values)
            raw.commit()
        elapsed = time.perf_counter() - started
    finally:
        raw.close()
    return appends / elapsed


def verify_rate(engine: Engine, entries: int) -> float:
    upgrade(engine)  # before the Ledger: it takes its keys from the key store's table
    ledger = Ledger(engine, KEY)
    for _ in range(0, entries, 1000):
        ledger.append_many(
            [
                {"actor": "svc", "action": "bench", "outcome": "ok", "details": {"i": i}}
                for i in range(1000)
            ]
        )
    started = time.perf_counter()
    report = ledger.verify()
    assert report["entries"] >= entries
    return report["entries"] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("VEIL_TEST_POSTGRES_URL"))
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--verify-entries", type=int, default=200_000)
    args = parser.parse_args()
    results: dict[str, object] = {}
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    for kind in backends:
        one = fresh_engine(kind, args.postgres)
        upgrade(one)
        sixteen = fresh_engine(kind, args.postgres)
        upgrade(sixteen)
        ledger_1 = ledger_rate(one, 1, args.appends // 4)
        ledger_16 = ledger_rate(sixteen, 16, args.appends)
        tasks = fresh_engine(kind, args.postgres)
        upgrade(tasks)
        ledger_16_tasks = ledger_async_rate(tasks, 16, args.appends)
        tasks.dispose()
        heads = sixteen.connect().execute(text("SELECT COUNT(*) FROM audit_heads")).scalar_one()
        group = args.appends / max(1, heads)
        batch = max(1, round(group))
        results[kind] = {
            "ledger_appends_per_s_1_caller": round(ledger_1),
            "plain_inserts_per_s_1_per_commit": round(plain_rate(one, args.appends // 4, 1)),
            "same_shape_inserts_per_s_1_per_commit": round(
                plain_rate(one, args.appends // 4, 1, same_shape)
            ),
            "ledger_appends_per_s_16_callers": round(ledger_16),
            "mean_group_size_16_callers": round(group, 1),
            "ledger_appends_per_s_16_asyncio_tasks": round(ledger_16_tasks),
            "ledger_append_many_per_s_same_batches": round(
                ledger_batched_rate(sixteen, args.appends, batch)
            ),
            "plain_inserts_per_s_same_batches": round(plain_rate(sixteen, args.appends, batch)),
            "same_shape_inserts_per_s_same_batches": round(
                plain_rate(sixteen, args.appends, batch, same_shape)
            ),
            "same_shape_multirow_inserts_per_s_same_batches": round(
                plain_rate(sixteen, args.appends, batch, same_shape, multirow=True)
            ),
            "verify_entries_per_s": round(
                verify_rate(fresh_engine(kind, args.postgres), args.verify_entries)
            ),
        }
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(1 << 10)]
    depth_for_million = (10**6 - 1).bit_length()
    results["inclusion_proof_bytes_for_10^6_entries"] = depth_for_million * merkle.HASH_SIZE
    results["inclusion_proof_hashes_checked_for_1024"] = len(merkle.inclusion_proof(0, leaves))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
