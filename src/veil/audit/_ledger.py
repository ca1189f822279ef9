"""The ledger: append-only entries in an RFC 6962 Merkle tree with signed tree heads."""

from __future__ import annotations

import base64
import bisect
import contextlib
import functools
import hashlib
import hmac
import itertools
import json
import queue
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic
from typing import Any, NamedTuple

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, Engine, delete, func, insert, literal, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import SQLAlchemyError

from veil._files import atomic_writer
from veil._hmac import KeyedHmac
from veil.audit import merkle
from veil.audit._canonical import canonical_json
from veil.audit._writer import IDLE_RELEASE_S, GroupWriter
from veil.detect import Detector
from veil.errors import InputError, IntegrityError, KeyShreddedError, PolicyViolationError
from veil.keys import KeyStore, RootKey, is_sealed_blob
from veil.store import (
    SQLITE_BEGIN_OPTION,
    as_utc,
    audit_entries,
    audit_heads,
    audit_segments,
    audit_state,
)

MAX_GROUP = 1000
# When fewer callers are waiting than recent groups held, the sequencer waits this long
# for the rest: callers whose entries just committed come back within microseconds, and
# one commit for all of them beats two (docs/benchmarks.md). A lone caller never waits;
# after a burst, the expectation falls by one caller per group.
GROUP_LINGER_S = 0.0003
ARCHIVE_FORMAT = "veil-audit-segment-v1"
OUTCOMES = frozenset({"ok", "denied", "blocked", "error", "redacted", "allowed"})
_TREE_HEAD_CONTEXT = b"veil-tree-head-v1\0"
_SEPARATOR = "\n\u2063\n"  # blank line + invisible separator: ends every pattern
# What an access request shows for a value whose subject's key was destroyed.
ERASED = "[erased]"


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    time: datetime
    actor: str
    action: str
    outcome: str
    subject: str | None
    resource: str | None
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "seq": self.seq,
            "time": _timestamp(self.time),
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome,
            "details": self.details,
        }
        if self.subject is not None:
            data["subject"] = self.subject
        if self.resource is not None:
            data["resource"] = self.resource
        return data


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed statement: the ledger had ``size`` entries with this ``root``."""

    size: int
    root: bytes
    time: datetime
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        return tree_head_message(self.size, self.root, self.time)

    def to_dict(self, public_key: bytes | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "size": self.size,
            "root": self.root.hex(),
            "time": _timestamp(self.time),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }
        if public_key is not None:
            data["public_key"] = base64.b64encode(public_key).decode()
        return data


class _Item(NamedTuple):
    """An entry checked and encoded but for its ``seq`` and ``time``: its RFC 8785
    encoding is ``before_seq + seq + before_time + time + "}"``. A named tuple: one is
    built per append, three times faster than a frozen dataclass."""

    actor: str
    action: str
    outcome: str
    subject: str | None
    resource: str | None
    details: dict[str, Any]
    before_seq: bytes
    before_time: bytes


class _Request:
    """What one caller queued: one entry (``append``) or several in one transaction.

    The sequencer hands the outcome back through ``future`` (``submit``) or, for a caller
    that blocks (``append``), through ``outcome`` and ``done``, a held lock it releases:
    one lock instead of a future's condition, lock and waiter list per append."""

    __slots__ = ("caller", "done", "future", "items", "outcome", "single")

    def __init__(self, items: list[_Item], future: Future[Any] | None, single: bool) -> None:
        self.items = items
        self.future = future
        self.single = single
        self.outcome: Any = None
        self.done: threading.Lock | None = None
        self.caller: int | None = None  # the blocking caller's thread
        if future is None:
            self.done = threading.Lock()
            self.done.acquire()
            self.caller = threading.get_ident()

    def finish(self, result: Any, error: BaseException | None) -> None:
        if self.future is not None:
            if error is None:
                self.future.set_result(result)
            else:
                self.future.set_exception(error)
            return
        self.outcome = result if error is None else error
        assert self.done is not None
        self.done.release()

    def wait(self) -> Any:
        """The outcome of a request without a future (blocks until it is known)."""
        assert self.done is not None
        self.done.acquire()
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


@functools.lru_cache(maxsize=4096)
def _json_string(value: str) -> bytes:
    # Actors, actions and outcomes repeat: encode each once.
    return canonical_json(value)


def _make_item(
    actor: str,
    action: str,
    outcome: str,
    subject: str | None,
    resource: str | None,
    details: dict[str, Any],
    encoded_details: bytes,
) -> _Item:
    """The members in code point order of their (ASCII) names, each value canonical on
    its own, is exactly RFC 8785 of the whole object (a property test holds it equal to
    encoding ``Entry.to_dict()``)."""
    before_seq = [
        b'{"action":',
        _json_string(action),
        b',"actor":',
        _json_string(actor),
        b',"details":',
        encoded_details,
        b',"outcome":',
        _json_string(outcome),
    ]
    if resource is not None:
        before_seq += [b',"resource":', canonical_json(resource)]
    before_seq.append(b',"seq":')
    before_time = b',"subject":' + canonical_json(subject) if subject is not None else b""
    return _Item(
        actor,
        action,
        outcome,
        subject,
        resource,
        details,
        b"".join(before_seq),
        before_time + b',"time":',
    )


def _encode_entry(item: _Item, seq: int, stamp: bytes) -> bytes:
    """RFC 8785 of the entry at ``seq`` with the time already encoded in ``stamp``."""
    return b"".join((item.before_seq, str(seq).encode(), item.before_time, stamp, b"}"))


def _head_from_row(row: Any) -> TreeHead:
    return TreeHead(
        int(row.size), bytes(row.root), as_utc(row.time), row.key_id, bytes(row.signature)
    )


class StreamDigest:
    """A keyed digest fed piece by piece; :meth:`value` equals ``Ledger.digest`` of the
    pieces joined."""

    __slots__ = ("_mac",)

    def __init__(self, mac: hmac.HMAC) -> None:
        self._mac = mac

    def update(self, data: bytes) -> None:
        self._mac.update(data)

    def value(self) -> str:
        return "hmac-sha256:" + self._mac.hexdigest()


def tree_head_message(size: int, root: bytes, time: datetime) -> bytes:
    """What a tree-head signature covers (also what an external checker must rebuild)."""
    return _TREE_HEAD_CONTEXT + canonical_json(
        {"size": size, "root": root.hex(), "time": _timestamp(time)}
    )


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_EXPORT_BATCH = 1000  # entries read per round trip when iterating over many
_CLEAN_CACHE_TEXT = 2048  # longer detail texts are scanned every time, never remembered
_CLEAN_CACHE_SIZE = 4096
_DIGEST = re.compile(r"hmac-sha256:[0-9a-f]{64}")


_SEALED_PREFIX = "sealed:v1:"
_SEALED_BODY = re.compile(r"[A-Za-z0-9_-]{40,}")
_SUBJECT_PURPOSE = "ledger-subject"
_SUBJECT_AAD = b"veil-ledger-details-v1"


def _is_opaque(value: str) -> bool:
    # What Ledger.digest returns (256 bits of keyed hash) or Ledger.seal (ciphertext under
    # a data subject's key): nothing to scan for.
    if len(value) == 76:
        return _DIGEST.fullmatch(value) is not None
    return value.startswith(_SEALED_PREFIX) and _sealed_blob(value) is not None


def _sealed_blob(value: str) -> bytes | None:
    """The key store's blob inside a value :meth:`Ledger.seal` returned, else None."""
    body = value[len(_SEALED_PREFIX) :]
    if not value.startswith(_SEALED_PREFIX) or _SEALED_BODY.fullmatch(body) is None:
        return None
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return None
    return blob if is_sealed_blob(blob) else None


_NOT_TEXT = frozenset({int, float, bool, type(None)})


def _texts(value: Any, out: list[str]) -> list[str]:
    """Every string in ``value`` the engine must check, values and mapping keys alike
    (what :func:`_strings` yields, without paths: the check of every entry runs this)."""
    if type(value) is dict:  # the usual case first, by exact type; the rest below
        for key, item in value.items():
            if isinstance(key, str):
                out.append(key)
            kind = type(item)
            if kind is str:
                if not _is_opaque(item):
                    out.append(item)
            elif kind not in _NOT_TEXT:
                _texts(item, out)
        return out
    if isinstance(value, str):
        if not _is_opaque(value):
            out.append(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                out.append(key)
            if not isinstance(item, int | float | bool) and item is not None:
                _texts(item, out)
    elif isinstance(value, list | tuple):
        for item in value:
            _texts(item, out)
    return out


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """:func:`_texts` with the path of each string, to name the one at fault."""
    if isinstance(value, str):
        if not _is_opaque(value):
            yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                yield f"a key of {path}", key  # never echo the key
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


class Ledger:
    """Append-only audit ledger on the configured database.

    ``keys`` (a :class:`KeyStore`, or a root key for one on this engine) supplies the
    Ed25519 tree-head signing key and the HMAC key of :meth:`digest`, both data keys, so
    they survive root-key rotation. ``detector`` checks that ``details`` hold
    no secrets or personal data; raw content never enters the ledger.
    """

    def __init__(
        self, engine: Engine, keys: KeyStore | RootKey, detector: Detector | None = None
    ) -> None:
        self._engine = engine
        if isinstance(keys, RootKey):
            keys = KeyStore(engine, keys)
        seed = keys.material("ledger-signing")
        self._signing = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key_id = "lk-" + hashlib.sha256(self.public_key).hexdigest()[:12]
        self._digest_hmac = KeyedHmac(keys.material("ledger-digest"))
        self._keys = keys
        self._detector = detector
        # Entries written by Veil's own services repeat the same detail strings (names of
        # kinds, actions, endpoints; numbers are not scanned), so texts found clean are
        # remembered (only clean ones: nothing sensitive is kept) and not scanned again.
        self._clean_texts: dict[str, None] = {}
        self._clean_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._sequencer: threading.Thread | None = None
        self._sequencer_lock = threading.Lock()

    def close(self) -> None:
        """Stop the sequencer thread (pending appends are finished first)."""
        with self._sequencer_lock:
            if self._sequencer is not None:
                self._queue.put(None)
                self._sequencer.join()
                self._sequencer = None

    def __repr__(self) -> str:
        return f"Ledger(key_id={self.key_id!r})"

    # -- writing -------------------------------------------------------------------

    def digest(self, content: str | bytes) -> str:
        """A keyed HMAC-SHA-256 of content, for ``details`` (short values cannot be
        recovered by hashing guesses without the key)."""
        data = content.encode() if isinstance(content, str) else content
        return "hmac-sha256:" + self._digest_hmac.hexdigest(data)

    def digester(self) -> StreamDigest:
        """:meth:`digest` of content that arrives in pieces (a streamed answer)."""
        return StreamDigest(self._digest_hmac.copy())

    def seal(self, subject: str, value: str) -> str:
        """``value`` sealed under ``subject``'s own data key, for ``details``: personal
        data an entry must keep (the e-mail address a request concerned). It reads back
        through :meth:`unseal` until :meth:`erase_subject` destroys the key; the entry's
        hashes never change. Sealed values are ciphertext, so the details check skips
        them."""
        if not subject:
            raise InputError("Sealing needs the data subject's identifier.")
        blob = self._keys.seal(_SUBJECT_PURPOSE, value.encode(), _SUBJECT_AAD, subject=subject)
        return _SEALED_PREFIX + base64.urlsafe_b64encode(blob).decode().rstrip("=")

    def unseal(self, value: str) -> str | None:
        """The value :meth:`seal` sealed, or None once its subject was erased."""
        blob = _sealed_blob(value)
        if blob is None:
            raise InputError("Not a value sealed by the audit ledger (sealed:v1:...).")
        try:
            return self._keys.open(_SUBJECT_PURPOSE, blob, _SUBJECT_AAD).decode()
        except KeyShreddedError:
            return None

    def _unsealed(self, value: Any) -> Any:
        if isinstance(value, str):
            if _sealed_blob(value) is None:
                return value
            opened = self.unseal(value)
            return ERASED if opened is None else opened
        if isinstance(value, Mapping):
            return {key: self._unsealed(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._unsealed(item) for item in value]
        return value

    def access(self, subject: str, actor: str) -> list[dict[str, Any]]:
        """A data subject's access request: every entry about ``subject``, oldest first,
        with the values sealed for them opened (:data:`ERASED` where their key was
        destroyed). The request is recorded (``subject.access``, with the number of
        entries found) before anything is returned."""
        if not subject:
            raise InputError("An access request needs the data subject's identifier.")
        found = self.entries(subject=subject)
        self.append(actor, "subject.access", "ok", subject=subject, details={"entries": len(found)})
        return [{**entry, "details": self._unsealed(entry["details"])} for entry in found]

    def erase_subject(self, subject: str, actor: str) -> Entry:
        """A data subject's erasure request: destroy the keys of everything sealed for
        ``subject`` (crypto-shredding; no entry changes, so the chain still verifies), then
        record the erasure (``subject.erase``). Running it again records it again and
        destroys keys created since."""
        if not subject:
            raise InputError("An erasure request needs the data subject's identifier.")
        destroyed = self._keys.shred(subject)
        return self.append(
            actor, "subject.erase", "ok", subject=subject, details={"keys_destroyed": destroyed}
        )

    def _known_clean(self, text: str) -> bool:
        if text in self._clean_texts:
            return True
        assert self._detector is not None
        if self._detector.find(text):
            return False
        with self._clean_lock:
            if len(self._clean_texts) >= _CLEAN_CACHE_SIZE:
                self._clean_texts.pop(next(iter(self._clean_texts)))  # oldest first
            self._clean_texts[text] = None
        return True

    def _check_details(self, details: Mapping[str, Any]) -> None:
        if self._detector is None:
            return
        # One engine pass over all strings, separated so no pattern joins two of them;
        # the paths that name the offending value are built only when there is one.
        texts = _texts(details, [])
        if not texts:
            return
        joined = _SEPARATOR.join(texts)
        if len(joined) <= _CLEAN_CACHE_TEXT:
            if self._known_clean(joined):
                return
        elif not self._detector.find(joined):
            return
        pieces = list(_strings(details, "details"))
        starts, offset = [], 0
        for _, text in pieces:
            starts.append(offset)
            offset += len(text) + len(_SEPARATOR)
        findings = self._detector.find(_SEPARATOR.join(text for _, text in pieces))
        if not findings:
            return
        first = min(findings, key=lambda f: f.start)
        index = bisect.bisect_right(starts, first.start) - 1
        start, end = starts[index], starts[index] + len(pieces[index][1])
        kinds = sorted({f.kind for f in findings if start <= f.start < end})
        raise PolicyViolationError(
            f"Refusing to write {pieces[index][0]} to the audit ledger: it contains "
            f"{', '.join(kinds)}.",
            hint="Store metadata or ledger.digest(value) instead of the value.",
        )

    def append(
        self,
        actor: str,
        action: str,
        outcome: str,
        *,
        subject: str | None = None,
        resource: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Entry:
        """Append one entry; returns once it is durable and covered by a signed head.

        Concurrent callers in one process are grouped: a sequencer thread commits
        whatever is waiting in one transaction under one signed head (group commit), and
        each caller returns when the transaction holding its entry has committed.
        """
        request = self._queue_one(None, actor, action, outcome, subject, resource, details)
        entry: Entry = request.wait()
        return entry

    def submit(
        self,
        actor: str,
        action: str,
        outcome: str,
        *,
        subject: str | None = None,
        resource: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Future[Entry]:
        """Like :meth:`append`, but returns at once with a future of the entry (for
        event loops: ``await asyncio.wrap_future(ledger.submit(...))``). The entry is
        validated before this returns."""
        future: Future[Entry] = Future()
        self._queue_one(future, actor, action, outcome, subject, resource, details)
        return future

    def _queue_one(
        self,
        future: Future[Entry] | None,
        actor: str,
        action: str,
        outcome: str,
        subject: str | None,
        resource: str | None,
        details: Mapping[str, Any] | None,
    ) -> _Request:
        item = self._prepare(
            {
                "actor": actor,
                "action": action,
                "outcome": outcome,
                "subject": subject,
                "resource": resource,
                "details": details,
            }
        )
        request = _Request([item], future, single=True)
        self._enqueue(request)
        return request

    def append_many(self, items: Sequence[Mapping[str, Any]]) -> list[Entry]:
        """Append several entries in one transaction under one signed tree head."""
        prepared = [self._prepare(item) for item in items]
        if not prepared:
            return []
        request = _Request(prepared, None, single=False)
        self._enqueue(request)
        entries: list[Entry] = request.wait()
        return entries

    def _enqueue(self, request: _Request) -> None:
        if self._sequencer is None:
            with self._sequencer_lock:
                if self._sequencer is None:
                    self._sequencer = threading.Thread(
                        target=self._run_sequencer, name="veil-ledger-sequencer", daemon=True
                    )
                    self._sequencer.start()
        self._queue.put(request)

    def _run_sequencer(self) -> None:
        writer = GroupWriter(self._engine)
        expected = 1  # callers the next group waits for (see below)
        previous_callers: set[int] = set()
        try:
            while True:
                try:
                    first = self._queue.get(timeout=IDLE_RELEASE_S)
                except queue.Empty:  # a quiet second: whoever comes next starts afresh
                    writer.release_if_idle()
                    expected, previous_callers = 1, set()
                    continue
                if first is None:
                    return
                # Whatever waits joins this group, and while fewer callers have come than
                # expected, the sequencer lingers briefly for the others (GROUP_LINGER_S).
                batch, count, stop = [first], len(first.items), False
                deadline = monotonic() + GROUP_LINGER_S
                while count < MAX_GROUP:
                    try:
                        if len(batch) < expected:
                            waiting = self._queue.get(timeout=max(0.0, deadline - monotonic()))
                        else:
                            waiting = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if waiting is None:
                        stop = True
                        break
                    batch.append(waiting)
                    count += len(waiting.items)
                # One short group (a caller was slow to come back) lowers the expectation
                # by one only: resetting it to the short group's size split 16 callers into
                # two alternating groups of ~8 for good, with a commit each. Blocking
                # callers are also counted by thread over the last two groups, so two
                # groups that alternate (8 + 8 threads) wait for each other and merge.
                callers = {request.caller for request in batch if request.caller is not None}
                threads = len(callers | previous_callers)
                previous_callers = callers
                expected = max(len(batch), expected - 1, threads)
                self._commit_group(writer, batch)
                if stop:
                    return
        finally:
            writer.close()

    def _commit_group(self, writer: GroupWriter, batch: list[_Request]) -> None:
        items = [item for request in batch for item in request.items]
        try:
            entries = self._commit(writer, items)
        except BaseException as exc:  # every caller of the group learns it failed
            for request in batch:
                request.finish(None, exc)
            return
        offset = 0
        for request in batch:
            mine = entries[offset : offset + len(request.items)]
            offset += len(request.items)
            request.finish(mine[0] if request.single else mine, None)

    def _prepare(self, item: Mapping[str, Any]) -> _Item:
        """Check an entry and encode its details (a bad one fails only its own caller)."""
        actor, action, outcome = item.get("actor"), item.get("action"), item.get("outcome")
        if not actor or not action:
            raise InputError("An audit entry needs an actor and an action.")
        if outcome not in OUTCOMES:
            raise InputError(
                f"Unknown audit outcome {outcome!r}; use one of {', '.join(sorted(OUTCOMES))}."
            )
        details = dict(item.get("details") or {})
        try:
            self._check_details(details)
            encoded = canonical_json(details)
        except (TypeError, ValueError, RecursionError, rfc8785.CanonicalizationError):
            # RecursionError: a value that contains itself
            raise InputError(
                "Audit details must be JSON: strings, numbers, booleans, null, lists and objects."
            ) from None
        subject, resource = item.get("subject"), item.get("resource")
        return _make_item(
            str(actor),
            str(action),
            str(outcome),
            None if subject is None else str(subject),
            None if resource is None else str(resource),
            details,
            encoded,
        )

    def _commit(self, writer: GroupWriter, items: Sequence[_Item]) -> list[Entry]:
        now = datetime.now(UTC)
        stamp = canonical_json(_timestamp(now))
        stored_time = writer.stored_time(now)
        entries: list[Entry] = []

        def build(size: int, blob: bytes) -> tuple[list[tuple[Any, ...]], int, bytes, Any]:
            entries.clear()
            frontier = _split_frontier(blob, size)
            rows: list[tuple[Any, ...]] = []
            for item in items:
                seq = frontier.size
                encoded = _encode_entry(item, seq, stamp)
                leaf = merkle.leaf_hash(encoded)
                frontier.append(leaf)
                rows.append(
                    (
                        seq,
                        stored_time,
                        item.actor,
                        item.action,
                        item.outcome,
                        item.subject,
                        item.resource,
                        encoded,
                        leaf,
                        frontier.root(),
                    )
                )
                entries.append(
                    Entry(
                        seq,
                        now,
                        item.actor,
                        item.action,
                        item.outcome,
                        item.subject,
                        item.resource,
                        item.details,
                    )
                )
            signed = self._sign(frontier.size, frontier.root(), now)
            head = (signed.size, signed.root, stored_time, signed.key_id, signed.signature)
            return rows, frontier.size, b"".join(frontier.subtrees), head

        writer.write(build)
        return entries

    def _sign(self, size: int, root: bytes, time: datetime) -> TreeHead:
        signature = self._signing.sign(tree_head_message(size, root, time))
        return TreeHead(size, root, time, self.key_id, signature)

    # -- reading -------------------------------------------------------------------

    def size(self) -> int:
        with self._engine.connect() as connection:
            return int(
                connection.execute(
                    select(audit_state.c.size).where(audit_state.c.id == 1)
                ).scalar_one()
            )

    def latest_head(self) -> TreeHead | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(audit_heads).order_by(audit_heads.c.size.desc()).limit(1)
            ).first()
        if row is None:
            return None
        return _head_from_row(row)

    def checkpoint(self) -> dict[str, Any]:
        """The latest signed tree head with the public key, to keep outside the database."""
        head = self.latest_head()
        if head is None:
            raise InputError("The audit ledger is empty; there is nothing to checkpoint yet.")
        return head.to_dict(self.public_key)

    def prove(self, seq: int) -> dict[str, Any]:
        """An inclusion proof of entry ``seq`` against the latest signed tree head.

        The leaves are streamed once and each range of the audit path is hashed as it
        passes (memory stays flat in the ledger's size); leaves moved to an archived
        segment are stood for by the segment's stored right edge."""
        head = self.latest_head()
        if head is None or not 0 <= seq < head.size:
            raise InputError(f"Entry {seq} is not in the signed ledger.")
        with self._engine.connect() as connection:
            archived, edge = _archived_edge(connection)
            if seq < archived:
                raise InputError(
                    f"Entry {seq} was archived (entries below {archived} are in an archive "
                    "file, not in the database).",
                    hint="Prove it from that file: `veil audit prove SEQ --archive FILE`.",
                )
            try:
                leaf, proof = merkle.streamed_inclusion_proof(
                    seq,
                    head.size,
                    _stored_leaves(connection, archived, head.size),
                    prefix=archived,
                    prefix_subtrees=edge,
                )
            except ValueError:
                raise IntegrityError(
                    f"The ledger does not hold every entry up to {head.size}; run "
                    "`veil audit verify`."
                ) from None
            entry = connection.execute(
                select(audit_entries.c.entry).where(audit_entries.c.seq == seq)
            ).scalar_one()
        return {
            "leaf_index": seq,
            "tree_size": head.size,
            "entry": bytes(entry).decode(),
            "leaf_hash": leaf.hex(),
            "proof": [node.hex() for node in proof],
            "root": head.root.hex(),
            "tree_head": head.to_dict(self.public_key),
        }

    def prove_consistency(self, old_size: int, archives: Sequence[Path] = ()) -> dict[str, Any]:
        """An RFC 6962 consistency proof that the tree of ``old_size`` entries (a
        checkpoint's) is a prefix of the tree under the latest signed head: whoever holds
        the old root can check that nothing before it was changed, without the entries.

        When entries the proof needs were archived, pass the segment files that hold them
        (``archives``, any order): they must run without a gap up to the archived end,
        their heads must be signed with this ledger's key, and each must rebuild its
        signed root (checked as they are read)."""
        head = self.latest_head()
        if head is None or not 0 < old_size <= head.size:
            size = 0 if head is None else head.size
            raise InputError(
                f"No consistency proof from size {old_size}: the signed ledger has {size} entries.",
                hint="Give the size of a checkpoint taken earlier (1 or more).",
            )
        with contextlib.ExitStack() as stack, self._engine.connect() as connection:
            archived, edge = _archived_edge(connection)
            segments = [_open_segment(stack, path, self.public_key) for path in archives]
            segments.sort(key=lambda segment: segment.header.start)
            ends = [segment.header.start for segment in segments[1:]] + [archived] * bool(segments)
            for segment, end in zip(segments, ends, strict=True):
                if segment.header.end != end:
                    raise InputError(
                        f"{segment.path} ends at entry {segment.header.end}, but the next "
                        f"entries start at {end}: the segment files must run without a gap "
                        f"up to {archived}, where the database's entries begin."
                    )
            prefix, prefix_edge = archived, edge
            if segments:
                prefix, prefix_edge = segments[0].header.start, segments[0].header.edge
            leaves = itertools.chain(
                *(segment.leaves() for segment in segments),
                _stored_leaves(connection, archived, head.size),
            )
            try:
                proof = merkle.streamed_consistency_proof(
                    old_size, head.size, leaves, prefix=prefix, prefix_subtrees=prefix_edge
                )
            except ValueError as exc:
                if "right edge" in str(exc):
                    raise InputError(
                        f"Entries needed for a proof from size {old_size} were archived "
                        f"(entries below {prefix}).",
                        hint="Pass the segment files that hold them with --archive FILE "
                        f"(from the one holding entry {old_size} on), or verify the "
                        "checkpoint with `veil audit verify --checkpoint FILE`.",
                    ) from None
                raise IntegrityError(
                    f"The ledger does not hold every entry up to {head.size}; run "
                    "`veil audit verify`."
                ) from None
            for segment in segments:
                segment.check_read_whole()
        return {
            "old_size": old_size,
            "tree_size": head.size,
            "proof": [node.hex() for node in proof],
            "root": head.root.hex(),
            "tree_head": head.to_dict(self.public_key),
        }

    def entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        subject: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Entries matching every filter given, as a list (see :meth:`iter_entries`)."""
        return list(
            self.iter_entries(
                since=since,
                until=until,
                actor=actor,
                action=action,
                subject=subject,
                outcome=outcome,
                limit=limit,
                newest_first=newest_first,
            )
        )

    def iter_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        action: str | None = None,
        subject: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Entries matching every filter given, oldest first (or newest first), read from
        the database in batches: an export of millions of entries holds one batch in
        memory, not the whole ledger. The connection stays open until the iteration ends."""
        if limit is not None and limit < 0:
            # SQLite reads LIMIT -3 as no limit, PostgreSQL refuses it.
            raise InputError(f"limit must be 0 or more, not {limit}.")
        query = select(audit_entries.c.entry)
        if since is not None:
            query = query.where(audit_entries.c.time >= since)
        if until is not None:
            query = query.where(audit_entries.c.time < until)
        for column, value in (
            (audit_entries.c.actor, actor),
            (audit_entries.c.action, action),
            (audit_entries.c.subject, subject),
            (audit_entries.c.outcome, outcome),
        ):
            if value is not None:
                query = query.where(column == value)
        order = audit_entries.c.seq.desc() if newest_first else audit_entries.c.seq
        query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            # yield_per streams: a server-side cursor on PostgreSQL, fetchmany on SQLite.
            rows = connection.execute(query, execution_options={"yield_per": _EXPORT_BATCH})
            for blob in rows.scalars():
                yield json.loads(bytes(blob))

    # -- retention -----------------------------------------------------------------

    def archive(
        self, before: datetime, out: Path, *, max_entries: int | None = None
    ) -> dict[str, Any]:
        """Export the oldest entries (all older than ``before``, up to a signed tree head)
        to ``out`` and drop them from the database.

        The signed head at the boundary and the tree's right edge stay, so later entries
        still verify; ``verify_archive(out, public_key)`` checks the exported file.
        ``max_entries`` bounds one segment: the database's write lock is held while it is
        written (on SQLite, 1,000,000 entries took 12.5 s, during which appends wait), so
        a large backlog is archived in several calls, one file each.
        """
        if max_entries is not None and max_entries < 1:
            raise InputError("max_entries must be 1 or more.")
        if out.exists():
            raise _segment_exists(out)
        with self._engine.connect() as connection:
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            with connection.begin():
                connection.execute(
                    select(audit_state.c.size).where(audit_state.c.id == 1).with_for_update()
                ).one()
                segment = connection.execute(
                    select(audit_segments).order_by(audit_segments.c.end_size.desc()).limit(1)
                ).first()
                start = int(segment.end_size) if segment is not None else 0
                frontier = (
                    _split_frontier(bytes(segment.frontier), start)
                    if segment is not None
                    else merkle.Frontier()
                )
                start_frontier = frontier.subtrees
                oldest_kept = connection.execute(
                    select(func.min(audit_entries.c.seq)).where(audit_entries.c.time >= before)
                ).scalar()
                limit = int(oldest_kept) if oldest_kept is not None else self.size_in(connection)
                if max_entries is not None:
                    limit = min(limit, start + max_entries)
                head_row = connection.execute(
                    select(audit_heads)
                    .where(audit_heads.c.size > start, audit_heads.c.size <= limit)
                    .order_by(audit_heads.c.size.desc())
                    .limit(1)
                ).first()
                if head_row is None:
                    return {"archived": 0, "start": start, "end": start}
                end = int(head_row.size)
                head = _head_from_row(head_row)
                # Per statement: on the connection, yield_per would make the writes below
                # server-side cursors too (PostgreSQL refuses to DECLARE one for INSERT).
                rows = connection.execute(
                    select(audit_entries.c.seq, audit_entries.c.entry, audit_entries.c.leaf_hash)
                    .where(audit_entries.c.seq >= start, audit_entries.c.seq < end)
                    .order_by(audit_entries.c.seq),
                    execution_options={"yield_per": _EXPORT_BATCH},
                )
                header = {
                    "format": ARCHIVE_FORMAT,
                    "start": start,
                    "end": end,
                    "start_frontier": [node.hex() for node in start_frontier],
                    "tree_head": head.to_dict(self.public_key),
                }
                # Written as the rows stream in (a segment of millions of entries is never
                # held in memory) to a temporary file that replaces ``out`` only once
                # every entry checked out.
                file_hash = hashlib.sha256()
                # Never over an existing file: it may be an earlier segment, whose
                # entries are in no database any more.
                with _no_overwrite(out), atomic_writer(out, mode=0o600, replace=False) as handle:

                    def put(line: bytes) -> None:
                        file_hash.update(line)
                        handle.write(line)

                    put(json.dumps(header).encode() + b"\n")
                    for expected, (seq, raw, stored_leaf) in enumerate(rows, start):
                        entry = bytes(raw)
                        leaf = merkle.leaf_hash(entry)
                        if seq != expected or leaf != bytes(stored_leaf):
                            raise IntegrityError(
                                f"Audit entry {expected} does not verify; run `veil audit "
                                "verify` before archiving."
                            )
                        frontier.append(leaf)
                        put(entry + b"\n")
                    if frontier.size != end or frontier.root() != head.root:
                        raise IntegrityError(
                            f"The entries below {end} do not match their signed tree head; "
                            "run `veil audit verify` before archiving."
                        )
                digest = file_hash.hexdigest()
                connection.execute(
                    insert(audit_segments).values(
                        end_size=end,
                        start_size=start,
                        frontier=b"".join(frontier.subtrees),
                        root=head.root,
                        archive_sha256=digest,
                        archived_at=datetime.now(UTC),
                    )
                )
                connection.execute(delete(audit_entries).where(audit_entries.c.seq < end))
        return {
            "archived": end - start,
            "start": start,
            "end": end,
            "file": str(out),
            "sha256": digest,
        }

    @staticmethod
    def size_in(connection: Connection) -> int:
        return int(
            connection.execute(select(audit_state.c.size).where(audit_state.c.id == 1)).scalar_one()
        )

    # -- verification --------------------------------------------------------------

    def verify(self, checkpoint: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Recompute everything; raise :class:`IntegrityError` naming the first bad entry."""
        return verify_ledger(self._engine, self.public_key, checkpoint)


def _public_key(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_ledger(
    engine: Engine, public_key: bytes, checkpoint: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check every entry against the latest signed tree head (and a saved checkpoint).

    The fast pass hashes each entry once, lets the database compare each entry's
    columns with its JSON, and signs off the whole tree with the latest head. Only when
    that fails does the full pass run, which checks every stored root and every signed
    head to name the first bad entry.
    """
    key = _public_key(public_key)
    with engine.connect() as connection:
        latest = connection.execute(
            select(audit_heads).order_by(audit_heads.c.size.desc()).limit(1)
        ).first()
        wanted = {int(latest.size)} if latest is not None else set()
        if checkpoint is not None and "size" in checkpoint:
            wanted.add(int(checkpoint["size"]))
        frontier, archived_root = _start(connection, key)
        roots_at: dict[int, bytes] = {}
        if archived_root is not None:
            roots_at[frontier.size] = archived_root
        # The database's check (C, without the GIL) runs on a second connection while
        # this thread hashes: on two cores the two passes overlap.
        agreement = _check_in_database(engine)
        hashed = _hash_all_entries(connection, frontier, wanted, roots_at)
        suspicious = not hashed or not agreement.result()
        state_size = connection.execute(
            select(audit_state.c.size).where(audit_state.c.id == 1)
        ).scalar_one()
    if not suspicious and latest is not None and state_size == frontier.size == latest.size:
        head = _head_from_row(latest)
        try:
            key.verify(head.signature, head.signed_bytes())
            signed = True
        except InvalidSignature:
            signed = False
        if signed and roots_at.get(head.size) == head.root:
            report: dict[str, Any] = {
                "entries": frontier.size,
                "signed_heads": _count_heads(engine),
            }
            if checkpoint is not None:
                report["checkpoint"] = _verify_checkpoint(
                    checkpoint, key, frontier.size, roots_at, _archived_heads(engine, checkpoint)
                )
            report["root"] = frontier.root().hex()
            return report
    if not suspicious and latest is None and state_size == frontier.size == 0:
        if checkpoint is not None:
            _verify_checkpoint(checkpoint, key, 0, roots_at)
        return {"entries": 0, "signed_heads": 0, "root": merkle.EMPTY_ROOT.hex()}
    return _verify_everything(engine, key, checkpoint)


# The columns a query filters on must say what the hashed entry says. The database
# parses the JSON (in C, on its side); a row whose entry is not JSON fails the query.
_SQLITE_COLUMNS_DISAGREE = sql_text(
    # One parse per entry: the four members as one JSON array, compared with the
    # columns rendered the same way (a rendering difference only sends verification
    # to the full pass, which compares the values in Python).
    "SELECT COUNT(*) FROM audit_entries WHERE "
    "json_extract(CAST(entry AS TEXT), '$.seq', '$.actor', '$.action', '$.outcome') "
    "IS NOT json_array(seq, actor, action, outcome)"
)
_POSTGRES_ENTRIES_DISAGREE = sql_text(
    # PostgreSQL also checks each leaf hash (sha256 in C), so Python reads only hashes.
    "SELECT COUNT(*) FROM audit_entries AS e, "
    "json_to_record(convert_from(e.entry, 'UTF8')::json) "
    "AS x(seq bigint, actor text, action text, outcome text) "
    "WHERE sha256(decode('00', 'hex') || e.entry) <> e.leaf_hash "
    "OR (x.seq, x.actor, x.action, x.outcome) IS DISTINCT FROM "
    "(e.seq, e.actor, e.action, e.outcome)"
)


_POSTGRES_PARALLEL_SCAN = (
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "min_parallel_table_scan_size",
)


def _check_in_database(engine: Engine) -> Future[bool]:
    """:func:`_entries_agree_in_database` on its own connection, in a thread; at once on
    an in-memory SQLite database, which a second connection would not see."""
    outcome: Future[bool] = Future()

    def run() -> None:
        try:
            with engine.connect() as connection:
                outcome.set_result(_entries_agree_in_database(connection))
        except BaseException as exc:  # handed to the waiting verifier
            outcome.set_exception(exc)

    database = engine.url.database or ""
    if engine.dialect.name == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database
    ):
        run()
    else:
        threading.Thread(target=run, name="veil-verify-check", daemon=True).start()
    return outcome


def _entries_agree_in_database(connection: Connection) -> bool:
    """True when every row's columns say what its entry says (and, on PostgreSQL, its
    leaf hash is the hash of its entry)."""
    query = (
        _SQLITE_COLUMNS_DISAGREE
        if connection.dialect.name == "sqlite"
        else _POSTGRES_ENTRIES_DISAGREE
    )
    try:
        with connection.begin_nested():
            if connection.dialect.name == "postgresql":
                # Parsing every entry is the slowest part of verify: let PostgreSQL
                # spread the scan over its parallel workers (reverted with the transaction).
                for setting in _POSTGRES_PARALLEL_SCAN:
                    connection.execute(sql_text(f"SET LOCAL {setting} = 0"))
            return int(connection.execute(query).scalar_one()) == 0
    except SQLAlchemyError:
        return False  # an entry that is not JSON: the full pass names it


_VERIFY_BATCH = 8192


def _hash_all_entries(
    connection: Connection,
    frontier: merkle.Frontier,
    wanted: set[int],
    roots_at: dict[int, bytes],
) -> bool:
    """Hash every entry into ``frontier``; False at the first sign of tampering (a gap,
    a leaf hash that differs). Rows are read over DB-API in batches: at a million
    entries, per-row objects would cost more than the hashing."""
    raw = connection.connection.dbapi_connection
    assert raw is not None
    sqlite = connection.dialect.name == "sqlite"
    # PostgreSQL has checked the leaf hashes already; SQLite cannot hash, Python does.
    # On PostgreSQL a named (server-side) cursor, so memory stays flat.
    cursor: Any = raw.cursor() if sqlite else raw.cursor(name="veil_verify")  # binary= below
    sha256 = hashlib.sha256
    try:
        if sqlite:
            cursor.execute("SELECT seq, entry, leaf_hash FROM audit_entries ORDER BY seq")
        else:  # binary transfer: a quarter less time reading a million hashes
            cursor.execute("SELECT seq, leaf_hash FROM audit_entries ORDER BY seq", binary=True)
        while rows := cursor.fetchmany(_VERIFY_BATCH):
            start = frontier.size
            if rows[0][0] != start or rows[-1][0] != start + len(rows) - 1:
                return False
            if sqlite:
                leaves = [sha256(b"\x00" + entry).digest() for _, entry, _ in rows]
                if leaves != [stored for _, _, stored in rows]:
                    return False
            else:
                leaves = [bytes(stored) for _, stored in rows]
            # Seqs are unique and the first and last are where they should be, so
            # the batch is gap-free; the roots of wanted sizes inside it come from
            # appending leaf by leaf up to them.
            end, index = start + len(leaves), 0
            for size in sorted(w for w in wanted if start < w <= end):
                frontier.extend(leaves[index : size - start])
                index = size - start
                roots_at[size] = frontier.root()
            frontier.extend(leaves[index:])
    finally:
        cursor.close()
    return True


class _ArchiveHeader(NamedTuple):
    start: int
    end: int
    edge: list[bytes]  # the tree's right edge at ``start``
    head: dict[str, Any]  # the signed tree head at ``end``, as written
    signed: TreeHead


def _read_archive_header(handle: Any, path: Path) -> _ArchiveHeader:
    """The first line of a segment file, checked for shape (not yet for its signature)."""
    try:
        header = json.loads(handle.readline())
        head = header["tree_head"]
        signed = TreeHead(
            int(head["size"]),
            bytes.fromhex(head["root"]),
            datetime.fromisoformat(str(head["time"]).replace("Z", "+00:00")),
            str(head["key_id"]),
            base64.b64decode(head["signature"]),
        )
        result = _ArchiveHeader(
            int(header["start"]),
            int(header["end"]),
            [bytes.fromhex(node) for node in header["start_frontier"]],
            head,
            signed,
        )
    except (IndexError, KeyError, ValueError, TypeError, AttributeError):
        raise InputError(f"{path} is not a Veil audit archive.") from None
    if header.get("format") != ARCHIVE_FORMAT:
        raise InputError(f"{path} is not a Veil audit archive ({ARCHIVE_FORMAT}).")
    return result


def _check_archive_signature(signed: TreeHead, public_key: bytes) -> None:
    try:
        _public_key(public_key).verify(signed.signature, signed.signed_bytes())
    except (InvalidSignature, ValueError):
        raise IntegrityError("The archive's tree head signature does not verify.") from None


def verify_archive(path: Path, public_key: bytes) -> dict[str, Any]:
    """Check an archived segment on its own: its entries rebuild the signed root. The file
    is read line by line (a segment can hold millions of entries)."""
    try:
        with path.open("rb") as handle:
            header = _read_archive_header(handle, path)
            frontier = merkle.Frontier(header.start, header.edge)
            for expected, line in enumerate(handle, header.start):
                raw = line.rstrip(b"\n")
                try:
                    seq = json.loads(raw).get("seq")
                except (ValueError, AttributeError):
                    raise IntegrityError(f"Archived entry {expected} is not valid JSON.") from None
                if seq != expected:
                    raise IntegrityError(f"Archived entry {expected} is missing or out of order.")
                frontier.append(merkle.leaf_hash(raw))
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.") from None
    start, end, signed = header.start, header.end, header.signed
    if frontier.size != end:
        raise IntegrityError(f"The archive holds entries up to {frontier.size}, not {end}.")
    _check_archive_signature(signed, public_key)
    if signed.size != end or frontier.root() != signed.root:
        raise IntegrityError("The archived entries do not rebuild the signed root.")
    return {"start": start, "end": end, "entries": end - start, "root": signed.root.hex()}


class _Segment:
    """An archived segment file being read for a proof: its leaves, checked against the
    signed root that closes it once all are read."""

    def __init__(self, path: Path, handle: Any, header: _ArchiveHeader) -> None:
        self.path = path
        self.header = header
        self._handle = handle
        self._frontier = merkle.Frontier(header.start, header.edge)

    def leaves(self) -> Iterator[bytes]:
        try:
            for line in self._handle:
                leaf = merkle.leaf_hash(line.rstrip(b"\n"))
                self._frontier.append(leaf)
                yield leaf
        except OSError as exc:
            raise InputError(f"Cannot read {self.path}: {exc.strerror}.") from None

    def check_read_whole(self) -> None:
        for _ in self.leaves():  # what the proof did not need to read
            pass
        if (
            self._frontier.size != self.header.end
            or self._frontier.root() != self.header.signed.root
        ):
            raise IntegrityError(
                f"{self.path} does not rebuild the root its tree head signs; run "
                f"`veil audit verify-archive {self.path}`."
            )


def _open_segment(stack: contextlib.ExitStack, path: Path, public_key: bytes) -> _Segment:
    try:
        handle = stack.enter_context(path.open("rb"))
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.") from None
    header = _read_archive_header(handle, path)
    _check_archive_signature(header.signed, public_key)
    return _Segment(path, handle, header)


def prove_archived(path: Path, seq: int, public_key: bytes | None = None) -> dict[str, Any]:
    """An inclusion proof of archived entry ``seq`` against the signed tree head that
    closes its segment file, in the form of :meth:`Ledger.prove`. The file is read once;
    the proof is checked against the signed root before it is returned, and the head's
    signature against ``public_key`` (the ledger's; without it, the key the file names,
    which proves only that the file agrees with itself)."""
    try:
        with path.open("rb") as handle:
            header = _read_archive_header(handle, path)
            start, end = header.start, header.end
            if not start <= seq < end:
                raise InputError(
                    f"Entry {seq} is not in {path} (it holds entries {start}..{end - 1})."
                )
            found: list[bytes] = []

            def leaves() -> Iterator[bytes]:
                for position, line in enumerate(handle, start):
                    raw = line.rstrip(b"\n")
                    if position == seq:
                        found.append(raw)
                    yield merkle.leaf_hash(raw)

            try:
                leaf, proof = merkle.streamed_inclusion_proof(
                    seq, end, leaves(), prefix=start, prefix_subtrees=header.edge
                )
            except ValueError:
                raise IntegrityError(f"{path} does not hold every entry up to {end}.") from None
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.") from None
    if public_key is None:
        try:
            public_key = base64.b64decode(header.head["public_key"])
        except (KeyError, ValueError, TypeError):
            raise InputError(f"{path} names no public key; pass the ledger's.") from None
    _check_archive_signature(header.signed, public_key)
    entry = found[0]
    if (
        header.signed.size != end
        or json.loads(entry).get("seq") != seq
        or merkle.root_from_inclusion(seq, end, leaf, proof) != header.signed.root
    ):
        raise IntegrityError(
            f"{path} does not rebuild the root its tree head signs; run "
            "`veil audit verify-archive` on it."
        )
    return {
        "leaf_index": seq,
        "tree_size": end,
        "entry": entry.decode(),
        "leaf_hash": leaf.hex(),
        "proof": [node.hex() for node in proof],
        "root": header.signed.root.hex(),
        "tree_head": header.head,
    }


def _archived_edge(connection: Connection) -> tuple[int, list[bytes]]:
    """Where the archived entries end, and the tree's right edge there."""
    segment = connection.execute(
        select(audit_segments.c.end_size, audit_segments.c.frontier)
        .order_by(audit_segments.c.end_size.desc())
        .limit(1)
    ).first()
    if segment is None:
        return 0, []
    archived = int(segment.end_size)
    return archived, _split_frontier(bytes(segment.frontier), archived).subtrees


def _segment_exists(out: Path) -> InputError:
    return InputError(
        f"{out} already exists; nothing was archived. An archive file is never replaced: "
        "it may hold an earlier segment, whose entries are no longer in the database.",
        hint="Name a new file for each segment, for example with the date.",
    )


@contextlib.contextmanager
def _no_overwrite(out: Path) -> Iterator[None]:
    try:
        yield
    except FileExistsError:
        raise _segment_exists(out) from None


def _stored_leaves(connection: Connection, start: int, end: int) -> Iterator[bytes]:
    """The stored leaf hashes of entries ``start``..``end - 1`` in order, in batches."""
    rows = connection.execute(
        select(audit_entries.c.seq, audit_entries.c.leaf_hash)
        .where(audit_entries.c.seq >= start, audit_entries.c.seq < end)
        .order_by(audit_entries.c.seq),
        execution_options={"yield_per": _EXPORT_BATCH},
    )
    for expected, (number, value) in enumerate(rows, start):
        if number != expected:
            raise IntegrityError(
                f"Entry {expected} is missing from the ledger; run `veil audit verify`."
            )
        yield bytes(value)


def _split_frontier(blob: bytes, size: int) -> merkle.Frontier:
    return merkle.Frontier(size, [blob[i : i + 32] for i in range(0, len(blob), 32)])


def _start(connection: Connection, key: Ed25519PublicKey) -> tuple[merkle.Frontier, bytes | None]:
    """Where verification starts: the empty tree, or the right edge of the newest archived
    segment — checked against the signed tree head at its boundary."""
    segment = connection.execute(
        select(audit_segments).order_by(audit_segments.c.end_size.desc()).limit(1)
    ).first()
    if segment is None:
        return merkle.Frontier(), None
    end = int(segment.end_size)
    try:
        frontier = _split_frontier(bytes(segment.frontier), end)
    except ValueError:
        raise IntegrityError(f"The archived segment ending at {end} is corrupted.") from None
    head = connection.execute(select(audit_heads).where(audit_heads.c.size == end)).first()
    if head is None:
        raise IntegrityError(
            f"The archived segment ending at {end} has no signed tree head: it was forged."
        )
    signed = _head_from_row(head)
    try:
        key.verify(signed.signature, signed.signed_bytes())
    except InvalidSignature:
        raise IntegrityError(f"The tree head at size {end} has an invalid signature.") from None
    if frontier.root() != signed.root or bytes(segment.root) != signed.root:
        raise IntegrityError(
            f"The archived segment ending at {end} does not match its signed tree head."
        )
    return frontier, signed.root


def _entry_rows(connection: Connection, *, with_root: bool = False) -> Any:
    """Every entry in sequence, streamed, with what verification checks."""
    columns = [
        audit_entries.c.seq,
        audit_entries.c.actor,
        audit_entries.c.action,
        audit_entries.c.outcome,
        audit_entries.c.entry,
        audit_entries.c.leaf_hash,
        audit_entries.c.root if with_root else literal(None).label("root"),
    ]
    return connection.execution_options(yield_per=10_000).execute(
        select(*columns).order_by(audit_entries.c.seq)
    )


def _count_heads(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(audit_heads)).scalar_one())


def _verify_everything(
    engine: Engine, key: Ed25519PublicKey, checkpoint: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The full pass: every stored root and every signed head, naming the first bad entry."""
    with engine.connect() as connection:
        frontier, archived_root = _start(connection, key)
        archived_end = frontier.size
        roots_at: dict[int, bytes] = {}
        if archived_root is not None:
            roots_at[archived_end] = archived_root
        heads = {
            row.size: _head_from_row(row)
            for row in connection.execute(select(audit_heads).order_by(audit_heads.c.size))
        }
        wanted = set(heads)
        if checkpoint is not None:
            wanted.add(int(checkpoint["size"]))
        result = _entry_rows(connection, with_root=True)
        for row in result:
            seq = frontier.size
            if row.seq != seq:
                raise IntegrityError(
                    f"Audit entry {seq} is missing (the next stored entry is {row.seq}): an "
                    "entry was deleted."
                )
            raw = bytes(row.entry)
            try:
                data = json.loads(raw)
            except ValueError:
                raise IntegrityError(
                    f"Audit entry {seq} is not valid JSON: it was edited."
                ) from None
            if data.get("seq") != seq:
                raise IntegrityError(
                    f"Audit entry {seq} holds the entry for seq {data.get('seq')}: entries "
                    "were reordered or inserted."
                )
            if (data.get("actor"), data.get("action"), data.get("outcome")) != (
                row.actor,
                row.action,
                row.outcome,
            ):
                raise IntegrityError(f"Audit entry {seq}: its columns disagree with its record.")
            leaf = merkle.leaf_hash(raw)
            if leaf != bytes(row.leaf_hash):
                raise IntegrityError(f"Audit entry {seq} was edited: its leaf hash does not match.")
            frontier.append(leaf)
            current = frontier.root()
            if current != bytes(row.root):
                raise IntegrityError(
                    f"Audit entry {seq}: the tree root after it does not match; the entry or "
                    "one before it was changed."
                )
            if frontier.size in wanted:
                roots_at[frontier.size] = current
        size = frontier.size
        state_size = connection.execute(
            select(audit_state.c.size).where(audit_state.c.id == 1)
        ).scalar_one()
    if state_size != size:
        change = "deleted" if size < state_size else "inserted"
        raise IntegrityError(
            f"The ledger state says {state_size} entries but {size} are stored: entries were "
            f"{change} at the end (first: {min(size, state_size)})."
        )
    previous = archived_end
    for head_size in sorted(heads):
        head = heads[head_size]
        if head_size < archived_end:
            try:
                key.verify(head.signature, head.signed_bytes())
            except InvalidSignature:
                raise IntegrityError(
                    f"The tree head at size {head_size} has an invalid signature."
                ) from None
            continue
        try:
            key.verify(head.signature, head.signed_bytes())
        except InvalidSignature:
            raise IntegrityError(
                f"The tree head at size {head_size} has an invalid signature: it was forged "
                "or signed with another key."
            ) from None
        if head_size > size:
            raise IntegrityError(
                f"A signed tree head covers {head_size} entries but only {size} are stored: "
                f"entries from {size} on were deleted."
            )
        if roots_at.get(head_size) != head.root:
            first = previous if head_size - previous > 1 else head_size - 1
            raise IntegrityError(
                f"Audit entries {previous}..{head_size - 1} do not match the signed tree head "
                f"at size {head_size}: entry {first} or one after it was rewritten."
            )
        previous = head_size
    if size and previous < size:
        raise IntegrityError(
            f"Audit entries {previous}..{size - 1} are not covered by any signed tree head: "
            "they were inserted."
        )
    report: dict[str, Any] = {"entries": size, "signed_heads": len(heads)}
    if checkpoint is not None:
        report["checkpoint"] = _verify_checkpoint(
            checkpoint, key, size, roots_at, _archived_heads(engine, checkpoint)
        )
    report["root"] = frontier.root().hex()
    return report


def _archived_heads(engine: Engine, checkpoint: Mapping[str, Any]) -> dict[int, bytes]:
    """Signed roots at the checkpoint's size, for a checkpoint older than the archive."""
    try:
        size = int(checkpoint["size"])
    except (KeyError, ValueError, TypeError):
        return {}
    with engine.connect() as connection:
        row = connection.execute(
            select(audit_heads.c.root).where(audit_heads.c.size == size)
        ).first()
    return {size: bytes(row.root)} if row is not None else {}


def _verify_checkpoint(
    checkpoint: Mapping[str, Any],
    key: Ed25519PublicKey,
    size: int,
    roots_at: dict[int, bytes],
    archived: Mapping[int, bytes] | None = None,
) -> dict[str, Any]:
    try:
        head = TreeHead(
            int(checkpoint["size"]),
            bytes.fromhex(checkpoint["root"]),
            datetime.fromisoformat(str(checkpoint["time"]).replace("Z", "+00:00")),
            str(checkpoint["key_id"]),
            base64.b64decode(checkpoint["signature"]),
        )
    except (KeyError, ValueError, TypeError):
        raise InputError(
            "The checkpoint file is not a Veil checkpoint.",
            hint="Create one with `veil audit checkpoint --out FILE`.",
        ) from None
    try:
        key.verify(head.signature, head.signed_bytes())
    except InvalidSignature:
        raise IntegrityError(
            "The checkpoint's signature does not verify with this ledger's key."
        ) from None
    if head.size > size:
        raise IntegrityError(
            f"The checkpoint covers {head.size} entries but the ledger has {size}: it was "
            f"truncated or rolled back (first missing entry: {size})."
        )
    # A checkpoint older than the newest archived segment is compared with the signed
    # head kept at its size (the entries themselves are in the archive).
    recomputed = roots_at.get(head.size, (archived or {}).get(head.size))
    if recomputed != head.root:
        raise IntegrityError(
            f"The first {head.size} entries no longer match the checkpoint: the ledger was "
            "rolled back or rewritten."
        )
    return {"size": head.size, "time": _timestamp(head.time), "consistent": True}
