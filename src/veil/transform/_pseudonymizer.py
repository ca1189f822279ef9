"""Consistent, reversible pseudonyms within a scope, and their restoration in model output.

A value becomes a token ``<KIND_N>`` (``<EMAIL_1>``, ``<PERSON_2>``): the same value gets
the same token within the scope, tokens are self-delimiting, so a model can move, repeat
or decorate them (``<PERSON_1>'s``) and :meth:`Pseudonymizer.restore` still finds them.
With ``style="realistic"``, e-mail addresses, names, phone and card numbers and IP
addresses get format-preserving fakes instead (``alex.lee3@example.net``), restored
where they appear as whole words.
The mapping is kept in memory and persisted only sealed (a KeyStore data key).
"""

from __future__ import annotations

import bisect
import json
import re
import threading
from typing import Any

from veil.detect import Finding
from veil.errors import InputError
from veil.keys import KeyStore
from veil.transform._fakes import make_fake
from veil.transform._literals_index import LiteralIndex

TOKEN = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d{1,9})>")
_PURPOSE = "pseudonym-map"


def _joins(char: str) -> bool:
    return char.isalnum() or char in "_@+-"


def stands_alone(text: str, findings: list[Finding], index: int) -> bool:
    """Whether ``findings[index]`` (sorted, non-overlapping) is a whole word in ``text``:
    no letter, digit or joining character, and no other finding, right next to it."""
    finding = findings[index]
    if finding.start > 0:
        if _joins(text[finding.start - 1]):
            return False
        if index > 0 and findings[index - 1].end >= finding.start:
            return False
    if finding.end < len(text):
        if _joins(text[finding.end]):
            return False
        if index + 1 < len(findings) and findings[index + 1].start <= finding.end:
            return False
    return True


def _trie_pattern(words: list[str]) -> str:
    """A regex matching exactly ``words``, factored by common prefixes; where one word is a
    prefix of another, the longer is tried first (then the shorter, if what follows fails)."""
    trie: dict[str, dict[str, Any]] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def build(node: dict[str, dict[str, Any]]) -> str:
        branches = [re.escape(char) + build(child) for char, child in node.items() if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


class Pseudonymizer:
    """One scope's mapping between values and tokens. Thread-safe."""

    def __init__(self, scope: str = "default", *, style: str = "token") -> None:
        if style not in ("token", "realistic"):
            raise InputError("Pseudonym style must be 'token' or 'realistic'.")
        self.scope = scope
        self.style = style
        self._fake_pattern: re.Pattern[str] | None = None
        self._sorted_tokens: list[str] | None = None  # for prefix questions; None: stale
        self._any_fake = False
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

    def token_for(
        self, value: str, kind: str, *, avoid: str | LiteralIndex = "", whole_word: bool = True
    ) -> str:
        """The pseudonym of ``value``; a new one never occurs literally in ``avoid`` (a
        text, or a :class:`LiteralIndex` of one when many values of a long text are asked).

        ``whole_word=False`` (the value touches a letter, digit or another value) always
        gives a self-delimiting token: a fake there could not be found again.
        """
        key = (kind, value)
        with self._lock:
            token = self._by_value.get(key)
            if token is not None and not whole_word and not token.startswith("<"):
                # This occurrence needs a token, not the value's fake.
                key = (kind + "\0token", value)
                token = self._by_value.get(key)
            if token is None:
                number = self._counters.get(kind, 0)
                while True:
                    number += 1
                    fake = (
                        make_fake(value, kind, number)
                        if self.style == "realistic" and whole_word
                        else None
                    )
                    token = fake if fake is not None else f"<{kind}_{number}>"
                    if (
                        token not in self._reserved
                        and token not in self._by_token
                        and (fake is None or fake not in avoid)
                    ):
                        break
                self._counters[kind] = number
                if fake is not None:
                    self._fake_pattern = None
                    self._any_fake = True
                self._by_value[key] = token
                self._by_token[token] = value
                self._longest = max(self._longest, len(token))
                self._sorted_tokens = None
            return token

    def value_of(self, token: str) -> str | None:
        return self._by_token.get(token)

    def is_token_prefix(self, text: str) -> bool:
        """Whether ``text`` could grow into a known token (for streaming hold-back)."""
        # A bisection in the sorted tokens, not a scan: a stream asks this for every
        # chunk, and a long conversation's mapping holds thousands of tokens.
        tokens = self._sorted_tokens
        if tokens is None:
            with self._lock:
                tokens = self._sorted_tokens = sorted(self._by_token)
        index = bisect.bisect_left(tokens, text)
        return index < len(tokens) and tokens[index].startswith(text)

    @property
    def has_fakes(self) -> bool:
        return self.style == "realistic" and self._any_fake

    def _fakes_regex(self) -> re.Pattern[str] | None:
        if self._fake_pattern is None:
            fakes = sorted(
                (t for t in self._by_token if not t.startswith("<")), key=len, reverse=True
            )
            if not fakes:
                return None
            # One trie of the fakes, not an alternation of thousands: at each position the
            # regex follows one branch instead of trying every fake (restoring a long
            # conversation was O(text x fakes)). Whole words only: 198.51.100.1 must not
            # match inside 198.51.100.12.
            self._fake_pattern = re.compile(rf"(?<![\w@+-])(?:{_trie_pattern(fakes)})(?![\w@-])")
        return self._fake_pattern

    def restore(self, text: str, *, before: str = "") -> str:
        """Original values back in place of every known token; unknown tokens stay.

        ``before`` is the text that preceded ``text`` (one character is enough): whole-word
        matching of realistic fakes looks at it.
        """

        def replace(match: re.Match[str]) -> str:
            value = self._by_token.get(match.group(0))
            return match.group(0) if value is None else value

        restored = TOKEN.sub(replace, text) if "<" in text else text
        pattern = self._fakes_regex() if self.style == "realistic" else None
        if pattern is None:
            return restored
        if not before:
            return pattern.sub(replace, restored)
        return pattern.sub(replace, before[-1] + restored)[1:]

    # -- persistence -----------------------------------------------------------------

    def to_sealed(self, keys: KeyStore) -> bytes:
        with self._lock:
            payload = {
                "version": 1,
                "scope": self.scope,
                "style": self.style,
                "entries": [
                    [kind, value, token] for (kind, value), token in self._by_value.items()
                ],
                "counters": self._counters,
            }
        return keys.seal(_PURPOSE, json.dumps(payload).encode(), aad=self.scope.encode())

    @classmethod
    def from_sealed(cls, keys: KeyStore, blob: bytes, scope: str = "default") -> Pseudonymizer:
        data = json.loads(keys.open(_PURPOSE, blob, aad=scope.encode()))
        if data.get("version") != 1:
            raise InputError("The pseudonym map has an unknown format version.")
        mapping = cls(scope, style=str(data.get("style", "token")))
        for kind, value, token in data["entries"]:
            mapping._by_value[(kind, value)] = token
            mapping._by_token[token] = value
            mapping._any_fake = mapping._any_fake or not token.startswith("<")
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
        self._before = ""  # the last input character already emitted

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        cut = self._safe_cut(text)
        self._pending = text[cut:]
        return self._emit(text[:cut])

    def close(self) -> str:
        rest, self._pending = self._pending, ""
        return self._emit(rest)

    def _emit(self, piece: str) -> str:
        restored = self._mapping.restore(piece, before=self._before)
        if piece:
            self._before = piece[-1]
        return restored

    def _safe_cut(self, text: str) -> int:
        if self._mapping.has_fakes:
            # A fake can start anywhere: hold back the longest tail that could still be
            # (or, awaiting its next character, end) a known fake or token.
            for start in range(max(0, len(text) - self._mapping.longest_token), len(text)):
                if self._mapping.is_token_prefix(text[start:]):
                    return start
            return len(text)
        # Only a "<" within the last longest-token characters can start a split token.
        start = max(0, len(text) - self._mapping.longest_token)
        index = text.find("<", start)
        while index != -1:
            tail = text[index:]
            if ">" not in tail and self._mapping.is_token_prefix(tail):
                return index
            index = text.find("<", index + 1)
        return len(text)
