"""The code map: what an anonymization replaced, and how a model's answer is put back
(whole or as a stream cut anywhere)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MARKER = re.compile(
    r"/\* veil_l_\d+\n* \*/|// veil_l_\d+|-- veil_l_\d+|#\s?veil_[cl]_\d+"
    r"|[rRbBuU]{0,2}(?:\"\"\"|''')veil_d_\d+\n*(?:\"\"\"|''')"
)


class UsedWords:
    """The identifier-shaped words of the files being anonymized. A generated name or
    marker is free when it is none of them: restoring matches whole words (``IDENTIFIER``,
    ``_MARKER``), so a word that only contains it ("v_10", "xv_1") cannot be confused with
    it. A set lookup per candidate, where a substring search of all the files per
    candidate made a large repository quadratic."""

    __slots__ = ("_words",)

    def __init__(self, texts: Iterable[str]) -> None:
        self._words = {word for text in texts for word in IDENTIFIER.findall(text)}

    def __contains__(self, word: object) -> bool:
        return word in self._words


@dataclass
class CodeMap:
    """Everything needed to undo an anonymization; kept only sealed (see ``to_json``)."""

    names: dict[str, str] = field(default_factory=dict)  # new name -> original
    paths: dict[str, str] = field(default_factory=dict)  # new path -> original
    markers: dict[str, str] = field(default_factory=dict)  # comment/docstring marker -> text
    literals: dict[str, str] = field(default_factory=dict)  # literal token -> value
    # A docstring with doctest examples keeps its examples (renamed) and loses its prose:
    # anonymized docstring token -> original token.
    blocks: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"CodeMap(names={len(self.names)}, markers={len(self.markers)})"

    def restore(self, text: str) -> str:
        """Original names, comments, docstrings and literal values back in ``text``:
        modified code, new code mixing old and new names, diffs, markdown. Identifiers
        the model introduced are left alone."""
        for block, original in self.blocks.items():
            if block in text:
                text = text.replace(block, original)
        if self.markers:
            text = _MARKER.sub(lambda m: self.markers.get(m.group(0), m.group(0)), text)
        if self.names:
            text = IDENTIFIER.sub(lambda m: self.names.get(m.group(0), m.group(0)), text)
        for token, value in self.literals.items():
            if token in text:
                text = text.replace(token, value)
        for new, old in self.paths.items():
            if new in text:
                text = text.replace(new, old)
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 2,
            "names": self.names,
            "paths": self.paths,
            "markers": self.markers,
            "literals": self.literals,
            "blocks": self.blocks,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CodeMap:
        if data.get("version") not in (1, 2):
            raise ValueError("unknown code map version")
        return cls(
            dict(data["names"]),
            dict(data["paths"]),
            dict(data["markers"]),
            dict(data["literals"]),
            dict(data.get("blocks", {})),
        )


class CodeStreamRestorer:
    """``CodeMap.restore`` over a stream whose chunks may cut a name or a marker anywhere.

    Holds back a trailing identifier (``v_1`` may grow into ``v_12``) and a tail that could
    still become a comment or docstring marker; ``close`` flushes.
    """

    _HOLD = 64
    _HOLD_BLOCK = 1 << 16

    def __init__(self, code_map: CodeMap) -> None:
        self._map = code_map
        self._pending = ""

    def feed(self, chunk: str) -> str:
        text = self._pending + chunk
        cut = self._cut(text)
        self._pending = text[cut:]
        return self._map.restore(text[:cut])

    def close(self) -> str:
        rest, self._pending = self._pending, ""
        return self._map.restore(rest)

    def _cut(self, text: str) -> int:
        cut = len(text)
        while cut > 0 and (text[cut - 1].isalnum() or text[cut - 1] == "_"):
            cut -= 1
        # A marker starts with '#' or a triple quote; hold it while it can still complete.
        window = max(0, len(text) - self._HOLD)
        # A docstring marker that is already complete at the end is not held.
        complete = _COMPLETE_DOCSTRING_MARKER.search(text)
        done = complete.start() if complete is not None else len(text) + 1
        for opener in ("#", '"""', "'''"):
            index = text.rfind(opener, window)
            if index != -1 and index < done and _could_be_marker(text[index:]):
                cut = min(cut, index)
        if self._map.blocks:  # a doctest docstring is restored whole: hold it until it closes
            for quote in ('"""', "'''"):
                index = text.rfind(quote + "veil_d_", max(0, len(text) - self._HOLD_BLOCK))
                if index != -1 and text.find(quote, index + 3) == -1:
                    cut = min(cut, index)
        # One or two quotes at the very end may be the start of a docstring marker.
        tail = len(text) - len(text.rstrip("\"'"))
        if 0 < tail < 3:
            cut = min(cut, len(text) - tail)
        return cut


_COMPLETE_DOCSTRING_MARKER = re.compile(r"(?:\"\"\"|\'\'\')veil_d_\d+\n*(?:\"\"\"|\'\'\')$")


def _could_be_marker(tail: str) -> bool:
    """Whether ``tail`` may still grow into a comment or docstring marker."""
    for head in ("# veil_c_", "#veil_c_"):
        if head.startswith(tail) or (tail.startswith(head) and tail[len(head) :].isdigit()):
            return True
    for quote in ('"""', "'''"):
        head = quote + "veil_d_"
        if head.startswith(tail):
            return True
        if tail.startswith(head) and re.fullmatch(
            r"\d*\n*" + re.escape(quote[0]) + "{0,2}", tail[len(head) :]
        ):
            return True
    return False
