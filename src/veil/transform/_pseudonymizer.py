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
import functools
import itertools
import json
import re
import string
import threading
from collections.abc import Callable
from typing import Any

from veil.detect import Finding
from veil.detect._first_chars import with_first_chars
from veil.errors import InputError
from veil.keys import KeyStore
from veil.transform._fakes import make_fake
from veil.transform._literals_index import LiteralIndex

TOKEN = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d{1,9})>")
_PURPOSE = "pseudonym-map"
# How models write a token back besides ``<EMAIL_1>``: HTML-escaped (``&lt;EMAIL_1&gt;``,
# in HTML they generate), Markdown-escaped (``\<EMAIL_1\>``, ``<EMAIL\_1>``: a bare
# ``<EMAIL_1>`` is an HTML tag to a Markdown renderer, which hides it), or without the
# brackets (``EMAIL_1``). Restoring reads all of them as the token they name.
_OPENERS = ("&lt;", "\\<", "<")
_CLOSERS = ("&gt;", "\\>", ">")
# The shape of a token's name once escapes are dropped (for stream hold-back).
_TOKEN_NAME = re.compile(r"[A-Z][A-Z0-9_]*?_\d{1,9}")
# Any token in any of those forms, for the literals a text already holds.
_ANY_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_\\])([A-Z][A-Z0-9]*(?:\\?_[A-Z][A-Z0-9]*)*)\\?_(\d{1,9})(?![A-Za-z0-9_])"
)
_UNDERSCORE_DIGIT = re.compile(r"_\d")
# A token's number after its name: the anchor of the token-only restore scan.
_NUMBER = re.compile(r"_(\d{1,9})(?![A-Za-z0-9_])")
# What may follow a bare token's first letter ("" at the end of the text so far).
_NAME_CHARS = frozenset([*string.ascii_uppercase, *string.digits, "_", "\\", ""])
# Where a token's written form can begin: an opening bracket, an escape, a capital.
_TOKEN_STARTS = frozenset("<&\\" + string.ascii_uppercase)
# What may not come right before a bare token (the patterns' ASCII look-behind).
_WORD_OR_ESCAPE = frozenset(string.ascii_letters + string.digits + "_\\")


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


def json_string_body(value: str) -> str:
    """``value`` as it stands between the quotes of a JSON string (for restoring into
    JSON text: a value with a quote, a backslash or a line break keeps the JSON valid)."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _sub_between(
    pattern: re.Pattern[str],
    replace: Callable[[re.Match[str]], str],
    text: str,
    before: str,
    after: str,
) -> str:
    """``pattern.sub(replace, text)`` where look-arounds also see the character before
    and after ``text`` (a stream's neighbouring pieces), which no match may include."""
    if not before and not after:
        return pattern.sub(replace, text)
    head = before[-1:]
    joined = head + text + after[:1]
    end = len(head) + len(text)
    parts, last = [], len(head)
    for match in pattern.finditer(joined, len(head)):
        if match.end() > end:
            break  # reaches into the next piece (streaming holds such tails back)
        parts += [joined[last : match.start()], replace(match)]
        last = match.end()
    parts.append(joined[last:end])
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def _written_forms(kinds: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """(name as written, kind) for every token kind, underscores escaped or not, longest
    first (cached: every request's mapping of a gateway has much the same kinds)."""
    forms = []
    for kind in kinds:
        parts = kind.split("_")
        for escapes in itertools.product(("_", "\\_"), repeat=len(parts) - 1):
            written = parts[0] + "".join(e + p for e, p in zip(escapes, parts[1:], strict=True))
            forms.append((written, kind))
    return tuple(sorted(forms, key=lambda form: (-len(form[0]), form[0])))


class Pseudonymizer:
    """One scope's mapping between values and tokens. Thread-safe."""

    def __init__(self, scope: str = "default", *, style: str = "token") -> None:
        if style not in ("token", "realistic"):
            raise InputError("Pseudonym style must be 'token' or 'realistic'.")
        self.scope = scope
        self.style = style
        self._restore_pattern: re.Pattern[str] | None = None  # None: stale
        self._sorted_tokens: list[str] | None = None  # for prefix questions; None: stale
        self._any_fake = False
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_token: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()
        self._longest = 0
        self._reserved: set[str] = set()
        self._token_kinds: set[str] = set()
        self._names: tuple[tuple[str, str], ...] | None = None  # see _written_forms; None: stale
        self._initials: frozenset[str] = frozenset()  # first letters of the token kinds

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
        # Every form restoring reads (``<EMAIL_1>``, ``&lt;EMAIL_1&gt;``, ``EMAIL\\_1``,
        # ``EMAIL_1``) contains an underscore and a digit.
        if "_" not in text or _UNDERSCORE_DIGIT.search(text) is None:
            return
        with self._lock:
            for match in _ANY_TOKEN.finditer(text):
                token = f"<{match.group(1).replace(chr(92) + '_', '_')}_{match.group(2)}>"
                if token not in self._by_token:
                    self._reserved.add(token)

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
                    self._restore_pattern = None
                    self._any_fake = True
                self._by_value[key] = token
                self._by_token[token] = value
                self._longest = max(self._longest, len(token))
                self._sorted_tokens = None
                if token.startswith("<") and kind not in self._token_kinds:
                    self._token_kinds.add(kind)
                    self._restore_pattern = None
                    self._names = None
                    self._initials = self._initials | {kind[0]}
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

    def _pattern(self) -> re.Pattern[str] | None:
        """Every token of this mapping in each form a model writes it back (see
        ``_OPENERS``) and every realistic fake as a whole word, in one pattern: one pass
        over the original text, so a restored value is never read again and a fake next
        to a token is judged by the text the model wrote."""
        pattern = self._restore_pattern
        if pattern is not None:
            return pattern
        with self._lock:
            kinds = sorted(self._token_kinds, key=len, reverse=True)
            fakes = sorted((t for t in self._by_token if not t.startswith("<")), key=len)
        branches = []
        if kinds:
            names = "|".join(re.escape(kind).replace("_", r"\\?_") for kind in kinds)
            branches.append(
                r"(?P<open>&lt;|\\<|<)?(?<![A-Za-z0-9_\\])"
                rf"(?P<kind>{names})\\?_(?P<n>\d{{1,9}})(?![A-Za-z0-9_])"
                r"(?P<close>&gt;|\\>|>)?"
            )
        if fakes:
            # One trie of the fakes, not an alternation of thousands: at each position the
            # regex follows one branch instead of trying every fake (restoring a long
            # conversation was O(text x fakes)). Whole words only: 198.51.100.1 must not
            # match inside 198.51.100.12.
            branches.append(rf"(?<![\w@+-])(?P<fake>{_trie_pattern(fakes)})(?![\w@-])")
        if not branches:
            return None
        joined = "|".join(branches)
        # A look-ahead of the characters a match can start with lets ``re`` skip ahead
        # (the pattern begins with an optional bracket, which disables its own scan).
        pattern = self._restore_pattern = re.compile(with_first_chars(joined, 0))
        return pattern

    def could_grow(self, text: str, start: int, before: str = "") -> bool:
        """Whether a token in one of its written forms may begin at ``text[start]`` and
        still change with what follows (for streaming hold-back). ``before`` is the
        character before ``text``."""
        first = text[start]
        if first not in "<&\\" and (
            # a bare token starts a word with a kind's initial, then a name character
            first not in self._initials or text[start + 1 : start + 2] not in _NAME_CHARS
        ):
            return False
        tail = text[start:]
        previous = text[start - 1] if start else before
        for opener in _OPENERS:
            if len(tail) < len(opener) and opener.startswith(tail):
                return self.is_token_prefix("<")  # a cut opener: ``&l``, ``\\``
            if tail.startswith(opener):
                body = tail[len(opener) :]
                break
        else:
            if previous and previous in _WORD_OR_ESCAPE:
                return False  # inside a word: no bare token starts here
            body = tail
        name = body.replace("\\_", "_")
        if name.endswith("\\"):
            name = name[:-1]  # a cut escape: ``EMAIL\\`` may go on as ``EMAIL\\_1``
        candidate = "<" + name
        if not candidate.endswith(">") and self.is_token_prefix(candidate):
            return True  # a cut token: more of its name, its digits or its bracket may follow
        match = _TOKEN_NAME.match(name)
        if match is None or f"<{match.group(0)}>" not in self._by_token:
            return False
        rest = name[match.end() :]  # after a whole known token: a cut closing bracket?
        return any(len(rest) < len(closer) and closer.startswith(rest) for closer in _CLOSERS)

    def _written_names(self) -> tuple[tuple[str, str], ...]:
        names = self._names
        if names is None:
            with self._lock:
                kinds = frozenset(self._token_kinds)
            names = self._names = _written_forms(kinds)
        return names

    def _restore_canonical(self, text: str, encode: Callable[[str], str] | None) -> str | None:
        """``text`` restored when all its tokens are written ``<KIND_N>`` (None when any
        ``_N`` stands outside one)."""
        found = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal found
            found += 1
            value = self._by_token.get(match.group(0))
            if value is None:
                return match.group(0)
            return value if encode is None else encode(value)

        restored = TOKEN.sub(replace, text) if "<" in text else text
        if len(_UNDERSCORE_DIGIT.findall(text)) != found:
            return None
        return restored

    def _restore_tokens(
        self, text: str, before: str, after: str, encode: Callable[[str], str] | None
    ) -> str:
        """What the pattern of :meth:`_pattern` does for tokens, found from each ``_N``
        instead of tried at every position (about twice as fast on an answer)."""
        head = before[-1:]
        joined = head + text + after[:1]
        low, high = len(head), len(head) + len(text)
        names = self._written_names()
        parts: list[str] = []
        last = low
        for number in _NUMBER.finditer(joined, low):
            underscore = number.start()
            if underscore >= high:
                break
            name_end = underscore - 1 if joined[underscore - 1 : underscore] == "\\" else underscore
            found = next(
                (
                    (name_end - len(written), kind)
                    for written, kind in names
                    if name_end - len(written) >= last
                    and joined.startswith(written, name_end - len(written))
                ),
                None,
            )
            if found is None:
                continue
            start, kind = found
            if start > 0 and joined[start - 1] in _WORD_OR_ESCAPE:
                continue  # inside a longer word
            opener = ""
            for candidate in _OPENERS:
                if start - len(candidate) >= last and joined.startswith(
                    candidate, start - len(candidate)
                ):
                    opener = candidate
                    break
            end = number.end()
            closer = next((c for c in _CLOSERS if joined.startswith(c, end)), "")
            if end + len(closer) > high:
                break  # reaches into the next piece (streaming holds such tails back)
            value = self._by_token.get(f"<{kind}_{number.group(1)}>")
            begin, end = start - len(opener), end + len(closer)
            if value is not None:
                if encode is not None:
                    value = encode(value)
                if opener == "\\<" and closer != "\\>":
                    value = "\\" + value  # the text's backslash before ``<EMAIL_1>``
                parts += [joined[last:begin], value]
                last = end
        parts.append(joined[last:high])
        return "".join(parts)

    def restore(
        self,
        text: str,
        *,
        before: str = "",
        after: str = "",
        encode: Callable[[str], str] | None = None,
    ) -> str:
        """Original values back in place of every known token; unknown tokens stay.

        ``before`` and ``after`` are the texts around ``text`` (one character of each is
        enough), for a piece of a stream: whole-word matching looks at them. ``encode``
        writes each value for the text's syntax (:func:`json_string_body` for JSON text
        such as a tool call's arguments).
        """
        if not self._any_fake:
            if "_" not in text or not self._token_kinds:
                return text  # every written form of a token holds an underscore
            # The usual answer: every "_N" of the text is inside a ``<KIND_N>``, so the
            # forms without brackets or escaped cannot occur (nor does the text around a
            # piece of a stream change a bracketed token); one C-level pass.
            canonical = self._restore_canonical(text, encode)
            if canonical is not None:
                return canonical
            return self._restore_tokens(text, before, after, encode)
        return self._restore_with_pattern(text, before, after, encode)

    def _restore_with_pattern(
        self,
        text: str,
        before: str = "",
        after: str = "",
        encode: Callable[[str], str] | None = None,
    ) -> str:
        """Restoring through :meth:`_pattern` (tokens and fakes in one pass)."""
        pattern = self._pattern()
        if pattern is None:
            return text

        def replace(match: re.Match[str]) -> str:
            value = self._value_of_match(match)
            if value is None:
                return match.group(0)
            if encode is not None:
                value = encode(value)
            fake = match.group("fake") if "fake" in match.re.groupindex else None
            if fake is None and match.group("open") == "\\<" and match.group("close") != "\\>":
                # A backslash of the text right before a token (``\\<EMAIL_1>``): the
                # token is ``<EMAIL_1>``, the backslash stays.
                return "\\" + value
            return value

        return _sub_between(pattern, replace, text, before, after)

    def _value_of_match(self, match: re.Match[str]) -> str | None:
        fake = match.group("fake") if "fake" in match.re.groupindex else None
        if fake is not None:
            return self._by_token.get(fake)
        name = match.group("kind").replace("\\_", "_")
        return self._by_token.get(f"<{name}_{match.group('n')}>")

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
            if token.startswith("<"):
                mapping._token_kinds.add(token[1:].rsplit("_", 1)[0])
                mapping._initials = mapping._initials | {token[1]}
            mapping._longest = max(mapping._longest, len(token))
        mapping._counters = {str(k): int(v) for k, v in data["counters"].items()}
        return mapping


class StreamRestorer:
    """Restores tokens in a stream whose chunks may split a token anywhere.

    ``feed`` returns what can be emitted now; it holds back only a tail that could still
    grow into a known token (at most the longest token's length). ``close`` flushes.
    The concatenated output equals ``restore`` of the whole text.
    """

    def __init__(
        self, pseudonymizer: Pseudonymizer, *, encode: Callable[[str], str] | None = None
    ) -> None:
        self._mapping = pseudonymizer
        self._encode = encode  # see Pseudonymizer.restore
        self._pending = ""
        self._before = ""  # the last input character already emitted

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        cut = self._safe_cut(text)
        self._pending = text[cut:]
        return self._emit(text[:cut], self._pending)

    def close(self) -> str:
        rest, self._pending = self._pending, ""
        return self._emit(rest, "")

    def _emit(self, piece: str, after: str) -> str:
        restored = self._mapping.restore(
            piece, before=self._before, after=after, encode=self._encode
        )
        if piece:
            self._before = piece[-1]
        return restored

    def _safe_cut(self, text: str) -> int:
        mapping = self._mapping
        if not len(mapping):
            return len(text)
        fakes = mapping.has_fakes
        # A token's longest written form: "&lt;" + name with escaped underscores + "&gt;".
        reach = 2 * mapping.longest_token + 6
        start = max(0, len(text) - reach)
        while start < len(text):
            # Hold back from the first place where a fake or token (in any of the forms
            # restoring reads) may have begun and is not finished yet.
            if fakes and mapping.is_token_prefix(text[start:]):
                return start
            char = text[start]
            if char in _TOKEN_STARTS:
                if char == "<" and not fakes:
                    whole = TOKEN.match(text, start)
                    if whole is not None:  # a finished <KIND_N>: nothing in it can grow
                        start = whole.end()
                        continue
                if mapping.could_grow(text, start, self._before):
                    return start
            start += 1
        return len(text)
