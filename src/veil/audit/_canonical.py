"""RFC 8785 (JSON Canonicalization Scheme) encoding of audit entries, fast.

For the values audit entries usually hold — objects whose keys are below U+D800, strings,
booleans, null and integers within ±(2**53 - 1), no floats — RFC 8785's output is exactly
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``: keys in code
point order equal UTF-16 order there, and both escape the same characters the same way.
Anything else (floats, astral-plane keys, lone surrogates) goes through the ``rfc8785``
package. A property test holds the two paths equal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import rfc8785

_MAX_SAFE = 2**53 - 1
_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The C encoder behind JSONEncoder.encode, built once with the same settings rather than
# on every call (half the time of encoding a small entry's details). No circular-reference
# markers: values reaching it passed _simple, which recursed through them already.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # None outside CPython
_c_encode: Callable[[Any, int], Iterable[str]] | None = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )
)


def _encode(value: Any) -> str:
    if _c_encode is None:
        return _encoder.encode(value)
    return "".join(_c_encode(value, 0))


def _simple(value: Any) -> bool:
    # Exact types first, with loops rather than generators: this runs for every audit
    # entry. Subclasses (a Counter, an IntEnum) take the general path below.
    if value is None or value is True or value is False:
        return True
    kind = type(value)
    if kind is str:
        return True
    if kind is int:
        return bool(-_MAX_SAFE <= value <= _MAX_SAFE)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or max(key) < "\ud800"):
                return _simple_any(value)
            if not _simple(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(_simple(item) for item in value)
    return _simple_any(value)


def _simple_any(value: Any) -> bool:
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE <= value <= _MAX_SAFE
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and (not key or max(key) < "\ud800") and _simple(item)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return all(_simple(item) for item in value)
    return False


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 encoding of ``value`` (raises what ``rfc8785.dumps`` raises)."""
    if _simple(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: RFC 8785 escapes it
    return rfc8785.dumps(value)
