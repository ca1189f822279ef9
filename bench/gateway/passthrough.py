"""The floor for any Python gateway: an aiohttp server that forwards the body unchanged to
the upstream with a pooled aiohttp client and returns (or streams) the answer.
Usage: python passthrough.py PORT UPSTREAM_BASE_URL"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web

UPSTREAM = sys.argv[2].rstrip("/")


async def startup(app: web.Application) -> None:
    app["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))


async def cleanup(app: web.Application) -> None:
    await app["client"].close()


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    client: aiohttp.ClientSession = request.app["client"]
    async with client.post(
        UPSTREAM + "/chat/completions", data=body, headers={"content-type": "application/json"}
    ) as upstream:
        if "text/event-stream" in upstream.headers.get("content-type", ""):
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            return response
        return web.Response(
            body=await upstream.read(), status=upstream.status, content_type="application/json"
        )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


app = web.Application()
app.on_startup.append(startup)
app.on_cleanup.append(cleanup)
app.router.add_post("/v1/chat/completions", chat)
app.router.add_get("/healthz", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
