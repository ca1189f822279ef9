"""The audit ledger: tamper-evident, append-only, RFC 6962 Merkle tree, signed tree heads.

``veil.audit.merkle`` is the verifier: pure functions, no database, usable on their own.
"""

from __future__ import annotations

from veil.audit import merkle
from veil.audit._ledger import (
    Entry,
    Ledger,
    TreeHead,
    prove_archived,
    tree_head_message,
    verify_archive,
    verify_ledger,
)
from veil.config import Settings
from veil.detect import Detector


def open_ledger(settings: Settings, *, detector: Detector | None = None) -> Ledger:
    """The ledger on the configured database, signing with the configured root key."""
    from veil.keys import root_key_from_settings
    from veil.store import open_engine

    if detector is None:
        from veil.transform import shared_detector

        detector = shared_detector(settings)
    return Ledger(open_engine(settings), root_key_from_settings(settings), detector)


__all__ = [
    "Entry",
    "Ledger",
    "TreeHead",
    "merkle",
    "open_ledger",
    "prove_archived",
    "tree_head_message",
    "verify_archive",
    "verify_ledger",
]
