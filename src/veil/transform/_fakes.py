"""Realistic, format-preserving stand-ins for pseudonymized values.

Fakes come from reserved or fictional ranges where one exists (``example.net`` mail,
``555`` phone numbers, the documentation IP blocks of RFC 5737 / RFC 3849, a test card
range), so a fake never names a real person or system. Kinds without a realistic form
keep ``<KIND_N>`` tokens.
"""

from __future__ import annotations

import ipaddress

_FIRST = [
    "Alex", "Jordan", "Taylor", "Casey", "Riley", "Morgan", "Jamie", "Avery", "Quinn",
    "Rowan", "Emerson", "Finley", "Hayden", "Kendall", "Logan", "Parker", "Reese", "Sage",
]  # fmt: skip
_LAST = [
    "Morgan", "Lee", "Rivera", "Chen", "Patel", "Novak", "Brooks", "Keller", "Haas",
    "Moreau", "Silva", "Okafor", "Lindqvist", "Tanaka", "Kowalski", "Dubois", "Reyes",
]  # fmt: skip


def _luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def _reshape(template: str, digits: str) -> str:
    """``digits`` laid out in ``template``'s shape (its separators kept in place)."""
    out, source = [], iter(digits)
    for char in template:
        out.append(next(source, "0") if char.isdigit() else char)
    return "".join(out)


# How many distinct fakes a kind has before they would repeat: the documentation IPv4
# blocks hold 3 x 254 addresses, fake phone numbers vary in their last four digits, card
# numbers in six. Past that a value gets a ``<KIND_N>`` token (a repeated fake would name
# two values, and asking for the next one would never end).
IPV4_FAKES = 3 * 254
PHONE_FAKES = 10_000
CARD_FAKES = 1_000_000


def make_fake(value: str, kind: str, n: int) -> str | None:
    """The ``n``-th fake (n >= 1) for ``value`` of ``kind``, or ``None`` (use a token):
    no realistic form for the kind, or its ``n``-th fake would repeat an earlier one."""
    if kind == "EMAIL":
        first, last = _FIRST[n % len(_FIRST)], _LAST[(n // len(_FIRST)) % len(_LAST)]
        return f"{first.lower()}.{last.lower()}{n}@example.net"
    if kind == "PERSON":
        first = _FIRST[(n - 1) % len(_FIRST)]
        if " " not in value.strip():
            return first if n <= len(_FIRST) else f"{first}{n}"
        last = _LAST[((n - 1) // len(_FIRST)) % len(_LAST)]
        suffix = "" if n <= len(_FIRST) * len(_LAST) else f" {n}"
        return f"{first} {last}{suffix}"
    if kind == "PHONE":
        count = sum(ch.isdigit() for ch in value)
        if count < 7 or n > PHONE_FAKES:
            return None
        return _reshape(value, "5" * (count - 4) + f"{n % PHONE_FAKES:04d}")
    if kind == "CREDIT_CARD":
        if n > CARD_FAKES:
            return None
        count = sum(ch.isdigit() for ch in value)
        body = ("4000" + "0" * 20)[: count - 1 - 6] + f"{n % CARD_FAKES:06d}"
        return _reshape(value, body + _luhn_digit(body))
    if kind == "IP_ADDRESS":
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return None
        if address.version == 6:
            return str(ipaddress.ip_address(int(ipaddress.ip_address("2001:db8::")) + n))
        if n > IPV4_FAKES:
            return None
        blocks = ("192.0.2", "198.51.100", "203.0.113")
        return f"{blocks[(n - 1) // 254 % 3]}.{(n - 1) % 254 + 1}"
    return None
