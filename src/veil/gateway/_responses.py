"""OpenAI's Responses API (``POST /v1/responses``): what a request and an answer hold that
a person wrote, and its server-sent events.

A Responses request carries the conversation as ``input`` items (messages with text
parts, function calls and their outputs, reasoning summaries); the answer's ``output``
holds the same kinds of items. Streams send each text as deltas and then again whole in
``*.done`` events and in the final ``response.completed``: the whole texts are replaced
by exactly what the client was sent as deltas, so the two never disagree.

Veil pseudonymizes each request on its own, so a request may not continue an answer the
provider stored (``previous_response_id``, ``conversation``, ``item_reference``): its
tokens would stand for another request's values. Background responses are polled at a
path Veil does not serve. These are refused with a message saying what to send instead.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from veil.gateway._protect import (
    Exchange,
    Slot,
    TextStream,
    _json_text,
    _openai_request_fields,
    _text,
    dumps,
    walk_strings,
)

# Keys of an item that name or link it rather than hold what someone wrote.
_STRUCTURAL = frozenset({"type", "id", "call_id", "status", "role", "name", "item_id"})

# Streamed texts: the delta event, its field, the done event and the field it repeats the
# whole text in; each text is one stream per (output item, part, field).
_DELTAS = {
    "response.output_text.delta": ("content_index", "text", False),
    "response.refusal.delta": ("content_index", "refusal", False),
    "response.reasoning_text.delta": ("content_index", "reasoning", False),
    "response.reasoning_summary_text.delta": ("summary_index", "summary", False),
    "response.function_call_arguments.delta": (None, "arguments", True),
    "response.custom_tool_call_input.delta": (None, "input", False),
}
_DONES = {
    "response.output_text.done": ("content_index", "text", "text"),
    "response.refusal.done": ("content_index", "refusal", "refusal"),
    "response.reasoning_text.done": ("content_index", "reasoning", "text"),
    "response.reasoning_summary_text.done": ("summary_index", "summary", "text"),
    "response.function_call_arguments.done": (None, "arguments", "arguments"),
    "response.custom_tool_call_input.done": (None, "input", "input"),
}
# The delta event of each field, for a delta Veil adds when it flushes held text.
_DELTA_OF = {field: kind for kind, (_, field, _) in _DELTAS.items()}
_PART_STREAMS = ("text", "refusal", "reasoning")  # the streams of a content part
_FINAL = ("response.completed", "response.incomplete", "response.failed")

StreamKey = tuple[int, int, str]  # (output_index, part index, field)


def unsupported(body: dict[str, Any]) -> str | None:
    """Why Veil cannot protect this request as asked (None when it can)."""
    if body.get("previous_response_id") or body.get("conversation"):
        return (
            "Veil pseudonymizes each request on its own, so it cannot continue a response "
            "stored at the provider (previous_response_id, conversation): send the whole "
            "conversation in 'input' instead, with the previous output items as they came back."
        )
    items = body.get("input")
    if isinstance(items, list) and any(
        isinstance(item, dict) and item.get("type") == "item_reference" for item in items
    ):
        return (
            "Veil cannot scan an item stored at the provider ('item_reference'): send the "
            "item itself in 'input'."
        )
    if body.get("background") is True:
        return (
            "Background responses are fetched later from /v1/responses/{id}, which Veil "
            "does not serve: leave 'background' out (stream instead for long answers)."
        )
    return None


def _parts(container: Any, key: Any, slots: list[Slot]) -> None:
    """A content field: a string, or parts whose ``text`` / ``refusal`` someone wrote."""
    content = container[key]
    if isinstance(content, str):
        slots.append((container, key))
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                for field in ("text", "refusal"):
                    if isinstance(part.get(field), str):
                        slots.append((part, field))


def _item(item: dict[str, Any], slots: list[Slot]) -> None:
    kind = item.get("type")
    if kind in (None, "message"):
        if "content" in item:
            _parts(item, "content", slots)
    elif kind == "function_call":
        if isinstance(item.get("arguments"), str):
            _json_text(item, "arguments", slots)
    elif kind in ("function_call_output", "custom_tool_call_output"):
        if "output" in item:
            _parts(item, "output", slots)
    elif kind == "custom_tool_call":
        if "input" in item:
            _text(item, "input", slots)
    elif kind == "reasoning":
        for field in ("summary", "content"):
            if isinstance(item.get(field), list):
                _parts(item, field, slots)
        # ``encrypted_content`` is the provider's own ciphertext: left as it is.
    else:
        # Any other item (a web or file search's results, a shell call's output, an MCP
        # call's arguments...): every string but those that name or link it.
        for key, value in item.items():
            if key in _STRUCTURAL:
                continue
            if isinstance(value, str):
                slots.append((item, key))
            else:
                walk_strings(value, slots)


def request_slots(body: dict[str, Any]) -> list[Slot]:
    slots: list[Slot] = []
    if "instructions" in body:
        _text(body, "instructions", slots)
    items = body.get("input")
    if isinstance(items, str):
        slots.append((body, "input"))
    elif isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                _item(item, slots)
    prompt = body.get("prompt")
    if isinstance(prompt, dict) and isinstance(prompt.get("variables"), dict):
        walk_strings(prompt["variables"], slots)  # values filled into a stored prompt
    _openai_request_fields(body, slots)
    return slots


def answer_slots(body: dict[str, Any]) -> list[Slot]:
    """A response object: its output items, and the request's instructions it repeats."""
    slots: list[Slot] = []
    if "instructions" in body:
        _text(body, "instructions", slots)
    for item in body.get("output") or []:
        if isinstance(item, dict):
            _item(item, slots)
    if isinstance(body.get("output_text"), str):  # some compatible servers add it
        slots.append((body, "output_text"))
    return slots


class ResponsesStream:
    """Restores and screens the texts of a Responses event stream (see the module)."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self._texts: dict[StreamKey, TextStream] = {}
        self._sent: dict[StreamKey, str] = {}  # what the client got of each text
        self._where: dict[StreamKey, dict[str, Any]] = {}  # ids for a flushed delta
        self._instructions: dict[str, str] = {}  # as sent -> as restored
        self._sequence = 0
        self.usage: dict[str, Any] | None = None

    def event(self, name: str | None, data: dict[str, Any]) -> list[tuple[str | None, Any]]:
        kind = str(data.get("type"))
        out: list[tuple[str | None, Any]] = []
        if kind in _DELTAS:
            index_field, field, json_text = _DELTAS[kind]
            key = self._key(data, index_field, field)
            if isinstance(data.get("delta"), str):
                stream = self._texts.get(key)
                if stream is None:
                    stream = self._texts[key] = self._exchange.text_stream(json_text=json_text)
                    self._where[key] = _ids(data, index_field)
                data["delta"] = self._sent_piece(key, stream.feed(data["delta"]))
        elif kind in _DONES:
            index_field, field, whole = _DONES[kind]
            key = self._key(data, index_field, field)
            flushed = self._flush(key)
            if flushed is not None:
                out.append(flushed)
            if isinstance(data.get(whole), str):
                data[whole] = self._whole(key, data[whole])
        elif kind in ("response.content_part.added", "response.content_part.done"):
            part = data.get("part")
            output_index = int(data.get("output_index") or 0)
            content_index = int(data.get("content_index") or 0)
            if kind.endswith(".done"):  # its texts are final: nothing may stay held back
                out += self._flush_where(output_index, content_index, *_PART_STREAMS)
            if isinstance(part, dict):
                for field in ("text", "refusal"):
                    if isinstance(part.get(field), str):
                        # A reasoning item's text parts stream as reasoning_text deltas.
                        name = "reasoning" if part.get("type") == "reasoning_text" else field
                        key = (output_index, content_index, name)
                        part[field] = self._whole(key, part[field])
        elif kind in (
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_part.done",
        ):
            part = data.get("part")
            output_index = int(data.get("output_index") or 0)
            summary_index = int(data.get("summary_index") or 0)
            if kind.endswith(".done"):
                out += self._flush_where(output_index, summary_index, "summary")
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                key = (output_index, summary_index, "summary")
                part["text"] = self._whole(key, part["text"])
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = data.get("item")
            output_index = int(data.get("output_index") or 0)
            if kind.endswith(".done"):
                out += self._flush_where(output_index)
            if isinstance(item, dict):
                self._restore_item(output_index, item)
        elif kind in (*_FINAL, "response.created", "response.in_progress", "response.queued"):
            response = data.get("response")
            if isinstance(response, dict):
                if kind in _FINAL:
                    out += self._flush_where()
                    if isinstance(response.get("usage"), dict):
                        self.usage = response["usage"]
                self._restore_response(response)
        out.append((name, data))
        for _, event in out:
            self._renumber(event)
        return out

    def finish(self) -> list[tuple[str | None, Any]]:
        """Delta events for text still held back (the stream ended without its done)."""
        out = self._flush_where()
        for _, event in out:
            self._renumber(event)
        return out

    def _flush_where(
        self, output_index: int | None = None, part: int | None = None, *fields: str
    ) -> list[tuple[str | None, Any]]:
        """Delta events for the texts still open: of one output item (one of its parts,
        of the given fields: a summary part and a content part share an index) or all."""
        out: list[tuple[str | None, Any]] = []
        for key in list(self._texts):
            if output_index is not None and key[0] != output_index:
                continue
            if part is not None and key[1] != part:
                continue
            if fields and key[2] not in fields:
                continue
            flushed = self._flush(key)
            if flushed is not None:
                out.append(flushed)
        return out

    # -- helpers ----------------------------------------------------------------

    @staticmethod
    def _key(data: dict[str, Any], index_field: str | None, field: str) -> StreamKey:
        part = int(data.get(index_field) or 0) if index_field is not None else 0
        return (int(data.get("output_index") or 0), part, field)

    def _sent_piece(self, key: StreamKey, piece: str) -> str:
        self._sent[key] = self._sent.get(key, "") + piece
        return piece

    def _flush(self, key: StreamKey) -> tuple[str | None, Any] | None:
        stream = self._texts.pop(key, None)
        if stream is None:
            return None
        rest = self._sent_piece(key, stream.close())
        if not rest:
            return None
        event = {"type": _DELTA_OF[key[2]], **self._where.pop(key, {}), "delta": rest}
        if key[2] == "text":
            event["logprobs"] = []  # as OpenAI's own text deltas carry
        return (event["type"], event)

    def _whole(self, key: StreamKey, text: str) -> str:
        """A whole text the stream repeats: what the client was sent as deltas, or (no
        deltas came for it) the text restored and screened as a whole."""
        if key in self._texts:  # deltas still held back: not final yet
            return self._sent.get(key, "")
        if key in self._sent:
            return self._sent[key]
        return self._exchange.answer_text(text, json_text=key[2] == "arguments")

    def _restore_item(self, output_index: int, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind in (None, "message"):
            for index, part in enumerate(item.get("content") or []):
                if isinstance(part, dict):
                    for field in ("text", "refusal"):
                        if isinstance(part.get(field), str):
                            part[field] = self._whole((output_index, index, field), part[field])
        elif kind == "function_call" and isinstance(item.get("arguments"), str):
            item["arguments"] = self._whole((output_index, 0, "arguments"), item["arguments"])
        elif kind == "custom_tool_call" and isinstance(item.get("input"), str):
            item["input"] = self._whole((output_index, 0, "input"), item["input"])
        elif kind == "reasoning":
            for field, name in (("summary", "summary"), ("content", "reasoning")):
                for index, part in enumerate(item.get(field) or []):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        part["text"] = self._whole((output_index, index, name), part["text"])
        else:
            slots: list[Slot] = []
            _item(item, slots)
            self._exchange.restore_slots(slots)

    def _restore_response(self, response: dict[str, Any]) -> None:
        instructions = response.get("instructions")
        if isinstance(instructions, str):
            # Repeated in every response event (created, in progress, completed): once.
            restored = self._instructions.get(instructions)
            if restored is None:
                restored = self._instructions[instructions] = self._exchange.answer_text(
                    instructions
                )
            response["instructions"] = restored
        for output_index, item in enumerate(response.get("output") or []):
            if isinstance(item, dict):
                self._restore_item(output_index, item)
        if isinstance(response.get("output_text"), str):
            response["output_text"] = self._exchange.answer_text(response["output_text"])

    def _renumber(self, event: Any) -> None:
        # Events Veil adds (flushed deltas) get numbers too: the client sees one sequence.
        if isinstance(event, dict) and "type" in event:
            event["sequence_number"] = self._sequence
            self._sequence += 1


def _ids(data: dict[str, Any], index_field: str | None) -> dict[str, Any]:
    keys = ["item_id", "output_index", *([index_field] if index_field else [])]
    return {key: data[key] for key in keys if key in data}


def stream_error(message: str, code: str) -> dict[str, Any]:
    """The ``error`` event that ends a Responses stream (the SDK raises it)."""
    return {"type": "error", "code": code, "message": message, "param": None}


# -- the echo upstream -------------------------------------------------------------------


def _echo_response(model: str, text: str, status: str) -> dict[str, Any]:
    tokens = max(1, len(text) // 4)
    output = (
        [
            {
                "type": "message",
                "id": "msg_echo",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ]
        if status == "completed"
        else []
    )
    return {
        "id": "resp_echo_" + secrets.token_hex(8),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": output,
        "usage": {"input_tokens": tokens, "output_tokens": tokens, "total_tokens": 2 * tokens}
        if status == "completed"
        else None,
    }


def echo_answer(model: str, text: str) -> bytes:
    return dumps(_echo_response(model, text, "completed"))


async def echo_stream(model: str, text: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The echo upstream's stream: the events OpenAI sends for one text answer."""
    started = _echo_response(model, text, "in_progress")
    ids = {"item_id": "msg_echo", "output_index": 0}
    part = {"type": "output_text", "text": "", "annotations": []}
    message = {"type": "message", "id": "msg_echo", "status": "in_progress", "role": "assistant"}
    yield "response.created", {"type": "response.created", "response": started}
    yield (
        "response.output_item.added",
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message, "content": []},
        },
    )
    yield (
        "response.content_part.added",
        {
            "type": "response.content_part.added",
            **ids,
            "content_index": 0,
            "part": part,
        },
    )
    for start in range(0, len(text), 16):
        yield (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                **ids,
                "content_index": 0,
                "delta": text[start : start + 16],
            },
        )
    yield (
        "response.output_text.done",
        {
            "type": "response.output_text.done",
            **ids,
            "content_index": 0,
            "text": text,
        },
    )
    whole = {**part, "text": text}
    yield (
        "response.content_part.done",
        {
            "type": "response.content_part.done",
            **ids,
            "content_index": 0,
            "part": whole,
        },
    )
    yield (
        "response.output_item.done",
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**message, "status": "completed", "content": [whole]},
        },
    )
    done = {**started, "status": "completed", **_echo_response(model, text, "completed")}
    done["id"] = started["id"]
    yield "response.completed", {"type": "response.completed", "response": done}
