"""Consistent, reversible pseudonyms within a scope, and their restoration in model output.

A value becomes a token ``<KIND_N>`` (``<EMAIL_1>``, ``<PERSON_2>``): the same value gets
the same token within the scope, tokens are self-delimiting, so a model can move, repeat
or decorate them (``<PERSON_1>'s``) and :meth:`Pseudonymizer.restore` still finds them.
The mapping is kept in memory and persisted only sealed (AES-256-GCM, see veil.keys).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable

from veil.detect import Finding
from veil.errors import InputError
from veil.keys import RootKey, open_sealed, seal

TOKEN = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d{1,9})>")
_PURPOSE = "pseudonym-map"


class Pseudonymizer:
    """One scope's mapping between values and tokens. Thread-safe."""

    def __init__(self, scope: str = "default") -> None:
        self.scope = scope
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_token: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()
        self._longest = 0
        self._reserved: set[str] = set()

    def __repr__(self) -> str:
        return f"Pseudonymizer(scope={self.scope!r}, tokens={len(self._by_token)})"

    def __len__(self) -> int:
        return len(self._by_token)

    @property
    def longest_token(self) -> int:
        return self._longest

    def reserve_literals(self, text: str) -> None:
        """Never hand out a token that ``text`` already contains literally, so restoring
        the transformed text leaves that literal alone."""
        if "<" not in text:
            return
        with self._lock:
            for match in TOKEN.finditer(text):
                if match.group(0) not in self._by_token:
                    self._reserved.add(match.group(0))

    def token_for(self, value: str, kind: str) -> str:
        key = (kind, value)
        with self._lock:
            token = self._by_value.get(key)
            if token is None:
                number = self._counters.get(kind, 0) + 1
                while f"<{kind}_{number}>" in self._reserved:
                    number += 1
                self._counters[kind] = number
                token = f"<{kind}_{number}>"
                self._by_value[key] = token
                self._by_token[token] = value
                self._longest = max(self._longest, len(token))
            return token

    def value_of(self, token: str) -> str | None:
        return self._by_token.get(token)

    def is_token_prefix(self, text: str) -> bool:
        """Whether ``text`` could grow into a known token (for streaming hold-back)."""
        return any(token.startswith(text) for token in self._by_token)

    def pseudonymize(self, text: str, findings: Iterable[Finding]) -> str:
        """``text`` with every finding replaced by its token (findings must not overlap)."""
        self.reserve_literals(text)
        parts: list[str] = []
        cursor = 0
        for finding in sorted(findings, key=lambda f: f.start):
            parts.append(text[cursor : finding.start])
            parts.append(self.token_for(text[finding.start : finding.end], finding.kind))
            cursor = finding.end
        parts.append(text[cursor:])
        return "".join(parts)

    def restore(self, text: str) -> str:
        """Original values back in place of every known token; unknown tokens stay."""
        if "<" not in text:
            return text

        def replace(match: re.Match[str]) -> str:
            value = self._by_token.get(match.group(0))
            return match.group(0) if value is None else value

        return TOKEN.sub(replace, text)

    # -- persistence -----------------------------------------------------------------

    def to_sealed(self, root: RootKey) -> bytes:
        with self._lock:
            payload = {
                "version": 1,
                "scope": self.scope,
                "entries": [
                    [kind, value, token] for (kind, value), token in self._by_value.items()
                ],
                "counters": self._counters,
            }
        return seal(root, _PURPOSE, json.dumps(payload).encode(), aad=self.scope.encode())

    @classmethod
    def from_sealed(cls, root: RootKey, blob: bytes, scope: str = "default") -> Pseudonymizer:
        data = json.loads(open_sealed(root, _PURPOSE, blob, aad=scope.encode()))
        if data.get("version") != 1:
            raise InputError("The pseudonym map has an unknown format version.")
        mapping = cls(scope)
        for kind, value, token in data["entries"]:
            mapping._by_value[(kind, value)] = token
            mapping._by_token[token] = value
            mapping._longest = max(mapping._longest, len(token))
        mapping._counters = {str(k): int(v) for k, v in data["counters"].items()}
        return mapping


class StreamRestorer:
    """Restores tokens in a stream whose chunks may split a token anywhere.

    ``feed`` returns what can be emitted now; it holds back only a tail that could still
    grow into a known token (at most the longest token's length). ``close`` flushes.
    The concatenated output equals ``restore`` of the whole text.
    """

    def __init__(self, pseudonymizer: Pseudonymizer) -> None:
        self._mapping = pseudonymizer
        self._pending = ""

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        cut = self._safe_cut(text)
        self._pending = text[cut:]
        return self._mapping.restore(text[:cut])

    def close(self) -> str:
        rest, self._pending = self._pending, ""
        return self._mapping.restore(rest)

    def _safe_cut(self, text: str) -> int:
        # Only a "<" within the last longest-token characters can start a split token.
        start = max(0, len(text) - self._mapping.longest_token)
        index = text.find("<", start)
        while index != -1:
            tail = text[index:]
            if ">" not in tail and self._mapping.is_token_prefix(tail):
                return index
            index = text.find("<", index + 1)
        return len(text)
