"""Exports are written record by record and read back as the same document."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

from hypothesis import given, settings
from hypothesis import strategies as st

from veil.cli._app import export_records

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
RECORDS = st.lists(st.dictionaries(st.text(max_size=5), VALUES, max_size=4), max_size=5)


@settings(max_examples=200, deadline=None)
@given(records=RECORDS)
def test_streamed_json_is_the_document_of_the_list(records: list[dict[str, object]]) -> None:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        export_records(iter(records), "json", [])
    assert buffer.getvalue() == json.dumps(records, indent=2, ensure_ascii=False) + "\n"
