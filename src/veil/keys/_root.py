"""The root key: from ``VEIL_MASTER_KEY``, or a passphrase stretched with argon2id.

Never generated silently: ``veil init`` creates it and says where it went.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

from veil._files import write_atomically
from veil.config import Settings, check_private_file
from veil.errors import ConfigError, InputError, KeyMaterialError

ROOT_KEY_FILE = "root-key.json"
# OWASP's argon2id baseline is 19 MiB / 2 passes; Veil unlocks once per process, so it
# can afford more: 64 MiB, 3 passes, 2 lanes (~0.1 s on the 2-core dev machine).
ARGON2_PARAMETERS = {"time_cost": 3, "memory_cost": 65536, "parallelism": 2}
MIN_PASSPHRASE = 12


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


def _check_value(material: bytes) -> str:
    return hmac.new(material, b"veil-root-key-check-v1", hashlib.sha256).hexdigest()[:32]


def _derive(passphrase: str, record: dict[str, Any]) -> bytes:
    from argon2.low_level import Type, hash_secret_raw  # only passphrases need it

    return hash_secret_raw(
        passphrase.encode(),
        base64.b64decode(record["salt"]),
        time_cost=int(record["time_cost"]),
        memory_cost=int(record["memory_cost"]),
        parallelism=int(record["parallelism"]),
        hash_len=32,
        type=Type.ID,
    )


def passphrase_file(settings: Settings) -> Path:
    return settings.home / ROOT_KEY_FILE


def create_passphrase_root_key(settings: Settings, passphrase: str) -> RootKey:
    """Derive a root key from ``passphrase`` with a fresh salt; store salt, parameters and
    a check value (never the key) in ``VEIL_HOME/root-key.json``."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise InputError(f"The passphrase must be at least {MIN_PASSPHRASE} characters long.")
    path = passphrase_file(settings)
    if path.exists():
        raise ConfigError(f"{path} already exists; refusing to replace a root key.")
    record: dict[str, Any] = {
        "version": 1,
        "kdf": "argon2id",
        "salt": base64.b64encode(secrets.token_bytes(16)).decode(),
        **ARGON2_PARAMETERS,
    }
    key = RootKey(_derive(passphrase, record))
    record["key_id"] = key.key_id
    record["check"] = _check_value(key.material)
    write_atomically(path, (json.dumps(record, indent=2) + "\n").encode(), mode=0o600)
    return key


def _from_passphrase(settings: Settings, path: Path) -> RootKey:
    check_private_file(path, "root key file")
    if settings.passphrase is None:
        raise KeyMaterialError(
            f"The root key is protected by a passphrase ({path}) and VEIL_PASSPHRASE is not set.",
            hint="Set VEIL_PASSPHRASE in the environment of the process.",
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        material = _derive(settings.passphrase.get_secret_value(), record)
        expected = str(record["check"])
    except (OSError, ValueError, KeyError, TypeError, binascii.Error):
        raise KeyMaterialError(f"{path} is not a Veil root key file.") from None
    if not hmac.compare_digest(_check_value(material), expected):
        raise KeyMaterialError(
            f"Wrong passphrase for the root key in {path}.",
            hint="Check VEIL_PASSPHRASE.",
        )
    return RootKey(material)


KEYRING_FILE = "root-key.keyring"
KEYRING_SERVICE = "veil"
# Backends that would keep the key in a readable file, or nowhere at all.
_INSECURE_KEYRINGS = ("plaintext", "fail", "null")


def keyring_file(settings: Settings) -> Path:
    return settings.home / KEYRING_FILE


def _keyring_username(settings: Settings) -> str:
    # One entry per installation: the same user may run several VEIL_HOMEs.
    return "root-key:" + hashlib.sha256(str(settings.home).encode()).hexdigest()[:16]


def create_keyring_root_key(settings: Settings) -> RootKey:
    """A new random root key, stored in the OS keyring; ``VEIL_HOME`` keeps only a marker."""
    import keyring
    import keyring.errors

    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}".lower()
    if any(word in name for word in _INSECURE_KEYRINGS):
        raise ConfigError(
            f"The OS keyring backend here ({type(backend).__name__}) would not protect the key.",
            hint="Use a desktop keyring (Secret Service, macOS Keychain, Windows Credential "
            "Locker), or `veil init` / `--passphrase` / `--kms` instead.",
        )
    path = keyring_file(settings)
    if path.exists():
        raise ConfigError(f"{path} already exists; refusing to replace a root key.")
    key = RootKey(secrets.token_bytes(32))
    username = _keyring_username(settings)
    try:
        keyring.set_password(KEYRING_SERVICE, username, base64.b64encode(key.material).decode())
    except keyring.errors.KeyringError:
        raise ConfigError(
            "No usable OS keyring is available here (headless machines usually have none).",
            hint="Use `veil init`, `--passphrase` or `--kms` instead.",
        ) from None
    record = {"service": KEYRING_SERVICE, "username": username, "key_id": key.key_id}
    write_atomically(path, (json.dumps(record) + "\n").encode(), mode=0o600)
    return key


def _from_keyring(path: Path) -> RootKey:
    import keyring
    import keyring.errors

    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        stored = keyring.get_password(record["service"], record["username"])
    except keyring.errors.KeyringError:
        raise KeyMaterialError(
            "The root key is in the OS keyring, but no keyring is available here.",
            hint="Run Veil where the keyring of the user who ran `veil init --keyring` is.",
        ) from None
    except (OSError, ValueError, KeyError):
        raise KeyMaterialError(f"{path} is not a Veil keyring marker.") from None
    if stored is None:
        raise KeyMaterialError(
            f"The OS keyring has no root key for this installation ({record.get('key_id')}).",
            hint="Unlock the keyring of the user who ran `veil init --keyring`.",
        )
    return RootKey(base64.b64decode(stored))


KMS_FILE = "root-key.kms"
_KMS_CONTEXT = b"veil-root-key-v1"


def kms_file(settings: Settings) -> Path:
    return settings.home / KMS_FILE


def create_kms_root_key(settings: Settings) -> RootKey:
    """A new random root key, stored only wrapped by the configured KMS."""
    from veil.keys._kms import kms_from_url

    if settings.kms_url is None:
        raise ConfigError("VEIL_KMS_URL is not set.", hint="Set it, e.g. local:/secure/kek.")
    path = kms_file(settings)
    if path.exists():
        raise ConfigError(f"{path} already exists; refusing to replace a root key.")
    key = RootKey(secrets.token_bytes(32))
    wrapped = kms_from_url(settings.kms_url).wrap(key.material, _KMS_CONTEXT)
    write_atomically(path, wrapped, mode=0o600)
    return key


def _from_kms(settings: Settings, path: Path) -> RootKey:
    from veil.keys._kms import kms_from_url

    if settings.kms_url is None:
        raise KeyMaterialError(
            f"The root key is wrapped by a KMS ({path}) and VEIL_KMS_URL is not set.",
            hint="Set VEIL_KMS_URL to the service that wrapped it.",
        )
    check_private_file(path, "wrapped root key")
    return RootKey(kms_from_url(settings.kms_url).unwrap(path.read_bytes(), _KMS_CONTEXT))


def root_key_from_settings(settings: Settings) -> RootKey:
    """The configured root key, or a :class:`KeyMaterialError` naming the sources tried:
    ``VEIL_MASTER_KEY``, then the OS keyring, then a passphrase-protected key, then a
    KMS-wrapped key (the last three marked by files in ``VEIL_HOME``)."""
    if settings.master_key is not None:
        try:
            material = base64.b64decode(settings.master_key.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyMaterialError(
                "VEIL_MASTER_KEY is not valid base64.",
                hint="It must be base64 of 32 random bytes.",
            ) from None
        return RootKey(material)
    marker = keyring_file(settings)
    if marker.exists():
        return _from_keyring(marker)
    path = passphrase_file(settings)
    if path.exists():
        return _from_passphrase(settings, path)
    wrapped = kms_file(settings)
    if wrapped.exists():
        return _from_kms(settings, wrapped)
    raise KeyMaterialError(
        f"No root key is configured (sources tried: VEIL_MASTER_KEY, OS keyring marker "
        f"{marker}, passphrase file {path}, KMS-wrapped key {wrapped}).",
        hint="Run `veil init` to create one (or with --keyring / --passphrase / --kms).",
    )
