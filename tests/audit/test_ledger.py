"""The ledger on SQLite and the real PostgreSQL: appends, proofs, and tamper detection."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from veil.audit import Ledger, merkle, prove_archived, verify_archive
from veil.audit._canonical import canonical_json
from veil.audit._ledger import _entries_agree_in_database
from veil.detect import Detector
from veil.errors import (
    InputError,
    IntegrityError,
    KeyMaterialError,
    PolicyViolationError,
    StorageError,
)
from veil.keys import RootKey
from veil.store import create_engine_for, upgrade

KEY = os.urandom(32)
DETECTOR = Detector()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(engine: Engine) -> Ledger:
    ledger = Ledger(engine, RootKey(KEY), DETECTOR)
    for index in range(12):
        ledger.append(
            "svc-gateway",
            "gateway.call",
            "ok",
            subject=f"user-{index % 3}",
            details={"model": "gpt-4o", "tokens": index * 10, "kinds": ["EMAIL"]},
        )
    return ledger


def tamper(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def test_a_fresh_ledger_verifies(ledger: Ledger) -> None:
    report = ledger.verify()
    assert report["entries"] == 12
    assert report["signed_heads"] == 12


def test_entries_are_canonical_json_with_sequence_and_utc_time(ledger: Ledger) -> None:
    first = ledger.entries(limit=1)[0]
    assert first["seq"] == 0
    assert first["time"].endswith("Z")
    assert set(first) == {"seq", "time", "actor", "action", "outcome", "subject", "details"}


def test_inclusion_proof_verifies_with_the_standalone_verifier(ledger: Ledger) -> None:
    proof = ledger.prove(5)
    leaf = merkle.leaf_hash(proof["entry"].encode())
    assert leaf.hex() == proof["leaf_hash"]
    merkle.verify_inclusion(
        5,
        proof["tree_size"],
        leaf,
        [bytes.fromhex(node) for node in proof["proof"]],
        bytes.fromhex(proof["root"]),
    )


def test_details_with_personal_data_are_refused(ledger: Ledger) -> None:
    with pytest.raises(PolicyViolationError, match=r"details\.prompt.*EMAIL"):
        ledger.append("svc", "gateway.call", "ok", details={"prompt": "write to bob@example.com"})
    assert ledger.size() == 12


def test_the_offending_value_is_named_among_many_clean_ones(ledger: Ledger) -> None:
    details = {"model": "gpt-4o", "count": 3, "notes": ["fine", "call +1 415 555 0133"]}
    with pytest.raises(PolicyViolationError, match=r"details\.notes\[1\].*PHONE"):
        ledger.append("svc", "gateway.call", "ok", details=details)


def test_personal_data_in_a_details_key_is_refused_without_echoing_it(ledger: Ledger) -> None:
    with pytest.raises(PolicyViolationError) as caught:
        ledger.append("svc", "gateway.call", "ok", details={"kinds": {"bob@example.com": 1}})
    assert "a key of details.kinds" in caught.value.message
    assert "bob@example.com" not in str(caught.value)


def test_digests_are_keyed(ledger: Ledger, tmp_path: Path) -> None:
    other_engine = create_engine_for(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other_engine)
    other = Ledger(other_engine, RootKey(os.urandom(32)), DETECTOR)
    assert ledger.digest("hello") != other.digest("hello")
    assert ledger.digest("hello").startswith("hmac-sha256:")
    ledger.append("svc", "gateway.call", "ok", details={"prompt_digest": ledger.digest("x")})


def test_only_exact_digests_skip_the_details_check(ledger: Ledger) -> None:
    """Digests are not scanned (they hold nothing); a digest with content after it is."""
    disguised = ledger.digest("x") + " mail bob@example.com"
    with pytest.raises(PolicyViolationError, match=r"details\.prompt_digest.*EMAIL"):
        ledger.append("svc", "gateway.call", "ok", details={"prompt_digest": disguised})


def test_personal_data_sealed_for_its_subject_is_accepted_and_reads_back(ledger: Ledger) -> None:
    sealed = ledger.seal("user-9", "bob@example.com")
    assert "bob" not in sealed
    ledger.append("svc", "support.ticket", "ok", subject="user-9", details={"email": sealed})
    assert ledger.entries(subject="user-9")[0]["details"]["email"] == sealed
    assert ledger.unseal(sealed) == "bob@example.com"


def test_text_that_only_starts_like_a_sealed_value_is_still_checked(ledger: Ledger) -> None:
    sealed = ledger.seal("user-9", "x")
    for disguised in ("sealed:v1:bob@example.com", sealed + " mail bob@example.com"):
        with pytest.raises(PolicyViolationError, match="EMAIL"):
            ledger.append("svc", "support.ticket", "ok", details={"email": disguised})
    with pytest.raises(InputError, match="sealed:v1"):
        ledger.unseal("sealed:v1:" + "A" * 60)


def test_an_access_request_opens_the_subjects_values_and_is_recorded(ledger: Ledger) -> None:
    details = {"email": ledger.seal("user-9", "bob@example.com"), "tags": ["vip"]}
    ledger.append("svc", "support.ticket", "ok", subject="user-9", details=details)
    found = ledger.access("user-9", "dpo")
    assert [entry["details"] for entry in found] == [{"email": "bob@example.com", "tags": ["vip"]}]
    recorded = ledger.entries(action="subject.access")
    assert [(e["actor"], e["subject"], e["details"]) for e in recorded] == [
        ("dpo", "user-9", {"entries": 1})
    ]


def test_erasure_shreds_the_subjects_values_and_the_ledger_still_verifies(
    ledger: Ledger,
) -> None:
    mine = ledger.seal("user-9", "bob@example.com")
    theirs = ledger.seal("user-8", "eve@example.com")
    ledger.append("svc", "support.ticket", "ok", subject="user-9", details={"email": mine})
    ledger.append("svc", "support.ticket", "ok", subject="user-8", details={"email": theirs})
    entry = ledger.erase_subject("user-9", "dpo")
    assert (entry.action, entry.subject, entry.details) == (
        "subject.erase",
        "user-9",
        {"keys_destroyed": 1},
    )
    assert ledger.unseal(mine) is None
    assert ledger.unseal(theirs) == "eve@example.com"
    assert ledger.access("user-9", "dpo")[0]["details"] == {"email": "[erased]"}
    assert ledger.verify()["entries"] == 12 + 4  # verify raises on any integrity failure


def test_a_subject_can_be_sealed_for_again_after_erasure(ledger: Ledger) -> None:
    old = ledger.seal("user-9", "old@example.com")
    ledger.erase_subject("user-9", "dpo")
    new = ledger.seal("user-9", "new@example.com")
    assert (ledger.unseal(old), ledger.unseal(new)) == (None, "new@example.com")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(max_size=200))
def test_seal_then_unseal_is_the_identity(ledger: Ledger, value: str) -> None:
    assert ledger.unseal(ledger.seal("user-1", value)) == value


def test_remembered_clean_details_do_not_let_a_changed_value_through(ledger: Ledger) -> None:
    clean = {"found": {"EMAIL": 1}, "note": "routine"}
    ledger.append("svc", "gateway.call", "ok", details=clean)
    ledger.append("svc", "gateway.call", "ok", details=clean)  # the remembered verdict
    with pytest.raises(PolicyViolationError, match="EMAIL"):
        ledger.append(
            "svc", "gateway.call", "ok", details={**clean, "note": "mail bob@example.com"}
        )
    # A refused text is never remembered: refused again.
    with pytest.raises(PolicyViolationError):
        ledger.append(
            "svc", "gateway.call", "ok", details={**clean, "note": "mail bob@example.com"}
        )


def test_bad_outcome_is_an_input_error(ledger: Ledger) -> None:
    with pytest.raises(InputError, match="outcome"):
        ledger.append("svc", "x", "maybe")


@pytest.mark.parametrize("value", [{1, 2}, b"raw", object()])
def test_details_that_are_not_json_are_an_input_error(ledger: Ledger, value: object) -> None:
    with pytest.raises(InputError, match="must be JSON"):
        ledger.append("svc", "x", "ok", details={"value": value})


def test_details_that_contain_themselves_are_an_input_error(ledger: Ledger) -> None:
    looped: dict[str, object] = {}
    looped["self"] = looped
    before = ledger.append("svc", "x", "ok").seq
    with pytest.raises(InputError, match="must be JSON"):
        ledger.append("svc", "x", "ok", details={"looped": looped})
    assert ledger.append("svc", "x", "ok").seq == before + 1  # nothing written for it


def test_edited_entry_is_named(ledger: Ledger, engine: Engine) -> None:
    tamper(
        engine,
        "UPDATE audit_entries SET entry = :entry WHERE seq = 4",
        entry=ledger.entries()[4].__repr__().encode(),
    )
    with pytest.raises(IntegrityError, match="entry 4"):
        ledger.verify()


def test_edited_entry_with_recomputed_hashes_is_caught_by_the_signed_heads(
    ledger: Ledger, engine: Engine
) -> None:
    """The attacker rewrites entry 6 and recomputes every hash after it, but cannot sign."""
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT seq, entry FROM audit_entries ORDER BY seq")).all()
        frontier = merkle.Frontier()
        for seq, entry in rows:
            data = bytes(entry)
            if seq == 6:
                record = json.loads(data)
                record["outcome"] = "denied"
                import rfc8785

                data = rfc8785.dumps(record)
            leaf = merkle.leaf_hash(data)
            frontier.append(leaf)
            connection.execute(
                text(
                    "UPDATE audit_entries SET entry = :e, leaf_hash = :l, root = :r, "
                    "outcome = :o WHERE seq = :s"
                ),
                {
                    "e": data,
                    "l": leaf,
                    "r": frontier.root(),
                    "o": json.loads(data)["outcome"],
                    "s": seq,
                },
            )
    with pytest.raises(IntegrityError, match=r"entries 6\.\.6 do not match the signed tree head"):
        ledger.verify()


def test_the_database_side_check_passes_a_clean_ledger_and_fails_an_edited_one(
    ledger: Ledger, engine: Engine
) -> None:
    """The fast pass relies on the database comparing columns and entries; were its
    query broken, every verify would quietly take the slow full pass."""
    with engine.connect() as connection:
        assert _entries_agree_in_database(connection) is True
    tamper(engine, "UPDATE audit_entries SET outcome = 'denied' WHERE seq = 1")
    with engine.connect() as connection:
        assert _entries_agree_in_database(connection) is False


def test_a_column_edited_apart_from_its_entry_is_named(ledger: Ledger, engine: Engine) -> None:
    """Queries filter on the columns: a changed actor column must not go unnoticed."""
    tamper(engine, "UPDATE audit_entries SET actor = 'someone-else' WHERE seq = 5")
    with pytest.raises(IntegrityError, match="entry 5: its columns disagree"):
        ledger.verify()


def test_an_entry_that_is_not_json_is_named_even_with_its_hash_recomputed(
    ledger: Ledger, engine: Engine
) -> None:
    garbage = b"not json at all"
    tamper(
        engine,
        "UPDATE audit_entries SET entry = :e, leaf_hash = :l WHERE seq = 3",
        e=garbage,
        l=merkle.leaf_hash(garbage),
    )
    with pytest.raises(IntegrityError, match="entry 3 is not valid JSON"):
        ledger.verify()


def test_deleted_entry_is_named(ledger: Ledger, engine: Engine) -> None:
    tamper(engine, "DELETE FROM audit_entries WHERE seq = 7")
    with pytest.raises(IntegrityError, match="entry 7 is missing"):
        ledger.verify()


def test_reordered_entries_are_named(ledger: Ledger, engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET seq = -1 WHERE seq = 2"))
        connection.execute(text("UPDATE audit_entries SET seq = 2 WHERE seq = 3"))
        connection.execute(text("UPDATE audit_entries SET seq = 3 WHERE seq = -1"))
    with pytest.raises(IntegrityError, match="entry 2 holds the entry for seq 3"):
        ledger.verify()


def test_inserted_entry_is_named(ledger: Ledger, engine: Engine) -> None:
    row = {"seq": 12, "entry": b'{"seq":12}', "leaf": b"\0" * 32}
    tamper(
        engine,
        "INSERT INTO audit_entries (seq, time, actor, action, outcome, entry, leaf_hash, root) "
        "VALUES (:seq, CURRENT_TIMESTAMP, 'x', 'y', 'ok', :entry, :leaf, :leaf)",
        **row,
    )
    with pytest.raises(IntegrityError, match="12"):
        ledger.verify()


def test_truncation_and_rollback_are_caught_by_a_checkpoint(ledger: Ledger, engine: Engine) -> None:
    saved = ledger.checkpoint()
    assert ledger.verify(saved)["checkpoint"]["consistent"] is True
    # A rolled-back database: the newest entries, heads and state as they were before.
    tamper(engine, "DELETE FROM audit_entries WHERE seq >= 10")
    tamper(engine, "DELETE FROM audit_heads WHERE size > 10")
    with engine.begin() as connection:
        frontier = merkle.Frontier()
        for (leaf,) in connection.execute(text("SELECT leaf_hash FROM audit_entries ORDER BY seq")):
            frontier.append(bytes(leaf))
        connection.execute(
            text("UPDATE audit_state SET size = :n, frontier = :f"),
            {"n": frontier.size, "f": b"".join(frontier.subtrees)},
        )
    ledger.verify()  # consistent on its own...
    with pytest.raises(IntegrityError, match="truncated or rolled back"):
        ledger.verify(saved)  # ...but not with what was seen before


def test_a_forged_checkpoint_is_refused(ledger: Ledger) -> None:
    saved = ledger.checkpoint()
    signature = bytearray(base64.b64decode(saved["signature"]))
    signature[0] ^= 1
    saved["signature"] = base64.b64encode(bytes(signature)).decode()
    with pytest.raises(IntegrityError, match="signature"):
        ledger.verify(saved)


def test_another_root_key_cannot_open_the_ledger_signing_key(
    ledger: Ledger, engine: Engine
) -> None:
    with pytest.raises(KeyMaterialError, match="wrapped by root key rk-"):
        Ledger(engine, RootKey(os.urandom(32)), DETECTOR)


def test_a_forged_tree_head_signature_is_named(ledger: Ledger, engine: Engine) -> None:
    tamper(engine, "UPDATE audit_heads SET signature = :s WHERE size = 12", s=b"\1" * 64)
    with pytest.raises(IntegrityError, match="tree head at size 12 has an invalid signature"):
        ledger.verify()


def _writer(url: str, key: bytes, worker: int, count: int) -> None:
    engine = create_engine_for(url)
    ledger = Ledger(engine, RootKey(key))
    for index in range(count):
        ledger.append(f"worker-{worker}", "test.append", "ok", details={"i": index})
    engine.dispose()


def test_four_writer_processes_make_one_gap_free_sequence(
    engine: Engine, database_url: str
) -> None:
    Ledger(engine, RootKey(KEY)).size()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(database_url, KEY, n, 25)) for n in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    ledger = Ledger(engine, RootKey(KEY))
    assert ledger.verify()["entries"] == 100
    entries = ledger.entries()
    assert [entry["seq"] for entry in entries] == list(range(100))
    for worker in range(4):
        mine = [e["details"]["i"] for e in entries if e["actor"] == f"worker-{worker}"]
        assert mine == list(range(25))


def test_concurrent_callers_are_group_committed(engine: Engine) -> None:
    ledger = Ledger(engine, RootKey(KEY))
    barrier = threading.Barrier(16)

    def caller(n: int) -> list[int]:
        barrier.wait()
        return [
            ledger.append(f"t{n}", "test.append", "ok", details={"i": i}).seq for i in range(20)
        ]

    with ThreadPoolExecutor(max_workers=16) as pool:
        seqs = [seq for result in pool.map(caller, range(16)) for seq in result]
    ledger.close()
    assert sorted(seqs) == list(range(320))
    report = ledger.verify()
    assert report["entries"] == 320
    assert report["signed_heads"] < 320  # callers shared transactions


def test_a_failed_group_reports_the_error_to_its_callers(engine: Engine) -> None:
    ledger = Ledger(engine, RootKey(KEY))
    ledger.append("svc", "before", "ok")
    tamper(engine, "DROP TABLE audit_heads")
    with pytest.raises(StorageError, match="audit_heads"):
        ledger.append("svc", "x", "ok")
    ledger.close()
    # The group's entry row went out before the failing statement: it was rolled back.
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM audit_entries")).scalar_one() == 1


def test_archiving_old_entries_keeps_the_ledger_verifiable(
    ledger: Ledger, engine: Engine, tmp_path: Path
) -> None:
    saved = ledger.checkpoint()  # taken before archiving, covers all 12 entries
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    archive = tmp_path / "segment-1.jsonl"
    report = ledger.archive(cutoff, archive)
    assert (report["start"], report["end"], report["archived"]) == (0, 12, 12)
    assert ledger.entries() == []
    ledger.append("svc", "after.archive", "ok")
    result = ledger.verify(saved)
    assert result["entries"] == 13
    assert result["checkpoint"]["consistent"] is True
    assert verify_archive(archive, ledger.public_key)["entries"] == 12


def test_archive_keeps_entries_newer_than_the_cutoff(
    ledger: Ledger, engine: Engine, tmp_path: Path
) -> None:
    tamper(
        engine,
        "UPDATE audit_entries SET time = :t WHERE seq < 6",
        t=datetime(2010, 1, 1, tzinfo=UTC),
    )
    report = ledger.archive(datetime(2015, 1, 1, tzinfo=UTC), tmp_path / "old.jsonl")
    assert (report["start"], report["end"]) == (0, 6)
    assert [entry["seq"] for entry in ledger.entries()] == list(range(6, 12))
    assert ledger.verify()["entries"] == 12
    again = ledger.archive(datetime(2015, 1, 1, tzinfo=UTC), tmp_path / "none.jsonl")
    assert again["archived"] == 0


def test_a_tampered_archive_file_is_detected(ledger: Ledger, tmp_path: Path) -> None:
    archive = tmp_path / "segment.jsonl"
    ledger.archive(datetime.now(UTC) + timedelta(seconds=1), archive)
    lines = archive.read_text().splitlines()
    lines[3] = lines[3].replace('"ok"', '"denied"')
    archive.write_text("\n".join(lines) + "\n")
    with pytest.raises(IntegrityError, match="do not rebuild the signed root"):
        verify_archive(archive, ledger.public_key)


def test_a_forged_segment_boundary_is_detected(
    ledger: Ledger, engine: Engine, tmp_path: Path
) -> None:
    ledger.archive(datetime.now(UTC) + timedelta(seconds=1), tmp_path / "s.jsonl")
    tamper(engine, "UPDATE audit_segments SET root = :r", r=b"\0" * 32)
    with pytest.raises(IntegrityError, match="does not match its signed tree head"):
        ledger.verify()


def test_appends_work_without_pipeline_mode(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An older libpq has no pipeline mode: the three writes then go one by one.
    import veil.audit._writer as writer

    monkeypatch.setattr(writer, "_psycopg_pipelines", lambda: False)
    ledger = Ledger(engine, RootKey(KEY))
    ledger.append_many([{"actor": "svc", "action": "x", "outcome": "ok"}] * 3)
    assert ledger.verify()["entries"] == 3
    ledger.close()


def test_iter_entries_reads_in_batches_and_matches_entries(ledger: Ledger) -> None:
    # More entries than one batch: the iterator streams them (an export of a 7-year ledger
    # held every entry in memory: 563 MB for 300,000) and gives what the list gives.
    ledger.append_many(
        [
            {"actor": "svc", "action": "bench", "outcome": "ok", "details": {"i": i}}
            for i in range(2500)
        ]
    )
    stream = ledger.iter_entries(action="bench")
    assert not isinstance(stream, list)
    streamed = list(stream)
    assert [e["details"]["i"] for e in streamed] == list(range(2500))
    assert streamed == ledger.entries(action="bench")
    newest = list(ledger.iter_entries(newest_first=True, limit=3))
    last = streamed[-1]["seq"]  # the fixture's entries came first
    assert [e["seq"] for e in newest] == [last, last - 1, last - 2]


def test_a_negative_limit_is_refused_on_both_backends(ledger: Ledger) -> None:
    # SQLite took LIMIT -1 for "no limit" and PostgreSQL raised its own error.
    with pytest.raises(InputError, match="limit must be 0 or more"):
        ledger.entries(limit=-1)


def _proof_checks(ledger: Ledger, seq: int) -> None:
    proof = ledger.prove(seq)
    merkle.verify_inclusion(
        seq,
        proof["tree_size"],
        merkle.leaf_hash(proof["entry"].encode()),
        [bytes.fromhex(node) for node in proof["proof"]],
        bytes.fromhex(proof["root"]),
    )


def test_every_entry_proof_equals_the_proof_over_all_leaves(ledger: Ledger) -> None:
    # The streamed prover against the reference that holds every leaf in memory.
    ledger.append_many(
        [
            {"actor": "svc", "action": "bulk", "outcome": "ok", "details": {"i": i}}
            for i in range(33)
        ]
    )
    leaves = [
        merkle.leaf_hash(canonical_json(entry)) for entry in ledger.entries()
    ]  # 45 entries: an odd-sized tree
    for seq in range(len(leaves)):
        proof = ledger.prove(seq)
        assert proof["proof"] == [node.hex() for node in merkle.inclusion_proof(seq, leaves)]


def test_entries_after_an_archive_are_still_provable(
    ledger: Ledger, engine: Engine, tmp_path: Path
) -> None:
    # Proving read every leaf from the database: after archiving, it crashed for every
    # entry. The archived prefix is now stood for by the segment's stored right edge.
    tamper(
        engine,
        "UPDATE audit_entries SET time = :t WHERE seq < 5",
        t=datetime(2010, 1, 1, tzinfo=UTC),
    )
    assert ledger.archive(datetime(2015, 1, 1, tzinfo=UTC), tmp_path / "old.jsonl")["end"] == 5
    ledger.append_many(
        [
            {"actor": "svc", "action": "bulk", "outcome": "ok", "details": {"i": i}}
            for i in range(20)
        ]
    )
    for seq in range(5, 32):
        _proof_checks(ledger, seq)
    with pytest.raises(InputError, match="archived"):
        ledger.prove(3)


def test_an_archived_entry_is_proved_from_its_segment_file(
    ledger: Ledger, engine: Engine, tmp_path: Path
) -> None:
    tamper(
        engine,
        "UPDATE audit_entries SET time = :t WHERE seq < 7",
        t=datetime(2010, 1, 1, tzinfo=UTC),
    )
    segment = tmp_path / "old.jsonl"
    assert ledger.archive(datetime(2015, 1, 1, tzinfo=UTC), segment)["end"] == 7
    for seq in range(7):
        proof = prove_archived(segment, seq)
        assert proof["tree_size"] == 7
        assert json.loads(proof["entry"])["seq"] == seq
        merkle.verify_inclusion(
            seq,
            7,
            merkle.leaf_hash(proof["entry"].encode()),
            [bytes.fromhex(node) for node in proof["proof"]],
            bytes.fromhex(proof["root"]),
        )
    with pytest.raises(InputError, match=r"holds entries 0\.\.6"):
        prove_archived(segment, 9)
    assert prove_archived(segment, 3, ledger.public_key)["leaf_index"] == 3
    stranger = (
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    with pytest.raises(IntegrityError, match="signature"):
        prove_archived(segment, 3, stranger)  # a file signed by another key
    lines = segment.read_text().splitlines()
    lines[2] = lines[2].replace('"ok"', '"denied"')  # an edited archived entry
    segment.write_text("\n".join(lines) + "\n")
    with pytest.raises(IntegrityError, match="does not rebuild"):
        prove_archived(segment, 4)


def test_consistency_proofs_verify_against_every_earlier_signed_head(
    ledger: Ledger, engine: Engine
) -> None:
    # The fixture signed a head after each of its 12 entries.
    ledger.append_many(
        [{"actor": "svc", "action": "bulk", "outcome": "ok", "details": {"i": i}} for i in range(9)]
    )
    with engine.connect() as connection:
        roots = dict(connection.execute(text("SELECT size, root FROM audit_heads")).all())
    for old_size in range(1, 13):
        proof = ledger.prove_consistency(old_size)
        merkle.verify_consistency(
            old_size,
            proof["tree_size"],
            bytes(roots[old_size]),
            bytes.fromhex(proof["root"]),
            [bytes.fromhex(node) for node in proof["proof"]],
        )
    with pytest.raises(InputError, match="No consistency proof"):
        ledger.prove_consistency(0)


def test_a_consistency_proof_from_inside_archived_segments_reads_their_files(
    ledger: Ledger, engine: Engine, tmp_path: Path
) -> None:
    # The fixture signed a head after each of its 12 entries; keep their roots.
    with engine.connect() as connection:
        roots = dict(connection.execute(text("SELECT size, root FROM audit_heads")).all())
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    for n in range(2):  # entries 0..4 and 5..9 go to two files
        ledger.archive(cutoff, tmp_path / f"segment-{n}.jsonl", max_entries=5)
    ledger.append_many(
        [{"actor": "svc", "action": "bulk", "outcome": "ok", "details": {"i": i}} for i in range(3)]
    )
    files = [tmp_path / "segment-1.jsonl", tmp_path / "segment-0.jsonl"]  # any order
    for old_size in range(1, 13):
        proof = ledger.prove_consistency(old_size, files)
        merkle.verify_consistency(
            old_size,
            proof["tree_size"],
            bytes(roots[old_size]),
            bytes.fromhex(proof["root"]),
            [bytes.fromhex(node) for node in proof["proof"]],
        )
    with pytest.raises(InputError, match="--archive FILE"):
        ledger.prove_consistency(3)  # the entries it needs are only in the files
    with pytest.raises(InputError, match="without a gap"):
        ledger.prove_consistency(3, [tmp_path / "segment-0.jsonl"])
    assert ledger.prove_consistency(7, [tmp_path / "segment-1.jsonl"])["old_size"] == 7
    lines = (tmp_path / "segment-0.jsonl").read_text().splitlines()
    lines[3] = lines[3].replace('"ok"', '"denied"')  # an edited archived entry
    (tmp_path / "segment-0.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(IntegrityError, match="does not rebuild"):
        ledger.prove_consistency(8, files)


def test_a_large_backlog_is_archived_in_bounded_segments(ledger: Ledger, tmp_path: Path) -> None:
    # Each segment holds the write lock while it is written: max_entries bounds it.
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    reports = [
        ledger.archive(cutoff, tmp_path / f"segment-{n}.jsonl", max_entries=5) for n in range(4)
    ]
    assert [(r["start"], r["end"]) for r in reports] == [(0, 5), (5, 10), (10, 12), (12, 12)]
    for n in range(3):
        assert verify_archive(tmp_path / f"segment-{n}.jsonl", ledger.public_key)["entries"]
    ledger.append("svc", "after.archive", "ok")
    assert ledger.verify()["entries"] == 13
    assert prove_archived(tmp_path / "segment-1.jsonl", 7)["tree_size"] == 10
    with pytest.raises(InputError, match="max_entries"):
        ledger.archive(cutoff, tmp_path / "none.jsonl", max_entries=0)
