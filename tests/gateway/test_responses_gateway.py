"""OpenAI's Responses API through a running ``veil serve``, with the official ``openai``
SDK as the client and a recording upstream on 127.0.0.1 that streams every delta cut
through the pseudonym tokens."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.gateway.conftest import Served, Upstream, gateway_env, new_requests, start_gateway
from tests.gateway.conftest import openai_client as client

EMAIL = "ana.silva@example.com"
PHONE = "+1 415 555 0133"
TOOLS: Any = [{"type": "function", "name": "send", "parameters": {}}]


def test_input_and_instructions_reach_upstream_pseudonymized_and_come_back_restored(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    answer = client(served).responses.create(
        model="gpt-test", input=f"mail {EMAIL}", instructions=f"Call {PHONE} if stuck."
    )
    seen = new_requests(upstream, before)
    assert EMAIL not in seen
    assert "555 0133" not in seen
    assert upstream.received[-1]["body"]["input"] == "mail <EMAIL_1>"
    assert answer.output_text == f"Noted: mail {EMAIL}"
    assert answer.instructions == f"Call {PHONE} if stuck."


def test_every_kind_of_input_item_is_scanned(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    items: Any = [
        {"role": "user", "content": [{"type": "input_text", "text": f"I am {EMAIL}"}]},
        {
            "type": "function_call",
            "call_id": "c0",
            "name": "lookup",
            "arguments": json.dumps({"who": PHONE}),
        },
        {"type": "function_call_output", "call_id": "c0", "output": f"found {EMAIL}"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": f"Your number is {PHONE}."}],
        },
        {"role": "user", "content": f"write to {EMAIL}"},
    ]
    answer = client(served).responses.create(model="gpt-test", input=items, tools=TOOLS)
    seen = new_requests(upstream, before)
    assert EMAIL not in seen
    assert "555 0133" not in seen
    assert answer.output_text == f"Noted: write to {EMAIL}"
    call = answer.output[1]
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"recipient": f"write to {EMAIL}"}


def test_a_stream_restores_deltas_and_repeats_them_whole(served: Served) -> None:
    stream = client(served).responses.create(
        model="gpt-test",
        input=f"mail {EMAIL} or call {PHONE}",
        instructions=f"Sign as {EMAIL}.",
        tools=TOOLS,
        stream=True,
    )
    events = list(stream)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    arguments = "".join(
        e.delta for e in events if e.type == "response.function_call_arguments.delta"
    )
    expected = f"mail {EMAIL} or call {PHONE}"
    assert text == f"Noted: {expected}"
    assert json.loads(arguments) == {"recipient": expected}
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == text
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == text
    assert completed.response.output[1].arguments == arguments  # type: ignore[union-attr]
    assert completed.response.instructions == events[0].response.instructions  # type: ignore[union-attr]
    assert completed.response.instructions == f"Sign as {EMAIL}."
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))


def test_the_sdk_stream_helper_gets_the_real_values(served: Served) -> None:
    with client(served).responses.stream(model="gpt-test", input=f"mail {EMAIL}") as stream:
        final = stream.get_final_response()
    assert final.output_text == f"Noted: mail {EMAIL}"


@pytest.mark.parametrize(
    "extra",
    [
        {"previous_response_id": "resp_earlier"},
        {"conversation": "conv_123"},
        {"background": True},
    ],
)
def test_what_veil_cannot_protect_is_refused_before_forwarding(
    served: Served, upstream: Upstream, extra: dict[str, Any]
) -> None:
    before = len(upstream.received)
    with pytest.raises(openai.BadRequestError) as caught:
        client(served).responses.create(model="gpt-test", input=f"mail {EMAIL}", **extra)
    assert caught.value.code == "unsupported_parameter"
    assert "input" in caught.value.message or "background" in caught.value.message
    assert len(upstream.received) == before


def test_a_stored_item_reference_is_refused(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    items: Any = [{"type": "item_reference", "id": "msg_abc"}, {"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError):
        client(served).responses.create(model="gpt-test", input=items)
    assert len(upstream.received) == before


def test_a_secret_in_the_input_never_reaches_the_upstream(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    token = "ghp_R8x2kLm9QwErTy7UiOp3AsDfGh5JkLz1XcVb"
    client(served).responses.create(model="gpt-test", input=f"use {token}")
    assert token not in new_requests(upstream, before)
    assert upstream.received[-1]["body"]["input"] == "use [GITHUB_TOKEN]"


def test_the_echo_upstream_answers_responses_with_what_a_provider_would_receive(
    tmp_path: Path,
) -> None:
    served = start_gateway(gateway_env(tmp_path))
    try:
        echo = client(served)
        answer = echo.responses.create(model="any-model", input=f"mail {EMAIL}")
        assert json.loads(answer.output_text)["input"] == "mail <EMAIL_1>"
        events = list(echo.responses.create(model="any-model", input="hi", stream=True))
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert json.loads(text)["input"] == "hi"
        assert events[-1].type == "response.completed"
    finally:
        served.stop()


def _streamed_entries(served: Served) -> tuple[list[dict[str, Any]], str]:
    result = served.veil("audit", "query", "--action", "gateway.responses")
    entries = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [e for e in entries if e["details"].get("stream")], result.stdout


def test_a_streamed_call_is_audited_with_its_usage_and_without_content(served: Served) -> None:
    before = len(_streamed_entries(served)[0])
    list(client(served).responses.create(model="gpt-test", input=f"hi {EMAIL}", stream=True))
    # A streamed call writes its entry when the stream ends: wait for it.
    for _ in range(50):
        entries, printed = _streamed_entries(served)
        if len(entries) > before:
            break
        time.sleep(0.1)
    assert len(entries) == before + 1
    assert entries[-1]["details"]["usage"]["total_tokens"] == 12
    assert entries[-1]["details"]["found"] == {"EMAIL": 1}
    assert EMAIL not in printed
