"""Pseudonyms: consistent within a scope, restored in whole texts and in streams."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from veil.errors import IntegrityError, KeyMaterialError
from veil.keys import KeyStore, RootKey
from veil.transform import Pseudonymizer, Redactor, StreamRestorer, parse_policy

PSEUDONYMIZE_ALL = parse_policy("version: 1\ndefault: {operator: pseudonymize}\n")
PROMPT = "Alice is bob@example.com, Carol is carol@example.org; write to bob@example.com."


def pseudonymized() -> tuple[Redactor, str]:
    redactor = Redactor(surface="gateway")
    return redactor, redactor.redact(PROMPT).text


def test_same_value_same_token_within_a_scope() -> None:
    _, text = pseudonymized()
    assert text == "Alice is <EMAIL_1>, Carol is <EMAIL_2>; write to <EMAIL_1>."


def test_restore_handles_reordering_repetition_and_punctuation() -> None:
    redactor, _ = pseudonymized()
    answer = "Sure! <EMAIL_2>'s inbox, then (<EMAIL_1>), <EMAIL_1>… and <EMAIL_9> stays."
    assert redactor.restore(answer) == (
        "Sure! carol@example.org's inbox, then (bob@example.com), bob@example.com… "
        "and <EMAIL_9> stays."
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_pseudonymize_then_restore_is_the_identity(text: str) -> None:
    redactor = Redactor(policy=PSEUDONYMIZE_ALL)
    assert redactor.restore(redactor.redact(text).text) == text


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "bob@example.com",
                "10.0.0.1",
                "+1 212-555-0147",
                " ",
                "x",
                "\n",
                "<",
                "é",
                "<EMAIL_1>",
                "EMAIL_2",  # token look-alikes in every written form restoring reads
                "&lt;EMAIL_3&gt;",
                "EMAIL\\_1",
                "_",
                "\\",
            ]
        ),
        max_size=30,
    ).map("".join)
)
def test_pseudonymize_then_restore_is_the_identity_on_pii_heavy_text(text: str) -> None:
    redactor = Redactor(policy=PSEUDONYMIZE_ALL)
    assert redactor.restore(redactor.redact(text).text) == text


@settings(max_examples=300, deadline=None)
@given(
    answer=st.lists(
        st.sampled_from(
            [
                "<EMAIL_1>",
                "<EMAIL_2>",
                "<EMAIL_12>",
                "<",
                ">",
                "EMAIL_1",
                " ",
                "ok",
                "<<",
                "&lt;",
                "&gt;",
                "\\",
                "\\_",
                "_",
                "1",
                "x",
                "IP_ADDRESS_1",
                "é",
            ]
        ),
        max_size=20,
    ).map("".join),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_streamed_restore_equals_whole_text_restore_for_every_chunking(
    answer: str, cuts: list[int]
) -> None:
    mapping = Pseudonymizer()
    for index in range(1, 13):
        mapping.token_for(f"user{index}@example.com", "EMAIL")
    mapping.token_for("10.0.0.1", "IP_ADDRESS")
    bounds = sorted({0, len(answer), *[c for c in cuts if c <= len(answer)]})
    restorer = StreamRestorer(mapping)
    streamed = "".join(restorer.feed(answer[a:b]) for a, b in itertools.pairwise(bounds))
    streamed += restorer.close()
    assert streamed == mapping.restore(answer)


def test_token_lookalikes_already_in_the_input_survive_the_round_trip() -> None:
    redactor = Redactor(surface="gateway")
    text = "literal <EMAIL_1> then bob@example.com"
    masked = redactor.redact(text).text
    assert masked == "literal <EMAIL_1> then <EMAIL_2>"
    assert redactor.restore(masked) == text


def test_stream_restorer_holds_back_only_a_possible_token_tail() -> None:
    mapping = Pseudonymizer()
    mapping.token_for("bob@example.com", "EMAIL")
    restorer = StreamRestorer(mapping)
    assert restorer.feed("Hello <EMA") == "Hello "
    assert restorer.feed("IL_1> and <b>") == "bob@example.com and <b>"
    assert restorer.feed(" 3 < 4") == " 3 < 4"
    assert restorer.close() == ""


def test_mapping_is_sealed_and_round_trips(new_keystore: Callable[[], KeyStore]) -> None:
    key = new_keystore()
    mapping = Pseudonymizer()
    token = mapping.token_for("bob@example.com", "EMAIL")
    blob = mapping.to_sealed(key)
    assert b"bob@example.com" not in blob
    loaded = Pseudonymizer.from_sealed(key, blob)
    assert loaded.restore(f"hi {token}") == "hi bob@example.com"
    assert loaded.token_for("carol@example.org", "EMAIL") == "<EMAIL_2>"


def test_sealed_mapping_refuses_the_wrong_key_and_tampering(
    new_keystore: Callable[[], KeyStore], engine: Engine
) -> None:
    key = KeyStore(engine, RootKey(os.urandom(32)))
    blob = Pseudonymizer().to_sealed(key)
    with pytest.raises(KeyMaterialError, match="wrapped by root key rk-"):
        Pseudonymizer.from_sealed(KeyStore(engine, RootKey(os.urandom(32))), blob)
    with pytest.raises(KeyMaterialError, match="dk-"):
        Pseudonymizer.from_sealed(new_keystore(), blob)
    with pytest.raises(IntegrityError):
        Pseudonymizer.from_sealed(key, blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(IntegrityError):
        Pseudonymizer.from_sealed(key, blob[:20])
    with pytest.raises(IntegrityError):
        Pseudonymizer.from_sealed(key, blob, scope="another-conversation")


REALISTIC_TEXT = (
    "Alice Smith (alice@corp.io, +1 415-555-0199) logged in from 10.1.2.3 and 10.1.2.30."
)


def realistic() -> tuple[Redactor, str]:
    redactor = Redactor(policy=PSEUDONYMIZE_ALL, pseudonymizer=Pseudonymizer(style="realistic"))
    return redactor, redactor.redact(REALISTIC_TEXT).text


def test_realistic_fakes_keep_the_format() -> None:
    _, masked = realistic()
    assert "alice@corp.io" not in masked
    assert "@example.net" in masked
    assert "192.0.2.1" in masked
    assert "192.0.2.2" in masked
    assert "+5 555-555-0001" in masked


def test_realistic_fakes_are_restored_as_whole_words_only() -> None:
    redactor, masked = realistic()
    assert redactor.restore(masked) == REALISTIC_TEXT
    assert redactor.restore("see 192.0.2.10 and 192.0.2.1.") == "see 192.0.2.10 and 10.1.2.3."


@settings(max_examples=150, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=10))
def test_realistic_streamed_restore_equals_whole_text_restore(cuts: list[int]) -> None:
    redactor, masked = realistic()
    answer = f"Reply: {masked} Again: {masked[::-1]} {masked}"
    bounds = sorted({0, len(answer), *[c for c in cuts if c <= len(answer)]})
    restorer = StreamRestorer(redactor.pseudonymizer)
    streamed = "".join(restorer.feed(answer[a:b]) for a, b in itertools.pairwise(bounds))
    streamed += restorer.close()
    assert streamed == redactor.pseudonymizer.restore(answer)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["bob@example.com", "10.0.0.1", "192.0.2.1", "+1 212-555-0147", " ", "x", "\n", "."]
        ),
        max_size=30,
    ).map("".join)
)
def test_realistic_pseudonymize_then_restore_is_the_identity(text: str) -> None:
    redactor = Redactor(policy=PSEUDONYMIZE_ALL, pseudonymizer=Pseudonymizer(style="realistic"))
    assert redactor.restore(redactor.redact(text).text) == text


def test_realistic_style_survives_sealing(new_keystore: Callable[[], KeyStore]) -> None:
    key = new_keystore()
    redactor, masked = realistic()
    loaded = Pseudonymizer.from_sealed(key, redactor.pseudonymizer.to_sealed(key))
    assert loaded.style == "realistic"
    assert loaded.restore(masked) == REALISTIC_TEXT


def test_realistic_fakes_past_a_kinds_range_become_tokens() -> None:
    # The documentation IPv4 blocks hold 762 addresses: the 763rd value used to ask for
    # ever more fakes that all repeated earlier ones, and never returned.
    mapping = Pseudonymizer(style="realistic")
    values = [f"10.{i // 250}.{i % 250}.7" for i in range(1000)]
    text = " ".join(values)
    pseudonyms = [mapping.token_for(value, "IP_ADDRESS", avoid=text) for value in values]
    assert len(set(pseudonyms)) == len(values)
    assert pseudonyms[761] == "203.0.113.254"
    assert pseudonyms[762] == "<IP_ADDRESS_763>"
    assert mapping.restore(" ".join(pseudonyms)) == text


def test_realistic_phone_fakes_stop_before_their_last_digits_repeat() -> None:
    mapping = Pseudonymizer(style="realistic")
    values = [f"+1 212-555-{i:04d}" for i in range(10_000)] + ["+1 646-555-0000"]
    pseudonyms = [mapping.token_for(value, "PHONE") for value in values]
    assert len(set(pseudonyms)) == len(values)
    assert pseudonyms[-1] == "<PHONE_10001>"


@pytest.mark.parametrize(
    "written",
    [
        "&lt;EMAIL_1&gt;",  # HTML the model generated
        "\\<EMAIL_1\\>",  # Markdown-escaped brackets
        "<EMAIL\\_1>",  # Markdown-escaped underscore
        "\\<EMAIL\\_1\\>",
        "EMAIL_1",  # the brackets dropped
    ],
)
def test_tokens_are_restored_in_the_forms_models_write_them(written: str) -> None:
    redactor, _ = pseudonymized()
    assert redactor.restore(f"Write to {written}.") == "Write to bob@example.com."


def test_a_bare_token_inside_a_longer_word_or_number_is_left_alone() -> None:
    redactor, _ = pseudonymized()
    assert redactor.restore("MY_EMAIL_1 and EMAIL_12 and EMAIL_1x") == (
        "MY_EMAIL_1 and EMAIL_12 and EMAIL_1x"
    )


def test_token_names_the_input_already_holds_are_never_handed_out() -> None:
    redactor = Redactor(surface="gateway")
    text = "the column EMAIL_1 and &lt;EMAIL_2&gt; hold bob@example.com"
    masked = redactor.redact(text).text
    assert masked == "the column EMAIL_1 and &lt;EMAIL_2&gt; hold <EMAIL_3>"
    assert redactor.restore(masked) == text


def test_a_stream_holds_back_a_token_cut_in_any_written_form() -> None:
    mapping = Pseudonymizer()
    mapping.token_for("bob@example.com", "EMAIL")
    restorer = StreamRestorer(mapping)
    assert restorer.feed("Hi &l") == "Hi "
    assert restorer.feed("t;EMAIL\\") == ""
    assert restorer.feed("_1&g") == ""
    assert restorer.feed("t; and EMAIL_") == "bob@example.com and "
    assert restorer.feed("1") == ""  # EMAIL_1 may still become EMAIL_12
    assert restorer.feed(", done") == "bob@example.com, done"
    assert restorer.close() == ""


def _realistic_mapping() -> tuple[Pseudonymizer, list[str]]:
    mapping = Pseudonymizer(style="realistic")
    fakes = [mapping.token_for(f"user{n}@example.com", "EMAIL") for n in range(1, 4)]
    tokens = [
        mapping.token_for("10.0.0.1", "IP_ADDRESS", whole_word=False),
        mapping.token_for("x@y.com", "EMAIL", whole_word=False),
    ]
    written = [t.replace("<", "&lt;").replace(">", "&gt;") for t in tokens]
    return mapping, [*fakes, *tokens, *written, *(t[1:-1] for t in tokens), *(f[:5] for f in fakes)]


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8),
)
def test_realistic_fakes_and_tokens_side_by_side_restore_the_same_in_any_chunking(
    data: st.DataObject, cuts: list[int]
) -> None:
    mapping, pieces = _realistic_mapping()
    alphabet = [*pieces, "<", ">", " ", "x", "_", "\\", "&", "1", ".", "@", "IP", "EMAIL"]
    answer = "".join(data.draw(st.lists(st.sampled_from(alphabet), max_size=12)))
    bounds = sorted({0, len(answer), *[c for c in cuts if c <= len(answer)]})
    restorer = StreamRestorer(mapping)
    streamed = "".join(restorer.feed(answer[a:b]) for a, b in itertools.pairwise(bounds))
    assert streamed + restorer.close() == mapping.restore(answer)


def test_a_fake_next_to_a_token_is_judged_by_the_text_the_model_wrote() -> None:
    mapping, _ = _realistic_mapping()
    fake = mapping.token_for("user3@example.com", "EMAIL")
    # a bracket ends the fake's word as the model wrote it; the token's value (restored
    # first in earlier versions) did not
    assert mapping.restore(f"{fake}<IP_ADDRESS_1>") == "user3@example.com10.0.0.1"
    assert mapping.restore(f"{fake}IP_ADDRESS_1") == f"{fake}IP_ADDRESS_1"  # one word


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<EMAIL_1>",
                "EMAIL_2",
                "EMAIL",
                "IP\\_ADDRESS\\_1",
                "IP_ADDRESS_1",
                "&lt;",
                "&gt;",
                "\\<",
                "\\>",
                "<",
                ">",
                "\\",
                "_",
                "1",
                "x",
                " ",
                "é",
                "&",
                "US_SSN_1",
            ]
        ),
        max_size=16,
    ).map("".join),
    st.sampled_from(["", "x", "_", "<", " "]),
    st.sampled_from(["", "x", "1", ">", " "]),
)
def test_the_token_scan_restores_like_the_pattern(text: str, before: str, after: str) -> None:
    mapping = Pseudonymizer()
    for value, kind in [("a@b.co", "EMAIL"), ("c@d.co", "EMAIL"), ("10.0.0.1", "IP_ADDRESS")]:
        mapping.token_for(value, kind)
    mapping.token_for("078-05-1121", "US_SSN")
    assert mapping.restore(text, before=before, after=after) == mapping._restore_with_pattern(
        text, before, after
    )


def test_values_restored_into_json_text_are_json_escaped() -> None:
    import json

    from veil.transform import json_string_body

    mapping = Pseudonymizer()
    token = mapping.token_for('12 Main St\nApt "B"', "LOCATION")
    arguments = json.dumps({"to": token, "note": "kept"})
    restored = mapping.restore(arguments, encode=json_string_body)
    assert json.loads(restored) == {"to": '12 Main St\nApt "B"', "note": "kept"}
    restorer = StreamRestorer(mapping, encode=json_string_body)
    streamed = "".join(restorer.feed(arguments[i : i + 3]) for i in range(0, len(arguments), 3))
    assert streamed + restorer.close() == restored
