"""Keys: the root key, data keys wrapped by it, and the secret vault.

The root key comes from ``VEIL_MASTER_KEY`` (base64 of 32 bytes), the OS keyring, a
passphrase stretched with argon2id (``VEIL_PASSPHRASE``) or a key-management service
(``VEIL_KMS_URL``); ``veil init`` creates it. :class:`KeyStore`
keeps random data keys per purpose and data subject, stored only wrapped by the root key,
with root-key rotation and crypto-shredding; every other module seals through it
(``seal``/``open``) or takes key material from it (``material``). :class:`Vault` keeps
provider keys sealed with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veil._lazy import lazy_attribute

if TYPE_CHECKING:
    from veil.keys._kms import KeyManagementService, LocalKms, kms_from_url
    from veil.keys._root import (
        RootKey,
        create_keyring_root_key,
        create_kms_root_key,
        create_passphrase_root_key,
        generate_root_key,
        keyring_file,
        kms_file,
        passphrase_file,
        root_key_from_settings,
    )
    from veil.keys._store import KeyStore, is_sealed_blob
    from veil.keys._vault import Vault, VaultEntry, env_variable

_HOMES = {
    "KeyManagementService": "veil.keys._kms",
    "LocalKms": "veil.keys._kms",
    "kms_from_url": "veil.keys._kms",
    "RootKey": "veil.keys._root",
    "create_keyring_root_key": "veil.keys._root",
    "create_kms_root_key": "veil.keys._root",
    "create_passphrase_root_key": "veil.keys._root",
    "generate_root_key": "veil.keys._root",
    "keyring_file": "veil.keys._root",
    "kms_file": "veil.keys._root",
    "passphrase_file": "veil.keys._root",
    "root_key_from_settings": "veil.keys._root",
    "KeyStore": "veil.keys._store",
    "is_sealed_blob": "veil.keys._store",
    "Vault": "veil.keys._vault",
    "VaultEntry": "veil.keys._vault",
    "env_variable": "veil.keys._vault",
}

__all__ = [
    "KeyManagementService",
    "KeyStore",
    "LocalKms",
    "RootKey",
    "Vault",
    "VaultEntry",
    "create_keyring_root_key",
    "create_kms_root_key",
    "create_passphrase_root_key",
    "env_variable",
    "generate_root_key",
    "is_sealed_blob",
    "keyring_file",
    "kms_file",
    "kms_from_url",
    "passphrase_file",
    "root_key_from_settings",
]


def __getattr__(name: str) -> Any:
    # Loaded on first use: ``veil.keys._sealed`` alone must not pull in the database.
    return lazy_attribute(globals(), _HOMES, __name__, name)
