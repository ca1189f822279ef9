"""The literal index answers ``needle in text`` exactly as ``in`` does, so a realistic
fake checked through it never occurs in the text it replaces values of."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from veil.transform import Pseudonymizer, Redactor, parse_policy
from veil.transform._literals_index import LiteralIndex

# A small alphabet: needles occur often, at every alignment and at both ends of the text.
TEXTS = st.text(alphabet="ab1.@ -", max_size=80)
NEEDLES = st.text(alphabet="ab1.@ -", min_size=1, max_size=14)


@settings(max_examples=400, deadline=None)
@given(text=TEXTS, needles=st.lists(NEEDLES, max_size=12))
def test_the_index_answers_what_in_answers(text: str, needles: list[str]) -> None:
    index = LiteralIndex(text, plain_queries=0)
    # Every substring of the text is in it, as are the needles ``in`` finds.
    substrings = [text[i:j] for i in range(0, len(text), 3) for j in (i + 7, i + 11, len(text))]
    for needle in [*needles, *substrings]:
        assert (needle in index) == (needle in text), needle


def test_the_index_is_built_only_after_its_plain_queries() -> None:
    index = LiteralIndex("x" * 100 + "needle-in-here", plain_queries=2)
    assert "needle-in" in index
    assert "needle-out" not in index
    assert index._positions is None  # two queries answered by `in`
    assert "needle-in-here" in index
    assert index._positions is not None


PSEUDONYMIZE_ALL = parse_policy("version: 1\ndefault: {operator: pseudonymize}\n")


def test_a_long_text_keeps_literals_that_look_like_the_next_fakes() -> None:
    # Sixty addresses (past the index's plain queries), and the text also holds, inside
    # build names no recognizer reports, the IP fakes the first values would get: those
    # fakes must be skipped, not handed out.
    values = [f"10.9.{i // 200}.{i % 200 + 1}" for i in range(60)]
    literals = [f"192.0.2.{n}" for n in range(1, 40, 3)]
    builds = " ".join(f"build{literal}rc" for literal in literals)
    text = "Hosts: " + ", ".join(values) + ". Builds: " + builds + "."
    redactor = Redactor(policy=PSEUDONYMIZE_ALL, pseudonymizer=Pseudonymizer(style="realistic"))
    masked = redactor.redact(text)
    fakes = [t for t, v in redactor.pseudonymizer._by_token.items() if v in values]
    assert len(fakes) == 60
    assert not set(fakes) & set(literals)
    assert builds in masked.text  # left alone
    assert redactor.restore(masked.text) == text
