"""Veil: a local-first privacy and security layer for applications that use AI models.

>>> import veil
>>> veil.redact("mail bob@example.com")
'mail [EMAIL]'

The names below load on first use (PEP 562), so ``import veil`` and tools that need
one corner of it (``veil encrypt``) do not pay for the detection engine or the database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veil._lazy import lazy_attribute

__version__ = "0.1.0"

if TYPE_CHECKING:
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

_HOMES = {
    "Ledger": "veil.audit",
    "open_ledger": "veil.audit",
    "Settings": "veil.config",
    "load_settings": "veil.config",
    "Detector": "veil.detect",
    "Finding": "veil.detect",
    "Level": "veil.detect",
    "VeilError": "veil.errors",
    "Policy": "veil.transform",
    "Pseudonymizer": "veil.transform",
    "Redactor": "veil.transform",
    "StreamRestorer": "veil.transform",
    "default_policy": "veil.transform",
    "load_policy": "veil.transform",
    "redact": "veil.transform",
}

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


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _HOMES, __name__, name)


def __dir__() -> list[str]:
    return __all__
