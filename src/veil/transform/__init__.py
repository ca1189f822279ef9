"""Transformation: operators, policies, pseudonymization and restoration.

Public API: :class:`Redactor`, :func:`redact`, :class:`Policy`, :func:`load_policy`,
:func:`default_policy`, :class:`PolicyStore` (named policies in ``$VEIL_HOME``),
:class:`Pseudonymizer`, :class:`StreamRestorer`.
"""

from __future__ import annotations

from veil.transform._operators import decrypt_tokens, mask_value
from veil.transform._policy import (
    Policy,
    Rule,
    default_policy,
    default_policy_text,
    load_policy,
    parse_policy,
)
from veil.transform._policy_store import DEFAULT_POLICY, PolicyStore, StoredPolicy
from veil.transform._pseudonymizer import (
    TOKEN,
    Pseudonymizer,
    StreamRestorer,
    json_string_body,
)
from veil.transform._redactor import Redaction, Redactor, redact, shared_detector

__all__ = [
    "DEFAULT_POLICY",
    "TOKEN",
    "Policy",
    "PolicyStore",
    "Pseudonymizer",
    "Redaction",
    "Redactor",
    "Rule",
    "StoredPolicy",
    "StreamRestorer",
    "decrypt_tokens",
    "default_policy",
    "default_policy_text",
    "json_string_body",
    "load_policy",
    "mask_value",
    "parse_policy",
    "redact",
    "shared_detector",
]
