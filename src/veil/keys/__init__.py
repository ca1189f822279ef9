"""Keys: the root key and purpose-bound sealing (AES-256-GCM) that other modules use.

The root key comes from ``VEIL_MASTER_KEY`` (base64 of 32 bytes). :class:`KeyStore` keeps
random data keys per purpose and data subject, wrapped by the root key, with root-key
rotation and crypto-shredding; :class:`Vault` keeps provider keys sealed with them.
``purpose_key``/``seal``/``open_sealed`` derive keys from the root key with HKDF (used by
pseudonym maps, the hash/encrypt operators and the ledger; they move to data keys next).
"""

from __future__ import annotations

from veil.keys._root import RootKey, generate_root_key, root_key_from_settings
from veil.keys._sealing import open_sealed, purpose_key, seal
from veil.keys._store import KeyStore
from veil.keys._vault import Vault, VaultEntry, env_variable

__all__ = [
    "KeyStore",
    "RootKey",
    "Vault",
    "VaultEntry",
    "env_variable",
    "generate_root_key",
    "open_sealed",
    "purpose_key",
    "root_key_from_settings",
    "seal",
]
