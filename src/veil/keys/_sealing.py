"""Purpose-bound authenticated encryption with AES-256-GCM from ``cryptography``.

Sealed format (bytes): ``b"VS1" ‖ key id (15 ascii) ‖ nonce (12) ‖ ciphertext+tag``. The
associated data binds the purpose, the key id and the caller's ``aad``, so a blob sealed
for one purpose or context does not open in another.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from veil.errors import IntegrityError, KeyMaterialError
from veil.keys._root import RootKey

_MAGIC = b"VS1"
_KEY_ID_LENGTH = 15


def purpose_key(root: RootKey, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose (``pseudonym-map``, ``hash``, ...) derived with HKDF-SHA-256."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=b"veil-purpose-key-v1",
        info=purpose.encode(),
    ).derive(root.material)


def _aad(purpose: str, key_id: str, aad: bytes) -> bytes:
    return b"veil\0" + purpose.encode() + b"\0" + key_id.encode() + b"\0" + aad


def seal(root: RootKey, purpose: str, plaintext: bytes, aad: bytes = b"") -> bytes:
    nonce = secrets.token_bytes(12)
    cipher = AESGCM(purpose_key(root, purpose))
    body = cipher.encrypt(nonce, plaintext, _aad(purpose, root.key_id, aad))
    return _MAGIC + root.key_id.encode() + nonce + body


def open_sealed(root: RootKey, purpose: str, blob: bytes, aad: bytes = b"") -> bytes:
    header = len(_MAGIC) + _KEY_ID_LENGTH
    if len(blob) < header + 12 + 16 or not blob.startswith(_MAGIC):
        raise IntegrityError(
            f"The sealed {purpose} data is truncated or not a Veil sealed blob.",
            hint="Restore it from a backup.",
        )
    key_id = blob[len(_MAGIC) : header].decode("ascii", errors="replace")
    if key_id != root.key_id:
        raise KeyMaterialError(
            f"The {purpose} data was sealed under key {key_id}, but the configured root key "
            f"is {root.key_id} (sources tried: VEIL_MASTER_KEY).",
            hint="Set VEIL_MASTER_KEY to the key that sealed it.",
        )
    nonce, body = blob[header : header + 12], blob[header + 12 :]
    try:
        return AESGCM(purpose_key(root, purpose)).decrypt(nonce, body, _aad(purpose, key_id, aad))
    except InvalidTag:
        raise IntegrityError(
            f"The sealed {purpose} data failed authentication: it was altered or belongs "
            "to another context.",
            hint="Restore it from a backup.",
        ) from None
