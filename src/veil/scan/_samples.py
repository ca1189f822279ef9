"""Documentation and test values: personal-data look-alikes that are reserved for examples.

A repository's tests, fixtures and docs are full of ``alice@example.com``, ``555-0123``,
``127.0.0.1`` and ``4111 1111 1111 1111``. They are what ``veil scan`` itself tells people
to use instead of real data, so ``--pii`` does not report them: a finding a user cannot
fix by following its own advice is noise that hides the real ones. Secrets are never
filtered here (the engine's ``public_values`` cover published sample keys).
"""

from __future__ import annotations

import ipaddress
import re

# RFC 2606 and RFC 6761: second-level domains and top-level domains for examples.
_EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
_EXAMPLE_TLDS = ("example", "test", "invalid", "localhost")

# Card numbers the payment networks and processors publish for testing (Visa, Mastercard,
# American Express, Discover, Diners Club, JCB, UnionPay test numbers of Stripe, Adyen,
# Braintree and PayPal documentation). None of them can charge anything.
TEST_CARD_NUMBERS = frozenset(
    {
        "4111111111111111",
        "4242424242424242",
        "4012888888881881",
        "4000056655665556",
        "4000000000000002",
        "4222222222222",
        "5555555555554444",
        "5105105105105100",
        "5200828282828210",
        "2223003122003222",
        "378282246310005",
        "371449635398431",
        "378734493671000",
        "6011111111111117",
        "6011000990139424",
        "3056930009020004",
        "30569309025904",
        "38520000023237",
        "36227206271667",
        "3530111333300000",
        "3566002020360505",
        "6200000000000005",
    }
)

_NON_DIGITS = re.compile(r"\D")


def _digits(value: str) -> str:
    return _NON_DIGITS.sub("", value)


def _example_email(value: str) -> bool:
    domain = value.rpartition("@")[2].lower().rstrip(".")
    if domain.rpartition(".")[2] in _EXAMPLE_TLDS:
        return True
    return any(domain == name or domain.endswith("." + name) for name in _EXAMPLE_DOMAINS)


def _fictional_phone(value: str) -> bool:
    """North American 555-0100 to 555-0199: reserved for fiction and examples."""
    digits = _digits(value)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return len(digits) in (7, 10) and digits[-7:-2] == "55501"


def _not_a_public_address(value: str) -> bool:
    """Loopback, private (RFC 1918, ULA), link-local, documentation and other
    non-global addresses: configuration, not anybody's connection."""
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    return not address.is_global


def is_sample_value(kind: str, value: str) -> bool:
    """Whether ``value``, found as ``kind``, is reserved for documentation or tests."""
    if kind == "EMAIL":
        return _example_email(value)
    if kind == "PHONE":
        return _fictional_phone(value)
    if kind == "IP_ADDRESS":
        return _not_a_public_address(value)
    if kind == "CREDIT_CARD":
        return _digits(value) in TEST_CARD_NUMBERS
    return False
