"""The root key: 32 bytes from ``VEIL_MASTER_KEY``. Never generated silently."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from veil.config import Settings
from veil.errors import KeyMaterialError


class RootKey:
    """32 bytes of root key material; ``repr`` shows only a short key id."""

    __slots__ = ("_material", "key_id")

    def __init__(self, material: bytes) -> None:
        if len(material) != 32:
            raise KeyMaterialError(
                f"A root key must be 32 bytes; this one is {len(material)}.",
                hint="Generate one with `python -c 'import base64,os;"
                "print(base64.b64encode(os.urandom(32)).decode())'`.",
            )
        self._material = material
        # A key id lets errors and files name a key without revealing it.
        self.key_id = "rk-" + hashlib.sha256(b"veil-key-id\0" + material).hexdigest()[:12]

    @property
    def material(self) -> bytes:
        return self._material

    def __repr__(self) -> str:
        return f"RootKey(key_id={self.key_id!r})"


def generate_root_key() -> str:
    """A new root key, base64-encoded, for the user to store (``VEIL_MASTER_KEY``)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def root_key_from_settings(settings: Settings) -> RootKey:
    """The configured root key, or a :class:`KeyMaterialError` naming the sources tried."""
    if settings.master_key is None:
        raise KeyMaterialError(
            "No root key is configured (sources tried: VEIL_MASTER_KEY).",
            hint="Set VEIL_MASTER_KEY to base64 of 32 random bytes and keep it safe: "
            "everything Veil encrypts is lost without it.",
        )
    try:
        material = base64.b64decode(settings.master_key.get_secret_value(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyMaterialError(
            "VEIL_MASTER_KEY is not valid base64.",
            hint="It must be base64 of 32 random bytes.",
        ) from None
    return RootKey(material)
