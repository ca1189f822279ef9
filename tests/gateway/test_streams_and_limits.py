"""Stream restoration across arbitrary chunk boundaries, limits and virtual keys."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from veil.config import load_settings
from veil.errors import InputError
from veil.gateway import Limit, MemoryLimiter, VirtualKeys
from veil.gateway import _responses as responses
from veil.gateway._protect import Exchange, chat_request_slots
from veil.gateway._streams import AnthropicStream, OpenAIStream
from veil.keys import KeyStore, RootKey
from veil.store import open_engine, virtual_keys
from veil.transform import Redactor, default_policy, shared_detector

VALUES = ["ana.silva@example.com", "+1 415 555 0133", "4111 1111 1111 1111", "198.51.100.7"]
WORDS = ["alpha", "beta", "gamma", "delta", "(", ")", ",", ".", "\n", "  "]


def exchange() -> Exchange:
    detector = shared_detector()
    policy = default_policy()
    return Exchange(
        Redactor(detector=detector, policy=policy, surface="gateway"),
        Redactor(detector=detector, policy=policy, surface="answer"),
    )


def pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(max(c, 0), len(text)) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


answer_texts = st.lists(st.sampled_from(WORDS + VALUES), min_size=1, max_size=12).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(text=answer_texts, cuts=st.lists(st.integers(0, 300), max_size=30))
def test_openai_stream_restores_whatever_the_chunk_boundaries(text: str, cuts: list[int]) -> None:
    ex = exchange()
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    ex.protect(chat_request_slots(body))
    tokenized = body["messages"][0]["content"]
    stream = OpenAIStream(ex)
    out = ""
    for piece in pieces(tokenized, cuts):
        chunk = stream.chunk({"choices": [{"index": 0, "delta": {"content": piece}}]})
        out += chunk["choices"][0]["delta"]["content"]
    final = stream.chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    out += final["choices"][0]["delta"].get("content", "")
    assert out == text


@settings(max_examples=60, deadline=None)
@given(text=answer_texts, cuts=st.lists(st.integers(0, 300), max_size=30))
def test_responses_stream_restores_whatever_the_chunk_boundaries(
    text: str, cuts: list[int]
) -> None:
    ex = exchange()
    body: dict[str, Any] = {"input": text}
    ex.protect(responses.request_slots(body))
    tokenized = body["input"]
    stream = responses.ResponsesStream(ex)
    ids = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    upstream: list[dict[str, Any]] = [
        {"type": "response.output_text.delta", **ids, "delta": piece}
        for piece in pieces(tokenized, cuts)
    ]
    part = {"type": "output_text", "text": tokenized}
    item = {"type": "message", "role": "assistant", "content": [part]}
    upstream += [
        {"type": "response.output_text.done", **ids, "text": tokenized},
        {"type": "response.content_part.done", **ids, "part": dict(part)},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": {"output": [item]}},
    ]
    out = [event for data in upstream for _, event in stream.event(data["type"], data)]
    sent = "".join(e["delta"] for e in out if e["type"] == "response.output_text.delta")
    assert sent == text
    assert next(e for e in out if e["type"] == "response.output_text.done")["text"] == text
    assert out[-1]["response"]["output"][0]["content"][0]["text"] == text
    assert [e["sequence_number"] for e in out] == list(range(len(out)))


def test_responses_reasoning_summaries_are_restored_and_repeated_whole() -> None:
    ex = exchange()
    body: dict[str, Any] = {"input": f"mail {VALUES[0]}"}
    ex.protect(responses.request_slots(body))
    stream = responses.ResponsesStream(ex)
    ids = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
    upstream = [
        {"type": "response.reasoning_summary_text.delta", **ids, "delta": "User wants <EMA"},
        {"type": "response.reasoning_summary_text.delta", **ids, "delta": "IL_1"},
        {"type": "response.reasoning_summary_part.done", **ids, "part": {"text": "x"}},
    ]
    out = [event for data in upstream for _, event in stream.event(data["type"], data)]
    deltas = [e["delta"] for e in out if e["type"].endswith("summary_text.delta")]
    assert "".join(deltas) == f"User wants {VALUES[0]}"
    assert out[-1]["part"]["text"] == f"User wants {VALUES[0]}"


def test_anthropic_stream_flushes_held_text_before_the_block_stops() -> None:
    ex = exchange()
    body: dict[str, Any] = {"messages": [{"role": "user", "content": f"mail {VALUES[0]}"}]}
    ex.protect(chat_request_slots(body))
    stream = AnthropicStream(ex)
    out = []
    for piece in ("to <EMA", "IL_1>", ">"):
        event = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": piece},
        }
        out += stream.event("content_block_delta", event)
    out += stream.event("content_block_stop", {"type": "content_block_stop", "index": 0})
    text = "".join(e["delta"]["text"] for name, e in out if name == "content_block_delta")
    assert text == f"to {VALUES[0]}>"
    assert out[-1][0] == "content_block_stop"


def test_numbers_written_with_spaces_are_screened_whole_in_a_stream() -> None:
    ex = exchange()
    ex.protect([])
    stream = ex.text_stream()
    out = "".join(stream.feed(p) for p in ("call +1 415", " 555 ", "0199 now.")) + stream.close()
    assert "555 0199" not in out
    assert out.startswith("call ")


def test_memory_limiter_takes_until_empty_then_says_how_long_to_wait() -> None:
    limiter = MemoryLimiter()
    limit = Limit.parse("2/min", "rate")

    async def run() -> list[float]:
        return [await limiter.apply("k", limit, 1, "take") for _ in range(3)]

    first, second, third = asyncio.run(run())
    assert first == second == 0
    assert 29 < third <= 30


def test_token_budget_goes_below_zero_when_charged_and_then_refuses() -> None:
    limiter = MemoryLimiter()
    limit = Limit.parse("100/day", "token")

    async def run() -> tuple[float, float]:
        allowed = await limiter.apply("k", limit, 1, "check")
        await limiter.apply("k", limit, 150, "charge")
        return allowed, await limiter.apply("k", limit, 1, "check")

    allowed, refused = asyncio.run(run())
    assert allowed == 0
    assert refused > 3600


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60/min", 60), ("60/MIN", 60), ("5/seconds", 1), ("10 / hrs", 3600), ("1000/Day", 86400)],
)
def test_limits_read_the_usual_ways_of_writing_a_period(text: str, seconds: int) -> None:
    # 60/MIN and 5/seconds were refused.
    assert Limit.parse(text, "rate").period == seconds


@pytest.mark.parametrize("text", ["", "0/min", "10/week", "ten/min", "-5/s", "5/ms"])
def test_bad_limits_are_refused_with_the_format(text: str) -> None:
    with pytest.raises(InputError, match="per second, minute, hour or day"):
        Limit.parse(text, "rate")


def _store() -> VirtualKeys:
    engine = open_engine(load_settings())
    return VirtualKeys(engine, KeyStore(engine, RootKey(os.urandom(32))))


def test_virtual_key_is_stored_only_as_a_keyed_hash() -> None:
    store = _store()
    key, token = store.create("app", models=["gpt-*"], rate="5/s")
    with store._engine.connect() as connection:
        row = connection.execute(select(virtual_keys)).one()
    assert token.encode() not in bytes(row.key_hash)
    secret = token.split("-", 3)[3]  # sk-veil-<id>-<secret>; the secret may hold "-"
    assert len(secret) >= 32
    assert secret not in repr(row)
    assert store.authenticate(token) == key
    assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert key.allows("gpt-4o")
    assert not key.allows("claude-3")


def test_unknown_policy_name_is_refused_at_creation(tmp_path: Any) -> None:
    with pytest.raises(InputError, match="No policy named 'nope'"):
        _store().create("app", policy="nope", home=tmp_path)


def test_a_stream_line_that_is_not_utf8_does_not_break_the_stream() -> None:
    from veil.gateway._streams import sse_events

    async def lines() -> AsyncIterator[bytes]:
        for line in (b'data: {"a": "\xff"}\n', b"\n", b"data: [DONE]\n", b"\n"):
            yield line

    async def collect() -> list[tuple[str | None, str]]:
        return [event async for event in sse_events(lines())]

    assert asyncio.run(collect()) == [(None, '{"a": "\ufffd"}'), (None, "[DONE]")]


def test_a_flood_of_made_up_keys_costs_a_bounded_number_of_queries() -> None:
    from sqlalchemy import event

    store = _store()
    key, token = store.create("app")
    assert store.authenticate(token) == key  # in use: cached
    queries: list[str] = []
    event.listen(store._engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    made_up = [f"sk-veil-{n:012x}-{'x' * 40}" for n in range(500)]
    assert all(store.authenticate(fake) is None for fake in made_up)
    lookups = [q for q in queries if q.lstrip().upper().startswith("SELECT")]
    assert len(lookups) <= 50  # one second's budget of unknown ids, not one per request
    assert store.authenticate(token) == key  # the key in use still works meanwhile
