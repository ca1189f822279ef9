"""Keys: the root key and purpose-bound sealing (AES-256-GCM) that other modules use.

This is the first slice of the key store: the root key comes from ``VEIL_MASTER_KEY``
(base64 of 32 bytes); purpose keys are derived from it with HKDF-SHA-256, so data sealed
for one purpose cannot be opened as another. ``seal``/``open_sealed`` are the API the
other modules use; the OS keyring, passphrase (argon2id) and wrapped data keys come next.
"""

from __future__ import annotations

from veil.keys._root import RootKey, generate_root_key, root_key_from_settings
from veil.keys._sealing import open_sealed, purpose_key, seal

__all__ = [
    "RootKey",
    "generate_root_key",
    "open_sealed",
    "purpose_key",
    "root_key_from_settings",
    "seal",
]
