"""Data keys wrapped by the root key, and sealing with them.

Each purpose (``vault``, ``subject``...) and data subject has its own random 256-bit data
key. The database holds it only wrapped: AES-256-GCM under the root key, with associated
data binding the purpose, the subject, the key id and the root key id, so a wrapped key
copied onto another row does not unwrap. Rotating the root key re-wraps data keys without
touching data; shredding a subject destroys its key, after which everything sealed for
that subject — backups included — stays unreadable.

Sealed format: ``b"VK1" ‖ key id (ascii, 2-byte length prefix) ‖ nonce (12) ‖
ciphertext+tag``; the associated data binds purpose, key id and the caller's ``aad``.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError

from veil.errors import IntegrityError, KeyMaterialError, KeyShreddedError
from veil.keys._root import RootKey
from veil.store import SQLITE_BEGIN_OPTION, data_keys

_MAGIC = b"VK1"
_KEY_ID = re.compile(r"dk-[0-9a-f]{20}")


def _wrap_aad(purpose: str, subject: str, key_id: str, root_key_id: str) -> bytes:
    return "\0".join(("veil-data-key-v1", purpose, subject, key_id, root_key_id)).encode()


def _seal_aad(purpose: str, key_id: str, aad: bytes) -> bytes:
    return b"veil-sealed-v1\0" + purpose.encode() + b"\0" + key_id.encode() + b"\0" + aad


def _parse_sealed(purpose: str, blob: bytes) -> tuple[str, bytes, bytes]:
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 2 + 12 + 16:
        raise IntegrityError(f"The sealed {purpose} data is truncated or not Veil's.")
    length = int.from_bytes(blob[3:5], "big")
    key_id = blob[5 : 5 + length].decode("ascii", errors="replace")
    return key_id, blob[5 + length : 17 + length], blob[17 + length :]


def is_sealed_blob(blob: bytes) -> bool:
    """Whether ``blob`` has the shape of what :meth:`KeyStore.seal` returns (magic, a data
    key id, nonce and tag): ciphertext, nothing a content scan could find in it."""
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + 2 + 12 + 16:
        return False
    length = int.from_bytes(blob[3:5], "big")
    return (
        len(blob) >= 5 + length + 12 + 16
        and _KEY_ID.fullmatch(blob[5 : 5 + length].decode("ascii", errors="replace")) is not None
    )


def _seal_with(purpose: str, key_id: str, key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    body = AESGCM(key).encrypt(nonce, plaintext, _seal_aad(purpose, key_id, aad))
    encoded = key_id.encode()
    return _MAGIC + len(encoded).to_bytes(2, "big") + encoded + nonce + body


def _open_with(
    purpose: str, key_id: str, key: bytes, nonce: bytes, body: bytes, aad: bytes
) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, body, _seal_aad(purpose, key_id, aad))
    except InvalidTag:
        raise IntegrityError(
            f"The sealed {purpose} data failed authentication: it was altered or "
            "belongs to another context.",
        ) from None


class KeyStore:
    """Data keys in the database, usable only with the root key."""

    def __init__(self, engine: Engine, root: RootKey) -> None:
        self._engine = engine
        self._root = root

    def __repr__(self) -> str:
        return f"KeyStore(root={self._root.key_id!r})"

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- data keys -----------------------------------------------------------------

    def _unwrap(self, row: Row[Any]) -> bytes:
        key_id = str(row.key_id)
        if row.wrapped is None:
            raise KeyShreddedError(
                f"Data key {key_id} was shredded: what it sealed can no longer be read.",
            )
        if row.root_key_id != self._root.key_id:
            raise KeyMaterialError(
                f"Data key {key_id} is wrapped by root key {row.root_key_id}, but the "
                f"configured root key is {self._root.key_id} (sources tried: VEIL_MASTER_KEY).",
                hint="Configure the root key it was wrapped with, or finish `veil keys rotate`.",
            )
        blob = bytes(row.wrapped)
        aad = _wrap_aad(row.purpose, row.subject, key_id, self._root.key_id)
        try:
            return AESGCM(self._root.material).decrypt(blob[:12], blob[12:], aad)
        except InvalidTag:
            raise IntegrityError(
                f"Data key {key_id} does not unwrap: its record was altered or moved.",
                hint="Restore the data_keys table from a backup.",
            ) from None

    def data_key(self, purpose: str, subject: str = "") -> tuple[str, bytes]:
        """The active key of ``purpose`` (and ``subject``), created on first use."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(data_keys).where(
                    data_keys.c.purpose == purpose, data_keys.c.subject == subject
                )
            ).first()
        if row is not None:
            return str(row.key_id), self._unwrap(row)
        key_id = "dk-" + uuid.uuid4().hex[:20]
        material = secrets.token_bytes(32)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + AESGCM(self._root.material).encrypt(
            nonce, material, _wrap_aad(purpose, subject, key_id, self._root.key_id)
        )
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(data_keys).values(
                        key_id=key_id,
                        purpose=purpose,
                        subject=subject,
                        wrapped=wrapped,
                        root_key_id=self._root.key_id,
                        created_at=datetime.now(UTC),
                    )
                )
        except DatabaseIntegrityError:  # another process created it first: use theirs
            return self.data_key(purpose, subject)
        return key_id, material

    def material(self, purpose: str, length: int = 32) -> bytes:
        """Key material of ``length`` bytes for ``purpose`` (a signing seed, an HMAC or
        AES-SIV key), from the purpose's data key — so it survives root-key rotation."""
        _, key = self.data_key(purpose)
        if length == len(key):
            return key
        return HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=b"veil-material-v1",
            info=purpose.encode(),
        ).derive(key)

    def key_by_id(self, key_id: str) -> bytes:
        """The data key ``key_id`` (for formats that name their key)."""
        return self._key_by_id(key_id)

    def _key_by_id(self, key_id: str) -> bytes:
        with self._engine.connect() as connection:
            row = connection.execute(select(data_keys).where(data_keys.c.key_id == key_id)).first()
        if row is None:
            raise KeyMaterialError(
                f"Data key {key_id} is not in this key store.",
                hint="Point VEIL_DATABASE_URL at the database that sealed the data.",
            )
        return self._unwrap(row)

    # -- sealing -------------------------------------------------------------------

    def seal(self, purpose: str, plaintext: bytes, aad: bytes = b"", subject: str = "") -> bytes:
        key_id, key = self.data_key(purpose, subject)
        return _seal_with(purpose, key_id, key, plaintext, aad)

    def open(self, purpose: str, blob: bytes, aad: bytes = b"") -> bytes:
        key_id, nonce, body = _parse_sealed(purpose, blob)
        return _open_with(purpose, key_id, self._key_by_id(key_id), nonce, body, aad)

    def reencrypt(
        self,
        purpose: str,
        reseal: Callable[[Connection, Callable[[bytes, bytes], bytes]], int],
    ) -> tuple[str, str, int]:
        """Move ``purpose``'s data to a fresh data key, in one transaction.

        ``reseal(connection, convert)`` rewrites every blob of the purpose inside the
        transaction, ``convert(blob, aad)`` giving the blob sealed under the new key. The
        old key is destroyed in the same transaction; a crash leaves everything as it was.
        Returns (old key id, new key id, blobs converted).
        """
        old_id, old_key = self.data_key(purpose)
        new_id = "dk-" + uuid.uuid4().hex[:20]
        new_key = secrets.token_bytes(32)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + AESGCM(self._root.material).encrypt(
            nonce, new_key, _wrap_aad(purpose, "", new_id, self._root.key_id)
        )

        def convert(blob: bytes, aad: bytes) -> bytes:
            key_id, blob_nonce, body = _parse_sealed(purpose, blob)
            if key_id != old_id:
                raise KeyMaterialError(f"A {purpose} blob is sealed under {key_id}, not {old_id}.")
            plain = _open_with(purpose, key_id, old_key, blob_nonce, body, aad)
            return _seal_with(purpose, new_id, new_key, plain, aad)

        with self._engine.connect() as connection:
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            with connection.begin():
                connection.execute(
                    update(data_keys)
                    .where(data_keys.c.key_id == old_id)
                    .values(
                        purpose=f"{purpose}#retired-{old_id}",
                        wrapped=None,
                        destroyed_at=datetime.now(UTC),
                    )
                )
                connection.execute(
                    insert(data_keys).values(
                        key_id=new_id,
                        purpose=purpose,
                        subject="",
                        wrapped=wrapped,
                        root_key_id=self._root.key_id,
                        created_at=datetime.now(UTC),
                    )
                )
                count = reseal(connection, convert)
        return old_id, new_id, count

    # -- rotation and shredding ------------------------------------------------------

    def rotate_root(self, new_root: RootKey) -> int:
        """Re-wrap every live data key under ``new_root`` in one transaction; the data
        sealed with them is untouched. Returns how many keys were re-wrapped. Safe to run
        again after a crash: keys already under the new root are skipped."""
        if new_root.key_id == self._root.key_id:
            return 0
        count = 0
        with self._engine.connect() as connection:
            connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            with connection.begin():
                rows = connection.execute(
                    select(data_keys).where(
                        data_keys.c.wrapped.is_not(None),
                        data_keys.c.root_key_id == self._root.key_id,
                    )
                ).all()
                for row in rows:
                    material = self._unwrap(row)
                    nonce = secrets.token_bytes(12)
                    wrapped = nonce + AESGCM(new_root.material).encrypt(
                        nonce,
                        material,
                        _wrap_aad(row.purpose, row.subject, row.key_id, new_root.key_id),
                    )
                    connection.execute(
                        update(data_keys)
                        .where(data_keys.c.key_id == row.key_id)
                        .values(wrapped=wrapped, root_key_id=new_root.key_id)
                    )
                    count += 1
        self._root = new_root
        return count

    def references(self, root_key_id: str) -> int:
        """How many live data keys are still wrapped by ``root_key_id``."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(data_keys.c.key_id).where(
                    data_keys.c.wrapped.is_not(None), data_keys.c.root_key_id == root_key_id
                )
            ).all()
        return len(rows)

    def shred(self, subject: str) -> int:
        """Destroy every data key of ``subject``; returns how many were destroyed.

        The destroyed keys' rows stay (renamed out of their purpose), so data sealed for
        the subject later gets a fresh key and what the old ones sealed stays unreadable.
        """
        if not subject:
            raise KeyMaterialError("Only a data subject's keys can be shredded.")
        with self._engine.begin() as connection:
            result = connection.execute(
                update(data_keys)
                .where(data_keys.c.subject == subject, data_keys.c.wrapped.is_not(None))
                .values(
                    purpose=data_keys.c.purpose + "#shredded-" + data_keys.c.key_id,
                    wrapped=None,
                    destroyed_at=datetime.now(UTC),
                )
            )
        return int(result.rowcount or 0)
