"""The benchmark's upstream: an OpenAI-compatible server on 127.0.0.1 (aiohttp) that
answers at once, repeating the last user message (so Veil has tokens to restore).
Usage: python upstream.py PORT"""

from __future__ import annotations

import json
import sys

from aiohttp import web


def _reply(body: dict) -> str:
    return "Noted: " + str(body["messages"][-1]["content"])[:300]


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    reply = _reply(body)
    if not body.get("stream"):
        return web.json_response(
            {
                "id": "b1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 250, "completion_tokens": 80, "total_tokens": 330},
            }
        )
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    base = {"id": "b1", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
    for i in range(0, len(reply), 8):
        chunk = {
            **base,
            "choices": [
                {"index": 0, "delta": {"content": reply[i : i + 8]}, "finish_reason": None}
            ],
        }
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
    done = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    await response.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
    return response


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "gpt-bench", "object": "model"}]})


app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
app.router.add_get("/v1/models", models)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
