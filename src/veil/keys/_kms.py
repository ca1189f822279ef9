"""Key-management services: where the root key can be kept wrapped by an external key.

A :class:`KeyManagementService` wraps and unwraps small secrets under a key that never
leaves it (a cloud KMS, an HSM, Azure Key Vault). Veil stores the root key only wrapped
(``VEIL_HOME/root-key.kms``) and asks the service to unwrap it at start-up.
``VEIL_KMS_URL`` names the service: ``local:/path/to/kek`` is the built-in implementation
(a 32-byte key file, mode 0600); other schemes are looked up among installed plugins
(entry-point group ``veil.kms``: a factory taking the URL, returning the service).
"""

from __future__ import annotations

import secrets
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from veil._files import write_atomically
from veil.config import check_private_file
from veil.errors import ConfigError, IntegrityError, KeyMaterialError


@runtime_checkable
class KeyManagementService(Protocol):
    """Wrap and unwrap small secrets under a key held by the service."""

    name: str

    def wrap(self, plaintext: bytes, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes: ...


class LocalKms:
    """The built-in service: a key-encryption key in a local file (AES-256-GCM).

    Useful on one host, in tests, and as the model for plugins; the key file belongs on a
    different disk or mount than the database it protects.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"local:{path}"

    def __repr__(self) -> str:
        return f"LocalKms(path={str(self.path)!r})"

    def _key(self, *, create: bool) -> bytes:
        if not self.path.exists():
            if not create:
                raise KeyMaterialError(
                    f"The local KMS key file {self.path} does not exist.",
                    hint="Restore it, or point VEIL_KMS_URL at the right file.",
                )
            write_atomically(self.path, secrets.token_bytes(32), mode=0o600)
        check_private_file(self.path, "KMS key file")
        key = self.path.read_bytes()
        if len(key) != 32:
            raise KeyMaterialError(f"The local KMS key file {self.path} is not a 32-byte key.")
        return key

    def wrap(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + AESGCM(self._key(create=True)).encrypt(nonce, plaintext, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        try:
            return AESGCM(self._key(create=False)).decrypt(blob[:12], blob[12:], context)
        except InvalidTag:
            raise IntegrityError(
                "The wrapped root key does not unwrap with this KMS key: it was altered or "
                "wrapped by another key."
            ) from None


def kms_from_url(url: str) -> KeyManagementService:
    scheme, _, rest = url.partition(":")
    if scheme == "local":
        if not rest:
            raise ConfigError("VEIL_KMS_URL=local: needs a path: local:/secure/kek")
        return LocalKms(Path(rest).expanduser())
    for entry in entry_points(group="veil.kms"):
        if entry.name == scheme:
            service = entry.load()(url)
            if not isinstance(service, KeyManagementService):
                raise ConfigError(f"The KMS plugin {scheme!r} did not return a KMS service.")
            return service
    raise ConfigError(
        f"VEIL_KMS_URL uses the unknown scheme {scheme!r}.",
        hint="Use local:/path/to/key, or install the plugin that provides it.",
    )
