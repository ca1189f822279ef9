"""Keys: the root key, data keys wrapped by it, and the secret vault.

The root key comes from ``VEIL_MASTER_KEY`` (base64 of 32 bytes) or from a passphrase
stretched with argon2id (``VEIL_PASSPHRASE``); ``veil init`` creates it. :class:`KeyStore`
keeps random data keys per purpose and data subject, stored only wrapped by the root key,
with root-key rotation and crypto-shredding; every other module seals through it
(``seal``/``open``) or takes key material from it (``material``). :class:`Vault` keeps
provider keys sealed with it.
"""

from __future__ import annotations

from veil.keys._root import (
    RootKey,
    create_passphrase_root_key,
    generate_root_key,
    passphrase_file,
    root_key_from_settings,
)
from veil.keys._store import KeyStore
from veil.keys._vault import Vault, VaultEntry, env_variable

__all__ = [
    "KeyStore",
    "RootKey",
    "Vault",
    "VaultEntry",
    "create_passphrase_root_key",
    "env_variable",
    "generate_root_key",
    "passphrase_file",
    "root_key_from_settings",
]
