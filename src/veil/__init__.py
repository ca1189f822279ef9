"""Veil: a local-first privacy and security layer for applications that use AI models.

>>> import veil
>>> veil.redact("mail bob@example.com")
'mail [EMAIL]'
"""

from __future__ import annotations

__version__ = "0.1.0"

from veil.audit import Ledger, open_ledger
from veil.config import Settings, load_settings
from veil.detect import Detector, Finding, Level
from veil.errors import VeilError
from veil.transform import (
    Policy,
    Pseudonymizer,
    Redactor,
    StreamRestorer,
    default_policy,
    load_policy,
    redact,
)

__all__ = [
    "Detector",
    "Finding",
    "Ledger",
    "Level",
    "Policy",
    "Pseudonymizer",
    "Redactor",
    "Settings",
    "StreamRestorer",
    "VeilError",
    "__version__",
    "default_policy",
    "load_policy",
    "load_settings",
    "open_ledger",
    "redact",
]
