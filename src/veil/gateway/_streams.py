"""Server-sent event streams: OpenAI chat/completions chunks and Anthropic message events.

Each streamed text (per choice, per tool call, per content block) has its own
:class:`TextStream`; text held back at a chunk boundary goes out with a later chunk, and
whatever is left when a choice or block finishes is flushed into the finishing event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from veil.gateway._protect import Exchange, TextStream


async def sse_events(lines: AsyncIterator[bytes]) -> AsyncIterator[tuple[str | None, str]]:
    """``(event name, data)`` for each event of an SSE byte stream (split into lines)."""
    name: str | None = None
    data: list[str] = []
    async for raw in lines:
        # A byte that is not UTF-8 (a provider's bug) becomes U+FFFD, not a broken stream.
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = None, []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            name = line[6:].strip()
    if data:
        yield name, "\n".join(data)


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    try:
        return f"{head}data: {payload}\n\n".encode()
    except UnicodeEncodeError:
        # A lone surrogate escape (`"\ud800"`) parsed from an event: valid JSON, not
        # UTF-8; written as an escape again, as the upstream sent it.
        return f"{head}data: {json.dumps(data)}\n\n".encode()


class OpenAIStream:
    """Chat and completions chunks: ``choices[].delta.content`` and ``.refusal``,
    ``delta.tool_calls[].function.arguments`` and ``choices[].text``."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self._texts: dict[tuple[int, str, int], TextStream] = {}
        self._last: dict[str, Any] | None = None
        self.usage: dict[str, Any] | None = None

    def _stream(self, key: tuple[int, str, int]) -> TextStream:
        stream = self._texts.get(key)
        if stream is None:
            # a tool call's arguments are JSON text (values restored JSON-escaped)
            stream = self._texts[key] = self._exchange.text_stream(json_text=key[1] == "tool")
        return stream

    def _flush_choice(self, index: int, choice: dict[str, Any]) -> None:
        for key in [k for k in self._texts if k[0] == index]:
            rest = self._texts.pop(key).close()
            if not rest:
                continue
            _, field, tool = key
            if field == "text":
                choice["text"] = choice.get("text", "") + rest
            elif field in ("content", "refusal"):
                delta = choice.setdefault("delta", {})
                delta[field] = (delta.get(field) or "") + rest
            else:
                delta = choice.setdefault("delta", {})
                calls = delta.setdefault("tool_calls", [])
                calls.append({"index": tool, "function": {"arguments": rest}})

    def chunk(self, data: dict[str, Any]) -> dict[str, Any]:
        self._last = data
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index = int(choice.get("index", 0))
            if isinstance(choice.get("text"), str):
                choice["text"] = self._stream((index, "text", 0)).feed(choice["text"])
            delta = choice.get("delta")
            if isinstance(delta, dict):
                for field in ("content", "refusal"):  # a refusal may quote the prompt
                    if isinstance(delta.get(field), str):
                        delta[field] = self._stream((index, field, 0)).feed(delta[field])
                for call in delta.get("tool_calls") or []:
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                        key = (index, "tool", int(call.get("index", 0)))
                        function["arguments"] = self._stream(key).feed(function["arguments"])
            if choice.get("finish_reason") is not None:
                self._flush_choice(index, choice)
        return data

    def finish(self) -> dict[str, Any] | None:
        """A last chunk carrying text still held back when the stream ended without
        ``finish_reason`` (or ``None``)."""
        if not self._texts or self._last is None:
            return None
        template = {k: v for k, v in self._last.items() if k not in ("choices", "usage")}
        choices: list[dict[str, Any]] = []
        for index in sorted({key[0] for key in self._texts}):
            choice: dict[str, Any] = {"index": index, "delta": {}, "finish_reason": None}
            self._flush_choice(index, choice)
            if choice["delta"] or "text" in choice:
                choices.append(choice)
        return {**template, "choices": choices} if choices else None


class AnthropicStream:
    """Messages events: ``content_block_delta`` with ``text_delta``, ``input_json_delta``
    (tool input) or ``thinking_delta``, flushed before ``content_block_stop``; and
    ``citations_delta``, whose citation comes whole."""

    _FIELDS: ClassVar[dict[str, str]] = {
        "text_delta": "text",
        "input_json_delta": "partial_json",
        "thinking_delta": "thinking",
    }

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self._texts: dict[int, tuple[str, str, TextStream]] = {}
        self.input_tokens = 0
        self.output_tokens = 0

    def event(self, name: str | None, data: dict[str, Any]) -> list[tuple[str | None, Any]]:
        kind = data.get("type")
        out: list[tuple[str | None, Any]] = []
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            self.input_tokens = int(usage.get("input_tokens") or 0)
        elif kind == "message_delta":
            self.output_tokens = int((data.get("usage") or {}).get("output_tokens") or 0)
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            field = self._FIELDS.get(str(delta.get("type")))
            if field is not None and isinstance(delta.get(field), str):
                index = int(data.get("index", 0))
                entry = self._texts.get(index)
                if entry is None:
                    entry = self._texts[index] = (
                        str(delta["type"]),
                        field,
                        self._exchange.text_stream(json_text=field == "partial_json"),
                    )
                delta[field] = entry[2].feed(delta[field])
            elif delta.get("type") == "citations_delta" and isinstance(delta.get("citation"), dict):
                # A citation arrives whole: the document's words it quotes, restored.
                citation = delta["citation"]
                for key in ("cited_text", "document_title", "title"):
                    if isinstance(citation.get(key), str):
                        citation[key] = self._exchange.answer_text(citation[key])
        elif kind == "content_block_stop":
            flushed = self._flush(int(data.get("index", 0)))
            if flushed is not None:
                out.append(("content_block_delta", flushed))
        out.append((name, data))
        return out

    def _flush(self, index: int) -> dict[str, Any] | None:
        entry = self._texts.pop(index, None)
        if entry is None:
            return None
        delta_type, field, stream = entry
        rest = stream.close()
        if not rest:
            return None
        return {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": delta_type, field: rest},
        }

    def finish(self) -> list[dict[str, Any]]:
        return [event for index in list(self._texts) if (event := self._flush(index))]
