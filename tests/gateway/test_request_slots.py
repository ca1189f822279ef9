"""Which parts of a request body the gateway scans, and how JSON-text fields go back."""

from __future__ import annotations

import json

from veil.gateway._protect import (
    Exchange,
    FindingsCache,
    chat_answer_slots,
    chat_request_slots,
    dumps,
)
from veil.transform import Redactor, default_policy, shared_detector


def _body(arguments: str) -> dict[str, object]:
    call = {"id": "c0", "type": "function", "function": {"name": "f", "arguments": arguments}}
    return {"model": "m", "messages": [{"role": "assistant", "tool_calls": [call]}]}


def _arguments(body: dict[str, object]) -> str:
    return str(json.loads(dumps(body))["messages"][0]["tool_calls"][0]["function"]["arguments"])


def test_arguments_are_scanned_as_their_decoded_strings() -> None:
    body = _body(json.dumps({"note": 'say "hi"\nthen', "n": [1, "two"]}))
    slots = chat_request_slots(body)
    assert [container[key] for container, key in slots] == ['say "hi"\nthen', "two"]


def test_untouched_arguments_go_out_as_the_same_text() -> None:
    text = '{"a":1,  "b" : "x"}'  # any spacing the client chose
    body = _body(text)
    chat_request_slots(body)
    assert _arguments(body) == text


def test_changed_arguments_go_out_as_json_of_the_changed_value() -> None:
    body = _body(json.dumps({"to": "bob@example.com"}))
    for container, key in chat_request_slots(body):
        container[key] = "<EMAIL_1>"
    assert json.loads(_arguments(body)) == {"to": "<EMAIL_1>"}


def test_arguments_that_are_not_json_are_scanned_as_text() -> None:
    body = _body('{"to": "bob@example.com"')  # a model cut off mid-call
    slots = chat_request_slots(body)
    assert [container[key] for container, key in slots] == ['{"to": "bob@example.com"']


def _exchange() -> Exchange:
    detector, policy = shared_detector(), default_policy()
    return Exchange(
        Redactor(detector=detector, policy=policy, surface="gateway"),
        Redactor(detector=detector, policy=policy, surface="answer"),
        whole_answer=None,
        restore=True,
        cache=FindingsCache(),
    )


def _answer(arguments: str) -> dict[str, object]:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"choices": [{"index": 0, "message": message}]}


def _answer_arguments(data: dict[str, object]) -> str:
    message = json.loads(dumps(data))["choices"][0]["message"]
    return str(message["tool_calls"][0]["function"]["arguments"])


def test_values_restored_into_arguments_keep_quotes_and_line_breaks() -> None:
    exchange = _exchange()
    token = exchange.pseudonymizer.token_for('Case "AB\n1234"', "CASE_NOTE")
    # a field that happens to be called "arguments" is a string like any other
    data = _answer(json.dumps({"arguments": token, "to": token}))
    exchange.restore_slots(chat_answer_slots(data))
    value = 'Case "AB\n1234"'
    assert json.loads(_answer_arguments(data)) == {"arguments": value, "to": value}


def test_values_restored_into_arguments_that_do_not_parse_are_json_escaped() -> None:
    exchange = _exchange()
    token = exchange.pseudonymizer.token_for('Case "AB\n1234"', "CASE_NOTE")
    data = _answer('{"to": "' + token + '"')  # cut off mid-call
    exchange.restore_slots(chat_answer_slots(data))
    assert _answer_arguments(data) == '{"to": "Case \\"AB\\n1234\\""'
