"""``needle in text`` for many needles against one long text, without a scan per needle.

A new realistic fake must not occur literally in the text being pseudonymized (restoring
would turn that literal into a value). Checking each fake with ``in`` reads the whole text
once per fake: 16,000 values in a 400 KB text took 2.4 s. The index here keeps the
positions of the text's 4-character pieces at every fourth offset; a needle of 7 or more
characters that occurs at ``s`` covers one such aligned piece for each possible ``s % 4``,
so four look-ups of its rarest pieces, and a comparison at each position they list,
answer exactly what ``in`` would. Shorter needles fall back to ``in``.

The index is built on the first query after ``plain_queries`` answered by ``in``: a text
that gets a few new fakes is not indexed at all.
"""

from __future__ import annotations

GRAM = 4
PLAIN_QUERIES = 16


class LiteralIndex:
    """Answers ``needle in index`` exactly as ``needle in text`` would."""

    __slots__ = ("_plain_left", "_positions", "_text")

    def __init__(self, text: str, *, plain_queries: int = PLAIN_QUERIES) -> None:
        self._text = text
        self._plain_left = plain_queries
        self._positions: dict[str, list[int]] | None = None

    def _build(self) -> dict[str, list[int]]:
        text = self._text
        positions: dict[str, list[int]] = {}
        for start in range(0, len(text) - GRAM + 1, GRAM):
            piece = text[start : start + GRAM]
            found = positions.get(piece)
            if found is None:
                positions[piece] = [start]
            else:
                found.append(start)
        self._positions = positions
        return positions

    @property
    def text(self) -> str:
        return self._text

    def __contains__(self, needle: str) -> bool:
        text, positions = self._text, self._positions
        size = len(needle)
        if size < 2 * GRAM - 1:
            return needle in text
        if positions is None:
            if self._plain_left > 0:
                self._plain_left -= 1
                return needle in text
            positions = self._build()
        nothing: list[int] = []
        # An occurrence at s has its first aligned piece at offset (-s) % GRAM of the
        # needle; every later piece GRAM further is aligned too. Per offset class, the
        # piece listed at the fewest positions is the cheapest to confirm from.
        for first in range(GRAM):
            best_offset, best = first, positions.get(needle[first : first + GRAM], nothing)
            for offset in range(first + GRAM, size - GRAM + 1, GRAM):
                if not best:
                    break
                listed = positions.get(needle[offset : offset + GRAM], nothing)
                if len(listed) < len(best):
                    best_offset, best = offset, listed
            for position in best:
                start = position - best_offset
                if start >= 0 and text.startswith(needle, start):
                    return True
        return False
