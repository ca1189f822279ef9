"""Restoring realistic fakes: the trie pattern finds exactly what an alternation of the
fakes (longest first) finds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from veil.transform._pseudonymizer import _trie_pattern

PIECES = st.text(alphabet="ab.@ 1-(", min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(PIECES, min_size=1, max_size=8, unique=True),
    text=st.text("ab.@ 1x-(", max_size=40),
)
def test_the_trie_matches_what_the_alternation_matches(words: list[str], text: str) -> None:
    words = sorted(words, key=len, reverse=True)
    alternation = "|".join(re.escape(word) for word in words)
    plain = re.compile(rf"(?<![\w@+-])(?:{alternation})(?![\w@-])")
    trie = re.compile(rf"(?<![\w@+-])(?:{_trie_pattern(words)})(?![\w@-])")
    assert [m.span() for m in trie.finditer(text)] == [m.span() for m in plain.finditer(text)]
