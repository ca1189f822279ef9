"""A real upstream HTTP server on 127.0.0.1 that records every body it receives, and
real ``veil serve`` processes in front of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest

VEIL = str(Path(sys.executable).with_name("veil"))
UPSTREAM_KEY = "sk-upstream-0123456789abcdefghij0123456789"
CHUNK = 3  # stream chunk size: cuts through every pseudonym token


def _last_user_text(body: dict[str, Any]) -> str:
    texts: list[str] = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p.get("text", "") for p in content if isinstance(p, dict) and "text" in p]
    return texts[-1] if texts else ""


def _responses_input_text(body: dict[str, Any]) -> str:
    """The last user text of a Responses API request's ``input``."""
    items = body.get("input")
    if isinstance(items, str):
        return items
    users = [i for i in items or [] if isinstance(i, dict) and i.get("role") == "user"]
    return _last_user_text({"messages": users[-1:]})


def reply_for(body: dict[str, Any]) -> str:
    """What the fake model answers: the prompt it saw, repeated."""
    text = _last_user_text(body) if "messages" in body else str(body.get("prompt"))
    reply = f"Noted: {text}"
    if "[[new-pii]]" in text:
        reply += " You could also write to dana.new@example.org."
    if "[[new-name]]" in text:
        reply += " Margaret Thompson has the keys."
    if "[[html]]" not in text and "[[escaped]]" in text:  # a model writing HTML / Markdown
        reply = reply.replace("<EMAIL_1>", "&lt;EMAIL_1&gt;").replace("<EMAIL_3>", "EMAIL_3")
        reply = reply.replace("<EMAIL_2>", "\\<EMAIL_2\\>")
    return reply


def _citation(body: dict[str, Any]) -> dict[str, Any] | None:
    """A citation of the first document of the last message, quoting its text as the
    model received it (``[[cite]]``)."""
    content = (body.get("messages") or [{}])[-1].get("content")
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict) and block.get("type") == "document":
            source = block.get("source") or {}
            parts = source.get("content") if source.get("type") == "content" else None
            text = source.get("data") or " ".join(p.get("text", "") for p in parts or [])
            return {
                "type": "char_location",
                "cited_text": text,
                "document_index": 0,
                "document_title": block.get("title"),
                "start_char_index": 0,
                "end_char_index": len(text),
            }
    return None


class _Handler(BaseHTTPRequestHandler):
    server: Upstream.Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send_json(self, data: Any, status: int = 200) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._send_json({"object": "list", "data": [{"id": "gpt-test", "object": "model"}]})
        else:
            self._send_json({"error": "not found"}, 404)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        body = json.loads(raw)
        self.server.owner.received.append(
            {"path": self.path, "headers": dict(self.headers), "body": body, "raw": raw.decode()}
        )
        if "[[slow]]" in raw.decode():
            time.sleep(3)
        for marker, status in (("[[html]]", 200), ("[[html-503]]", 503)):
            if marker in raw.decode():  # a broken provider or a proxy's error page
                page = b"<html><body>Service Unavailable</body></html>"
                self.send_response(status)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
        if self.path == "/v1/embeddings":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            self._send_json(
                {
                    "object": "list",
                    "model": body["model"],
                    "data": [
                        {"object": "embedding", "index": i, "embedding": [0.1, 0.2]}
                        for i in range(len(inputs))
                    ],
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                }
            )
        elif self.path == "/v1/messages":
            self._messages(body)
        elif self.path == "/v1/messages/count_tokens":
            self._send_json({"input_tokens": len(raw) // 4})
        elif self.path == "/v1/responses":
            self._responses(body)
        elif self.path in ("/v1/chat/completions", "/v1/completions"):
            self._openai(body, chat=self.path.endswith("chat/completions"))
        else:
            self._send_json({"error": "not found"}, 404)

    def _tool_args(self, body: dict[str, Any]) -> str | None:
        if not body.get("tools"):
            return None
        args = json.dumps({"recipient": _last_user_text(body)})
        if "[[go-json]]" in args:  # as Go's encoder writes them (Ollama): <, > and & escaped
            args = args.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return args

    def _openai(self, body: dict[str, Any], *, chat: bool) -> None:
        reply = reply_for(body)
        args = self._tool_args(body)
        if not body.get("stream"):
            if chat:
                message: dict[str, Any] = {"role": "assistant", "content": reply}
                if args is not None:
                    message["tool_calls"] = [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "send", "arguments": args},
                        }
                    ]
                choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop"}
            else:
                choice = {"index": 0, "text": reply, "finish_reason": "stop", "logprobs": None}
            self._send_json(
                {
                    "id": "x1",
                    "object": "chat.completion" if chat else "text_completion",
                    "created": 1,
                    "model": body["model"],
                    "choices": [choice],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
                }
            )
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        base = {"id": "x1", "created": 1, "model": body["model"]}
        pieces = [reply[i : i + CHUNK] for i in range(0, len(reply), CHUNK)]
        drip = "[[drip]]" in reply  # a slow model: the client can leave mid-answer
        for piece in pieces:
            if drip:
                time.sleep(0.02)
            if chat:
                field = "refusal" if "[[refuse]]" in reply else "content"
                chunk = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {field: piece}, "finish_reason": None}],
                }
            else:
                chunk = {
                    **base,
                    "object": "text_completion",
                    "choices": [{"index": 0, "text": piece, "finish_reason": None}],
                }
            self._event(chunk)
        if chat and args is not None:
            for i in range(0, len(args), CHUNK):
                call: dict[str, Any] = {"index": 0, "function": {"arguments": args[i : i + CHUNK]}}
                if i == 0:
                    call.update({"id": "call_1", "type": "function"})
                    call["function"]["name"] = "send"
                self._event(
                    {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [
                            {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
                        ],
                    }
                )
        if "[[no-end]]" in reply:  # an upstream that just closes: no finish_reason, no [DONE]
            return
        final: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        final.update({"delta": {}} if chat else {"text": ""})
        self._event({**base, "object": "chat.completion.chunk", "choices": [final]})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _responses(self, body: dict[str, Any]) -> None:
        """OpenAI's Responses API: a message repeating the input's last user text, and a
        function call when tools are given; streamed as OpenAI streams it, every delta
        cut to CHUNK characters."""
        text = _responses_input_text(body)
        reply = reply_for({"messages": [{"role": "user", "content": text}]})
        args = json.dumps({"recipient": text}) if body.get("tools") else None
        message = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant"}
        part = {"type": "output_text", "text": reply, "annotations": []}
        output: list[dict[str, Any]] = [{**message, "content": [part]}]
        call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "send"}
        if args is not None:
            output.append({**call, "arguments": args, "status": "completed"})
        response = {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "status": "completed",
            "model": body["model"],
            "instructions": body.get("instructions"),
            "output": output,
            "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12},
        }
        if not body.get("stream"):
            self._send_json(response)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        number = iter(range(1_000_000))

        def event(kind: str, **fields: Any) -> None:
            self._event({"type": kind, "sequence_number": next(number), **fields}, kind)

        started = {**response, "status": "in_progress", "output": [], "usage": None}
        event("response.created", response=started)
        event("response.output_item.added", output_index=0, item={**message, "content": []})
        ids = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        event("response.content_part.added", **ids, part={**part, "text": ""})
        for i in range(0, len(reply), CHUNK):
            event("response.output_text.delta", **ids, delta=reply[i : i + CHUNK])
        event("response.output_text.done", **ids, text=reply)
        event("response.content_part.done", **ids, part=part)
        event("response.output_item.done", output_index=0, item=output[0])
        if args is not None:
            added = {**call, "arguments": "", "status": "in_progress"}
            event("response.output_item.added", output_index=1, item=added)
            for i in range(0, len(args), CHUNK):
                piece = args[i : i + CHUNK]
                event(
                    "response.function_call_arguments.delta",
                    item_id="fc_1",
                    output_index=1,
                    delta=piece,
                )
            event(
                "response.function_call_arguments.done",
                item_id="fc_1",
                output_index=1,
                arguments=args,
            )
            event("response.output_item.done", output_index=1, item=output[1])
        event("response.completed", response=response)

    def _event(self, data: Any, name: str | None = None) -> None:
        head = f"event: {name}\n" if name else ""
        self.wfile.write(f"{head}data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def _messages(self, body: dict[str, Any]) -> None:
        reply = reply_for(body)
        citation = _citation(body) if "[[cite]]" in reply else None
        if not body.get("stream"):
            block: dict[str, Any] = {"type": "text", "text": reply}
            if citation is not None:
                block["citations"] = [citation]
            self._send_json(
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [block],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 5, "output_tokens": 7},
                }
            )
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        self._event(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 5, "output_tokens": 1},
                },
            },
            "message_start",
        )
        self._event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        )
        for i in range(0, len(reply), CHUNK):
            self._event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": reply[i : i + CHUNK]},
                },
                "content_block_delta",
            )
        if citation is not None:
            self._event(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "citations_delta", "citation": citation},
                },
                "content_block_delta",
            )
        self._event({"type": "content_block_stop", "index": 0}, "content_block_stop")
        self._event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
            "message_delta",
        )
        self._event({"type": "message_stop"}, "message_stop")


@dataclass
class Upstream:
    """The fake provider; ``received`` holds every request it got."""

    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    class Server(ThreadingHTTPServer):
        owner: Upstream
        daemon_threads = True

    def start(self) -> Upstream:
        self._server = self.Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def everything_received(self) -> str:
        return "\n".join(item["raw"] for item in self.received)


@dataclass
class Served:
    """A running ``veil serve`` process."""

    process: subprocess.Popen[str]
    url: str
    key: str
    env: dict[str, str]
    report: dict[str, Any]

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")

    def veil(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [VEIL, *args],
            env=self.env,
            cwd=self.env["VEIL_HOME"],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def create_key(self, *args: str) -> str:
        result = self.veil("keys", "create", "--json", *args)
        assert result.returncode == 0, result.stderr
        return str(json.loads(result.stdout)["key"])

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


_PATCH_ON_IMPORT = """
import importlib.abc, importlib.util, sys

class PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
PATCH
        spec.loader.exec_module = exec_module
        return spec

if CONDITION:
    sys.meta_path.insert(0, PatchOnImport())
"""


def patch_on_import(folder: Path, module: str, patch: str, condition: str = "True") -> str:
    """A folder for PYTHONPATH whose ``sitecustomize`` runs ``patch`` (Python code, with
    ``module`` bound) right after ``module`` is first imported, in every Python process
    started with it where ``condition`` holds: a fault injected into the real server."""
    folder.mkdir(parents=True)
    code = (
        _PATCH_ON_IMPORT.replace("MODULE", repr(module))
        .replace("CONDITION", condition)
        .replace("PATCH", textwrap.indent(textwrap.dedent(patch).strip(), " " * 12))
    )
    (folder / "sitecustomize.py").write_text(code)
    return str(folder)


def gateway_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VEIL_") or k.startswith(("VEIL_TEST_", "VEIL_REQUIRE"))
    }
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        env.pop(name, None)
    home.mkdir(parents=True, exist_ok=True)
    env.update({"VEIL_HOME": str(home / "state"), "VEIL_ENV_FILE": str(home / ".env")})
    env.update(extra)
    return env


def serve_refusing_to_start(
    env: dict[str, str], port: int = 0, *args: str
) -> subprocess.CompletedProcess[str]:
    """``veil serve`` (with ``args``) run to its exit, for start-up errors."""
    return subprocess.run(
        [VEIL, "serve", "--port", str(port), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start_gateway(env: dict[str, str], *args: str) -> Served:
    process = subprocess.Popen(
        [VEIL, "serve", "--port", "0", "--json", *args],
        env=env,
        cwd=env["VEIL_HOME"].rsplit("/", 1)[0],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.rstrip() == "}":
            break
    if not lines or lines[-1].rstrip() != "}":
        process.kill()
        raise AssertionError("veil serve did not start: " + process.stderr.read()[-2000:])
    report = json.loads("".join(lines))
    served = Served(process, report["url"], report["virtual_key"], env, report)
    _wait_healthy(served)
    return served


def _wait_healthy(served: Served) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(served.root + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``veil serve`` in front of the recording upstream (OpenAI and Anthropic)."""
    env = gateway_env(
        tmp_path_factory.mktemp("gateway"),
        OPENAI_BASE_URL=upstream.url + "/v1",
        ANTHROPIC_BASE_URL=upstream.url,
        OPENAI_API_KEY=UPSTREAM_KEY,
        ANTHROPIC_API_KEY=UPSTREAM_KEY,
        VEIL_MAX_BODY_BYTES="65536",
        VEIL_UPSTREAM_TIMEOUT="1.5",
    )
    gateway = start_gateway(env)
    yield gateway
    gateway.stop()


def openai_client(served: Served, key: str | None = None) -> openai.OpenAI:
    """The official OpenAI SDK pointed at ``served`` (no retries: each call is one)."""
    return openai.OpenAI(base_url=served.url, api_key=key or served.key, max_retries=0)


def new_requests(upstream: Upstream, before: int) -> str:
    """Every body the upstream received after the first ``before``, as sent."""
    return "\n".join(item["raw"] for item in upstream.received[before:])
