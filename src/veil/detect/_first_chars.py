"""The characters a pattern's matches can start with, to let Python's ``re`` skip ahead.

``re`` tries a pattern at every position of the text. When a pattern starts with a
look-behind or ``\\b`` (most recognizers do), it cannot use its own fast scan for the
first character, and every position pays for the assertion and the first branch. A
look-ahead of the possible first characters, ``(?=[...])``, restores the fast skip.

It is only added when the set is computed exactly from CPython's own parse of the
pattern: every non-empty match starts with one of the characters, and a pattern that can
match the empty string, or starts with something the analysis does not know (``.``, a
negated class, a back-reference, a Unicode class), gets no look-ahead. So the compiled
pattern finds exactly the matches of the original (tested on every built-in recognizer).
"""

from __future__ import annotations

import importlib
import re
import string
from typing import Any

_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

# Sets this large save nothing over trying the pattern itself.
_MAX_CHARS = 40
_LEADING_FLAGS = re.compile(r"(?:\(\?[aiLmsux]+\))+")
_ASCII_CATEGORIES = {
    "CATEGORY_DIGIT": string.digits,
    "CATEGORY_WORD": string.ascii_letters + string.digits + "_",
    "CATEGORY_SPACE": " \t\n\r\f\v",
}


class _UnboundedError(Exception):
    """The first characters cannot be bounded."""


def with_first_chars(pattern: str, flags: int) -> str:
    """``pattern`` with a look-ahead of its first characters, or unchanged."""
    try:
        parsed = _parser.parse(pattern, flags)
        ascii_only = bool(parsed.state.flags & re.ASCII)
        chars, nullable = _sequence(list(parsed), ascii_only)
    except (_UnboundedError, re.error, RecursionError):
        return pattern
    # Letters outside ASCII are rare in most text: they do not count against the limit.
    if nullable or not chars or sum(c.isascii() for c in chars) > _MAX_CHARS:
        return pattern
    if parsed.state.flags & re.IGNORECASE:
        # Outside ASCII mode "k" also matches the Kelvin sign: only ASCII folding is known.
        if not ascii_only or not all(c.isascii() for c in chars):
            return pattern
        chars = {variant for c in chars for variant in (c.lower(), c.upper())}
        if sum(c.isascii() for c in chars) > _MAX_CHARS:
            return pattern
    lookahead = "(?=[" + "".join(re.escape(c) for c in sorted(chars)) + "])"
    flags_prefix = _LEADING_FLAGS.match(pattern)
    cut = flags_prefix.end() if flags_prefix else 0  # global flags must stay first
    return pattern[:cut] + lookahead + pattern[cut:]


def _sequence(items: list[Any], ascii_only: bool) -> tuple[set[str], bool]:
    """First characters of a sequence, and whether it can match the empty string."""
    chars: set[str] = set()
    for op, value in items:
        first, nullable = _item(op, value, ascii_only)
        chars |= first
        if not nullable:
            return chars, False
    return chars, True


def _item(op: Any, value: Any, ascii_only: bool) -> tuple[set[str], bool]:
    if op is _c.LITERAL:
        return {chr(value)}, False
    if op is _c.IN:
        return _charset(value, ascii_only), False
    if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
        return set(), True  # zero-width: the next item supplies the first character
    if op is _c.BRANCH:
        chars: set[str] = set()
        nullable = False
        for branch in value[1]:
            first, empty = _sequence(list(branch), ascii_only)
            chars |= first
            nullable = nullable or empty
        return chars, nullable
    if op is _c.SUBPATTERN:
        _group, add_flags, _del_flags, body = value
        if add_flags & (re.IGNORECASE | re.UNICODE):
            raise _UnboundedError
        return _sequence(list(body), ascii_only)
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
        low, _high, body = value
        first, nullable = _sequence(list(body), ascii_only)
        return first, nullable or low == 0
    if op is getattr(_c, "ATOMIC_GROUP", None):
        return _sequence(list(value), ascii_only)
    raise _UnboundedError  # ANY, NOT_LITERAL, GROUPREF, conditionals, ...


def _charset(items: list[Any], ascii_only: bool) -> set[str]:
    chars: set[str] = set()
    for op, value in items:
        if op is _c.LITERAL:
            chars.add(chr(value))
        elif op is _c.RANGE:
            low, high = value
            if high - low > 255:
                raise _UnboundedError
            chars.update(chr(code) for code in range(low, high + 1))
        elif op is _c.CATEGORY and ascii_only and str(value) in _ASCII_CATEGORIES:
            chars.update(_ASCII_CATEGORIES[str(value)])
        else:
            raise _UnboundedError  # NEGATE, Unicode or negated categories
    return chars
