"""Which parts of a request body the gateway scans, and how JSON-text fields go back."""

from __future__ import annotations

import json

from veil.gateway._protect import chat_request_slots, dumps


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
