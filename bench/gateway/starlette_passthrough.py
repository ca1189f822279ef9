"""The floor for a gateway built like Veil's: Starlette on uvicorn (uvloop, httptools, as
`veil serve` runs), forwarding the body unchanged to the upstream with the same pooled
aiohttp client as `passthrough.py`, and returning (or streaming) the answer. Against
`passthrough.py` it measures what the framework itself costs.
Usage: python starlette_passthrough.py PORT UPSTREAM_BASE_URL"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = sys.argv[2].rstrip("/")
CLIENT: dict[str, aiohttp.ClientSession] = {}


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    CLIENT["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    yield
    await CLIENT["session"].close()


async def chat(request: Request) -> Response:
    body = await request.body()
    upstream = await CLIENT["session"].post(
        UPSTREAM + "/chat/completions", data=body, headers={"content-type": "application/json"}
    )
    if "text/event-stream" in upstream.headers.get("content-type", ""):

        async def relay() -> AsyncIterator[bytes]:
            async with upstream:
                async for chunk in upstream.content.iter_any():
                    yield chunk

        return StreamingResponse(relay(), media_type="text/event-stream")
    async with upstream:
        return Response(
            await upstream.read(), status_code=upstream.status, media_type="application/json"
        )


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/healthz", health)],
    lifespan=lifespan,
)
uvicorn.run(
    app,
    host="127.0.0.1",
    port=int(sys.argv[1]),
    log_level="warning",
    access_log=False,
    loop="uvloop",
    http="httptools",
)
