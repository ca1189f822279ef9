"""The fast canonical encoder equals the rfc8785 package on every JSON value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.audit._canonical import canonical_json
from veil.audit._ledger import Entry, _encode_entry, _make_item, _strings, _texts, _timestamp

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(value=values)
def test_fast_path_equals_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_keys_beyond_the_basic_plane_sort_by_utf16_like_rfc8785() -> None:
    value = {"\U0001f600": 1, "\ufb01": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)


def test_control_characters_escape_like_rfc8785() -> None:
    value = {"k": '\x00\x07\x1f\x7f\u2028 "quoted" \\ end'}
    assert canonical_json(value) == rfc8785.dumps(value)


def test_lone_surrogates_are_refused_like_rfc8785() -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_json({"k": "\ud800"})


optional_text = st.none() | st.text(min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    actor=st.text(min_size=1, max_size=12),
    action=st.text(min_size=1, max_size=12),
    subject=optional_text,
    resource=optional_text,
    details=st.dictionaries(st.text(max_size=6), values, max_size=4),
    seq=st.integers(0, 2**40),
)
def test_an_entry_assembled_from_parts_is_its_rfc8785_encoding(
    actor: str,
    action: str,
    subject: str | None,
    resource: str | None,
    details: dict[str, Any],
    seq: int,
) -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
    item = _make_item(actor, action, "ok", subject, resource, details, canonical_json(details))
    entry = Entry(seq, now, actor, action, "ok", subject, resource, details)
    assembled = _encode_entry(item, seq, canonical_json(_timestamp(now)))
    assert assembled == rfc8785.dumps(entry.to_dict())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(details=st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_the_details_walk_collects_what_the_path_naming_walk_names(details: dict[str, Any]) -> None:
    """The fast walk every append runs and the slow one that names the value at fault
    must see the same strings, or a refused value could be missed or misnamed."""
    assert _texts(details, []) == [text for _, text in _strings(details, "details")]
