"""The audit ledger: tamper-evident, append-only, RFC 6962 Merkle tree, signed tree heads.

``veil.audit.merkle`` is the verifier: pure functions, no database.
"""

from __future__ import annotations

from veil.audit import merkle

__all__ = ["merkle"]
