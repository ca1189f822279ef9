"""Go-style ``\\u003c`` / ``\\u003e`` escapes in tool-call arguments (JSON text) read as the
characters they stand for, whole or streamed in pieces cut anywhere."""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from veil.gateway._protect import AngleUnescaper, unescape_angles

PIECES = ["<", ">", "\\", "u003c", "\\u003e", '"', "EMAIL_1", "a", " ", "\n", "&"]
values = st.recursive(
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=6,
)


def go_json(value: object) -> str:
    """``value`` as Go's encoding/json writes it: <, > and & as \\u escapes."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003E").replace("&", "\\u0026")


def streamed(text: str, cuts: list[int]) -> str:
    points = sorted({min(max(c, 0), len(text)) for c in cuts} | {0, len(text)})
    unescaper = AngleUnescaper()
    out = "".join(unescaper.feed(text[a:b]) for a, b in itertools.pairwise(points))
    return out + unescaper.close()


def test_escaped_brackets_become_the_brackets() -> None:
    assert unescape_angles('{"to": "\\u003cEMAIL_1\\u003E"}') == '{"to": "<EMAIL_1>"}'


def test_an_escaped_backslash_before_u003c_is_left_alone() -> None:
    # The JSON text \\u003c is a backslash followed by the letters u003c, not an escape.
    assert unescape_angles('"\\\\u003c"') == '"\\\\u003c"'
    assert unescape_angles('"\\\\\\u003c"') == '"\\\\<"'


@given(value=values)
def test_unescaping_keeps_the_json_value(value: object) -> None:
    text = unescape_angles(go_json(value))
    assert json.loads(text) == value
    assert "\\u003c" not in text.replace("\\\\", "")


@given(value=values, cuts=st.lists(st.integers(0, 200), max_size=20))
def test_streamed_unescaping_equals_whole_text_unescaping(value: object, cuts: list[int]) -> None:
    text = go_json(value)
    assert streamed(text, cuts) == unescape_angles(text)
