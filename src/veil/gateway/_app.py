"""The gateway application: authenticate → limit → detect → apply the key's policy →
forward → restore (streams included) → screen the answer → one audit entry."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import aiohttp
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from veil import __version__
from veil.analytics import EventStore
from veil.audit import Ledger
from veil.config import Settings
from veil.detect import Detector, kind_info
from veil.errors import PolicyViolationError, StorageError, VeilError, failure_place
from veil.gateway import _responses as responses
from veil.gateway._limits import Limiter, MemoryLimiter, retry_after
from veil.gateway._metrics import Metrics, SharedMetrics
from veil.gateway._policies import Policies, PolicyRedactors
from veil.gateway._protect import (
    Exchange,
    FindingsCache,
    Slot,
    chat_answer_slots,
    chat_request_slots,
    dumps,
    messages_answer_slots,
    messages_request_slots,
    prompt_slots,
)
from veil.gateway._streams import AnthropicStream, OpenAIStream, sse, sse_events
from veil.gateway._upstreams import (
    Router,
    Upstream,
    UpstreamClient,
    UpstreamError,
    upstream_error_of,
)
from veil.gateway._virtual_keys import VirtualKey, VirtualKeys
from veil.keys import KeyStore
from veil.transform import PolicyStore

log = logging.getLogger("veil.gateway")
Api = Literal["openai", "anthropic"]


@dataclass(frozen=True)
class Endpoint:
    name: str
    upstream_path: str
    api: Api
    request_slots: Callable[[dict[str, Any]], list[Slot]]
    answer_slots: Callable[[dict[str, Any]], list[Slot]] | None
    pseudonymize: bool = True
    # Why a request cannot be protected as asked (a 400), or None: see _responses.
    unsupported: Callable[[dict[str, Any]], str | None] | None = None


ENDPOINTS = {
    "chat": Endpoint(
        "chat.completions", "/chat/completions", "openai", chat_request_slots, chat_answer_slots
    ),
    "completions": Endpoint(
        "completions",
        "/completions",
        "openai",
        lambda body: prompt_slots(body, "prompt"),
        chat_answer_slots,
    ),
    "embeddings": Endpoint(
        "embeddings",
        "/embeddings",
        "openai",
        lambda body: prompt_slots(body, "input"),
        None,
        pseudonymize=False,
    ),
    "responses": Endpoint(
        "responses",
        "/responses",
        "openai",
        responses.request_slots,
        responses.answer_slots,
        unsupported=responses.unsupported,
    ),
    "messages": Endpoint(
        "messages", "/v1/messages", "anthropic", messages_request_slots, messages_answer_slots
    ),
    # Anthropic's token counting: the same request, pseudonymized the same way (a
    # pseudonym counts about as many tokens as the value), answered with a count.
    "count_tokens": Endpoint(
        "messages.count_tokens",
        "/v1/messages/count_tokens",
        "anthropic",
        messages_request_slots,
        None,
    ),
}

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


class GatewayError(Exception):
    """A refusal with an HTTP status, a provider-style error body and an audit outcome."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        outcome: str = "error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.outcome = outcome
        self.headers = headers or {}


def error_response(api: Api, error: GatewayError) -> JSONResponse:
    if api == "anthropic":
        kind = _ANTHROPIC_TYPES.get(error.status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": error.message}}
    else:
        kind = _OPENAI_TYPES.get(error.status, "server_error")
        body = {
            "error": {"message": error.message, "type": kind, "param": None, "code": error.code}
        }
    return JSONResponse(body, status_code=error.status, headers=error.headers)


_SERVED = (
    "POST /v1/chat/completions, /v1/responses, /v1/completions, /v1/embeddings, "
    "/v1/messages and /v1/messages/count_tokens; GET /v1/models, /healthz and /metrics"
)


def _client_api(request: Request) -> Api:
    """Which provider's shapes the client expects: Anthropic's SDK sends its version."""
    if "anthropic-version" in request.headers or request.url.path.startswith("/v1/messages"):
        return "anthropic"
    return "openai"


def _model_object(api: Api, name: str) -> dict[str, Any]:
    if api == "anthropic":
        return {
            "type": "model",
            "id": name,
            "display_name": name,
            "created_at": "1970-01-01T00:00:00Z",
        }
    return {"id": name, "object": "model", "created": 0, "owned_by": "veil"}


@dataclass
class Call:
    """What one request did, for its audit entry and metrics (never content)."""

    endpoint: Endpoint
    started: float = field(default_factory=time.perf_counter)
    key: VirtualKey | None = None
    model: str | None = None
    upstream: str | None = None
    status: int = 200
    outcome: str = "ok"
    stream: bool = False
    exchange: Exchange | None = None
    usage: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _is_secret(kind: str) -> bool:
    info = kind_info(kind)
    return info is not None and info.secret


class Gateway:
    """Everything one gateway process shares between requests."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine,
        keys: KeyStore,
        ledger: Ledger,
        detector: Detector,
        virtual_keys: VirtualKeys,
        router: Router,
        limiter: Limiter | None = None,
        events: EventStore | None = None,
        answer_detector: Detector | None = None,
        shared_metrics: SharedMetrics | None = None,
    ) -> None:
        """``detector`` scans prompts, and whole answers when the key's answer policy
        changes names (see :class:`PolicyRedactors`); ``answer_detector`` (default: the
        same) screens the rest of the answers, streamed in pieces too short for a NER
        model to read well. ``shared_metrics``: this process is one worker of several,
        and ``/metrics`` reports them all."""
        self.settings = settings
        self.engine = engine
        self.keys = keys
        self.ledger = ledger
        self.events = events
        self.virtual_keys = virtual_keys
        self.router = router
        self.limiter: Limiter = limiter if limiter is not None else MemoryLimiter()
        self.policies = Policies(
            PolicyStore(settings.home), detector, answer_detector or detector, keys, ledger
        )
        # A NER model takes milliseconds per text: prompts are then scanned in a worker
        # thread so the event loop keeps serving other requests meanwhile.
        self._scan_in_thread = detector.ner is not None
        self._model_detector = answer_detector or detector
        self._checked_models: dict[str, tuple[str, str | None]] = {}  # see _model_check
        self.client = UpstreamClient(
            timeout=settings.upstream_timeout, connect_timeout=settings.upstream_connect_timeout
        )
        self.metrics = Metrics()
        self.shared_metrics = shared_metrics
        self.findings_cache = FindingsCache()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._route("chat"), methods=["POST"]),
                Route("/v1/completions", self._route("completions"), methods=["POST"]),
                Route("/v1/responses", self._route("responses"), methods=["POST"]),
                Route("/v1/embeddings", self._route("embeddings"), methods=["POST"]),
                Route("/v1/messages", self._route("messages"), methods=["POST"]),
                Route("/v1/messages/count_tokens", self._route("count_tokens"), methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
                # ``path``: model names may hold a slash (``meta-llama/Llama-3.1-8B``).
                Route("/v1/models/{model:path}", self.model, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.render_metrics, methods=["GET"]),
            ],
            exception_handlers={404: self._not_served, 405: self._not_served},
            lifespan=self._lifespan,
        )

    def __repr__(self) -> str:
        return f"Gateway(upstreams={list(self.router.upstreams)})"

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.client.start()
        shared = self.shared_metrics
        publishing = asyncio.create_task(self._publish_metrics(shared)) if shared else None
        try:
            yield
        finally:
            if shared is not None and publishing is not None:
                publishing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await publishing
                shared.publish(self.metrics)  # the last counts stay in the totals
            await self.close()

    async def _publish_metrics(self, shared: SharedMetrics) -> None:
        while True:
            await asyncio.sleep(shared.PERIOD)
            try:
                shared.publish(self.metrics)
            except OSError:
                log.warning("Could not publish this worker's metrics to %s.", shared.directory)

    async def close(self) -> None:
        await self.client.close()
        await self.limiter.close()
        await asyncio.to_thread(self.ledger.close)
        if self.events is not None:
            await asyncio.to_thread(self.events.close)

    async def _not_served(self, request: Request, exc: Exception) -> Response:
        """A path or method the gateway does not serve: the provider's error shape (an SDK
        shows its message), naming what it does serve, instead of a bare "Not Found"."""
        status = getattr(exc, "status_code", 404)
        # The path as sent, unless it holds a secret or personal data (a key pasted into
        # a base URL): then its kind and a digest, as for model names.
        what = f"{request.method} {self._recorded_model(request.url.path)}"
        if status == 405:
            error = GatewayError(
                405,
                f"Veil's gateway does not accept {what}. It serves {_SERVED}.",
                "method_not_allowed",
                headers=dict(getattr(exc, "headers", None) or {}),
            )
        else:
            error = GatewayError(
                404,
                f"Veil's gateway does not serve {what}. It serves {_SERVED}; other provider "
                "APIs (assistants, files, audio, images) are not proxied.",
                "not_found",
            )
        return error_response(_client_api(request), error)

    # -- small endpoints ------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "version": __version__, "upstreams": sorted(self.router.upstreams)}
        )

    async def render_metrics(self, request: Request) -> Response:
        shared = self.shared_metrics
        metrics = self.metrics if shared is None else shared.combined(self.metrics)
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def models(self, request: Request) -> Response:
        """The models the key may use, as OpenAI lists them or, for an Anthropic client
        (it sends ``anthropic-version``), as Anthropic does."""
        api = _client_api(request)
        try:
            key = self._authenticate(request)
        except GatewayError as exc:
            return error_response(api, exc)
        names = set(self.router.concrete_models())
        for upstream in self.router.upstreams.values():
            if upstream.kind == "openai":
                names.update(await self._upstream_models(upstream))
        names.update(m for m in key.models if not any(c in m for c in "*?["))
        allowed = sorted(m for m in names if key.allows(m) and self.router.route(m) is not None)
        data = [_model_object(api, name) for name in allowed]
        if api == "anthropic":
            return JSONResponse(
                {
                    "data": data,
                    "has_more": False,
                    "first_id": allowed[0] if allowed else None,
                    "last_id": allowed[-1] if allowed else None,
                }
            )
        return JSONResponse({"object": "list", "data": data})

    async def model(self, request: Request) -> Response:
        """One model (``client.models.retrieve``): found when the key may use it and an
        upstream serves it, else 404 in the provider's shape."""
        api = _client_api(request)
        name = request.path_params["model"]
        try:
            key = self._authenticate(request)
            if not key.allows(name) or self.router.route(name) is None:
                raise GatewayError(
                    404,
                    f"The model {self._recorded_model(name)!r} does not exist or this key "
                    "may not use it.",
                    "model_not_found",
                )
        except GatewayError as exc:
            return error_response(api, exc)
        return JSONResponse(_model_object(api, name))

    async def _upstream_models(self, upstream: Upstream) -> list[str]:
        try:
            response = await self.client.get(upstream, "/models", upstream.headers({}))
            async with response:
                if response.status != 200:
                    return []
                data = await response.json(content_type=None)
        except (UpstreamError, aiohttp.ClientError, ValueError, TimeoutError):
            return []
        items = data.get("data") if isinstance(data, dict) else None
        return [str(item["id"]) for item in items or [] if isinstance(item, dict) and "id" in item]

    # -- the protected endpoints ------------------------------------------------------

    def _route(self, name: str) -> Callable[[Request], Any]:
        endpoint = ENDPOINTS[name]

        async def handle(request: Request) -> Response:
            return await self.handle(request, endpoint)

        return handle

    async def _read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise GatewayError(
                413, f"The request body is larger than {limit} bytes.", "request_too_large"
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise GatewayError(
                    413, f"The request body is larger than {limit} bytes.", "request_too_large"
                )
        return bytes(body)

    def _authenticate(self, request: Request) -> VirtualKey:
        presented = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if presented is None and authorization[:7].lower() == "bearer ":
            presented = authorization[7:].strip()
        if not presented:
            raise GatewayError(
                401,
                "No API key: send a Veil virtual key as "
                "'Authorization: Bearer sk-veil-…' or 'x-api-key'.",
                "invalid_api_key",
                outcome="denied",
            )
        key = self.virtual_keys.authenticate(presented)
        if key is None:
            raise GatewayError(
                401, "Invalid or revoked Veil virtual key.", "invalid_api_key", outcome="denied"
            )
        return key

    async def _check_limits(self, key: VirtualKey) -> None:
        # The budget first: it is only checked, so a request it refuses does not also
        # spend one of the key's requests per minute.
        if key.tokens is not None:
            wait = await self.limiter.apply(f"{key.key_id}:tokens", key.tokens, 1, "check")
            if wait > 0:
                self._limited(
                    key,
                    f"The token budget of virtual key vk_{key.key_id} ({key.tokens.text}) is "
                    f"used up; it allows more in {_duration(wait)}.",
                    "token_budget_exceeded",
                    wait,
                )
        if key.rate is not None:
            wait = await self.limiter.apply(f"{key.key_id}:rate", key.rate, 1, "take")
            if wait > 0:
                self._limited(
                    key,
                    f"The request rate limit of virtual key vk_{key.key_id} ({key.rate.text}) "
                    f"is reached; retry in {_duration(wait)}.",
                    "rate_limit_exceeded",
                    wait,
                )

    def _limited(self, key: VirtualKey, message: str, code: str, wait: float) -> NoReturn:
        self.metrics.limited[(("key", key.key_id),)] += 1
        raise GatewayError(
            429,
            message,
            code,
            outcome="denied",
            headers={"retry-after": str(retry_after(wait))},
        )

    def _parse(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise GatewayError(400, "The request body is not valid JSON.", "invalid_json") from None
        if not isinstance(body, dict):
            raise GatewayError(400, "The request body must be a JSON object.", "invalid_json")
        return body

    def _recorded_model(self, model: Any) -> str | None:
        """The model name as the audit entry, the analytics event and error messages give
        it. It is whatever the client sent, and the ledger keeps what it is given for
        ever: a name holding a secret or personal data (a provider key pasted into the
        wrong field) is given as its kind and a keyed digest instead."""
        if model is None:
            return None
        return self._model_check(str(model)[:200])[0]

    def _model_check(self, name: str) -> tuple[str, str | None]:
        """(the name as recorded, the kind of a secret in it or None), cached."""
        checked = self._checked_models.get(name)
        if checked is None:
            found = self._model_detector.find(name)
            recorded = f"[{found[0].kind}] {self.ledger.digest(name)}" if found else name
            secret = next((f.kind for f in found if _is_secret(f.kind)), None)
            checked = (recorded, secret)
            if len(self._checked_models) >= 1024:
                self._checked_models.clear()
            self._checked_models[name] = checked
        return checked

    def _upstream_for(self, endpoint: Endpoint, key: VirtualKey, model: Any) -> Upstream:
        if not isinstance(model, str) or not model:
            raise GatewayError(400, "The request has no 'model'.", "missing_model")
        secret = self._model_check(model[:200])[1]
        if secret is not None:
            raise GatewayError(
                400,
                f"The model name holds a credential ({secret}); it was not forwarded. "
                "Check that the key and the model were not swapped.",
                "veil_blocked",
                outcome="blocked",
            )
        shown = self._recorded_model(model)  # for the messages below
        upstream = self.router.route(model) if key.allows(model) else None
        if upstream is None:
            raise GatewayError(
                404,
                f"The model {shown!r} does not exist or this key may not use it.",
                "model_not_found",
            )
        if upstream.kind not in ("echo", endpoint.api):
            other = "/v1/messages" if upstream.kind == "anthropic" else "/v1/chat/completions"
            raise GatewayError(
                404,
                f"The model {shown!r} is served by the {upstream.name} upstream: call {other}.",
                "model_not_found",
            )
        return upstream

    def _redactors(self, key: VirtualKey) -> PolicyRedactors:
        """The redactors of the key's policy; one that never loaded (a file edited by hand
        into an invalid one, then removed) refuses the request instead of a bare 500."""
        try:
            return self.policies.get(key.policy)
        except VeilError as exc:
            log.error(
                "The policy %s (key vk_%s) cannot be applied: %s",
                key.policy,
                key.key_id,
                exc.message,
            )
            raise GatewayError(
                500,
                f"The policy of this key ({key.policy}) cannot be applied, so nothing was "
                "forwarded. The gateway's operator can see why with `veil doctor`.",
                "policy_unavailable",
            ) from None

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        call = Call(endpoint)
        streaming = False
        try:
            # The key first: a request without a valid one is refused before its body
            # (up to VEIL_MAX_BODY_BYTES) is read.
            call.key = self._authenticate(request)
            raw = await self._read_body(request)
            body = self._parse(raw)
            call.model = self._recorded_model(body.get("model"))
            problem = endpoint.unsupported(body) if endpoint.unsupported else None
            if problem is not None:
                raise GatewayError(400, problem, "unsupported_parameter")
            upstream = self._upstream_for(endpoint, call.key, body.get("model"))
            call.upstream = upstream.name
            call.stream = body.get("stream") is True
            await self._check_limits(call.key)
            redactors = self._redactors(call.key)
            call.exchange = exchange = Exchange(
                redactors.prompt if endpoint.pseudonymize else redactors.embed,
                redactors.answer,
                whole_answer=redactors.whole_answer,
                restore=upstream.kind != "echo",
                cache=self.findings_cache,
            )
            try:
                slots = endpoint.request_slots(body)
                if self._scan_in_thread:
                    await asyncio.to_thread(exchange.protect, slots)
                else:
                    exchange.protect(slots)
            except PolicyViolationError as exc:
                raise GatewayError(400, exc.message, "veil_blocked", outcome="blocked") from None
            except Exception as exc:  # never forward what could not be scanned
                log.error("scanning a request failed: %s", type(exc).__name__)
                raise GatewayError(
                    500, "Veil could not scan the request; it was not forwarded.", "scan_failed"
                ) from None
            self.metrics.found(exchange.kinds)
            forwarded = dumps(body)
            call.digests = {
                "request": self.ledger.digest(raw),
                "forwarded": self.ledger.digest(forwarded),
            }
            response = await self._forward(call, endpoint, upstream, request, forwarded, body)
            streaming = isinstance(response, StreamingResponse)
            return response
        except GatewayError as exc:
            call.status, call.outcome = exc.status, exc.outcome
            call.error = exc.code
            return error_response(endpoint.api, exc)
        except UpstreamError as exc:
            call.status, call.outcome, call.error = exc.status, "error", "upstream"
            return error_response(endpoint.api, GatewayError(exc.status, exc.message, "upstream"))
        except StorageError as exc:  # the limits store (Redis) failed mid-run
            log.error("%s", exc.message)
            call.status, call.outcome, call.error = 503, "error", "limits_store"
            return error_response(
                endpoint.api,
                GatewayError(
                    503,
                    "Veil's rate-limit store is unavailable; retry shortly.",
                    "limits_store_unavailable",
                ),
            )
        except Exception as exc:
            # A bug: answered in the provider's shape and audited, not a bare text/plain
            # 500. Logged by type and place only, since its message could quote content.
            _log_internal(endpoint.name, exc)
            call.status, call.outcome, call.error = 500, "error", "internal"
            return error_response(
                endpoint.api, GatewayError(500, "Veil failed on this request.", "internal_error")
            )
        finally:
            if not streaming:
                await self._finish(call)

    async def _finish(self, call: Call, *, wait: bool = True) -> None:
        seconds = time.perf_counter() - call.started
        self.metrics.observe(call.endpoint.name, call.status, seconds)
        if call.key is not None and call.key.tokens is not None and call.usage:
            total = call.usage.get("total_tokens", 0)
            try:
                await self.limiter.apply(
                    f"{call.key.key_id}:tokens", call.key.tokens, total, "charge"
                )
            except VeilError as exc:
                log.error("charging the token budget failed: %s", exc.message)
        details: dict[str, Any] = {
            "endpoint": call.endpoint.name,
            "status": call.status,
            "latency_us": int(seconds * 1_000_000),
            "stream": call.stream,
        }
        if call.upstream is not None:
            details["upstream"] = call.upstream
        if call.key is not None:
            details["policy"] = call.key.policy  # its version: the last policy.load entry
        if call.exchange is not None:
            details.update(call.exchange.summary())
        if call.usage:
            details["usage"] = call.usage
        if call.digests:
            details["digests"] = call.digests
        if call.error is not None:
            details["error"] = call.error
        actor = f"vk_{call.key.key_id}" if call.key is not None else "anonymous"
        if self.events is not None:
            self._record_event(call, actor, seconds)
        try:
            future = self.ledger.submit(
                actor,
                f"gateway.{call.endpoint.name}",
                call.outcome,
                resource=call.model,
                details=details,
            )
            if wait:
                await asyncio.wrap_future(future)
        except VeilError as exc:
            log.error("writing the audit entry failed: %s", exc.message)
            if wait:
                raise

    def _record_event(self, call: Call, actor: str, seconds: float) -> None:
        """The call's analytics event: dimensions and counts, never content."""
        assert self.events is not None
        dims = {
            "endpoint": call.endpoint.name,
            "status": str(call.status),
            "stream": "true" if call.stream else "false",
        }
        if call.upstream is not None:  # a routed model: a configured name, not free text
            dims["upstream"] = call.upstream
            if call.model is not None:
                dims["model"] = call.model[:200]
        values: dict[str, float] = {"latency_ms": round(seconds * 1000, 3)}
        for name in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"):
            if name in call.usage:
                values[name] = call.usage[name]
        if call.exchange is not None:
            values.update({f"found.{k}": n for k, n in call.exchange.kinds.items()})
            values.update({f"masked.{k}": n for k, n in call.exchange.screened.items()})
        try:
            self.events.record(
                "gateway",
                f"gateway.{call.endpoint.name}",
                call.outcome,
                actor=actor,
                dims=dims,
                values=values,
            )
        except VeilError as exc:  # analytics never fail a call
            log.error("recording the analytics event failed: %s", exc.message)

    # -- forwarding -----------------------------------------------------------------

    async def _forward(
        self,
        call: Call,
        endpoint: Endpoint,
        upstream: Upstream,
        request: Request,
        forwarded: bytes,
        body: dict[str, Any],
    ) -> Response:
        assert call.exchange is not None
        incoming = {k.lower(): v for k, v in request.headers.items()}
        if upstream.kind == "echo":
            status, content_type = 200, "application/json"
            lines: AsyncIterator[bytes] | None = None
            payload: bytes | None = None
            if call.stream:
                lines, content_type = echo_stream(endpoint, body, forwarded), "text/event-stream"
            else:
                payload = echo_answer(endpoint, body, forwarded)
            response = None
        else:
            response = await self.client.post(
                upstream, endpoint.upstream_path, forwarded, upstream.headers(incoming)
            )
            status = response.status
            content_type = response.headers.get("content-type", "application/json")
            lines, payload = None, None
            if call.stream and status == 200 and "text/event-stream" in content_type:
                lines = _lines(response)
            else:
                try:
                    payload = await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise upstream_error_of(exc, upstream.name) from None
                finally:
                    response.release()
        call.status = status
        if lines is not None:
            return StreamingResponse(
                self._relay(call, endpoint, upstream, lines, response),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        assert payload is not None
        if call.exchange is not None and call.exchange.reads_answers_with_model:
            # Milliseconds of NER per answer: off the event loop, as for prompts.
            return await asyncio.to_thread(
                self._answer, call, endpoint, status, content_type, payload
            )
        return self._answer(call, endpoint, status, content_type, payload)

    def _answer(
        self, call: Call, endpoint: Endpoint, status: int, content_type: str, payload: bytes
    ) -> Response:
        assert call.exchange is not None
        if status >= 400:
            call.outcome, call.error = "error", f"upstream_{status}"
        try:
            data = json.loads(payload) if "json" in content_type else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            # Never relayed unread: an answer Veil cannot parse is neither restored nor
            # screened. The client gets a provider-style error instead.
            call.outcome = "error"
            error = (
                GatewayError(
                    502,
                    f"The upstream {call.upstream} answered HTTP {status} with a body that is "
                    "not a JSON object; Veil did not pass it on.",
                    "upstream_bad_answer",
                )
                if status < 400
                else GatewayError(
                    status,
                    f"The upstream {call.upstream} answered HTTP {status} (no JSON error body).",
                    "upstream",
                )
            )
            call.status, call.error = error.status, error.code
            return error_response(endpoint.api, error)
        if endpoint.answer_slots is not None and status < 400:
            call.exchange.restore_slots(endpoint.answer_slots(data))
        call.usage = usage_of(data, endpoint.api)
        call.digests["answer"] = self.ledger.digest(payload)
        return Response(dumps(data), status_code=status, media_type="application/json")

    async def _relay(
        self,
        call: Call,
        endpoint: Endpoint,
        upstream: Upstream,
        lines: AsyncIterator[bytes],
        response: aiohttp.ClientResponse | None,
    ) -> AsyncIterator[bytes]:
        assert call.exchange is not None
        events = responses.ResponsesStream(call.exchange) if endpoint.name == "responses" else None
        openai = (
            OpenAIStream(call.exchange) if endpoint.api == "openai" and events is None else None
        )
        anthropic = AnthropicStream(call.exchange) if endpoint.api == "anthropic" else None
        # Keyed like every digest in the ledger: a short answer ("Yes") must not be
        # recoverable by hashing guesses.
        digest = self.ledger.digester()
        completed = done = False
        try:
            async for name, data in sse_events(lines):
                digest.update(data.encode())
                if data == "[DONE]" and openai is not None:
                    last = openai.finish()
                    if last is not None:
                        yield sse(last)
                    yield b"data: [DONE]\n\n"
                    done = True
                    continue
                try:
                    event = json.loads(data)
                except ValueError:
                    yield sse(data, name)
                    continue
                if not isinstance(event, dict):
                    yield sse(data, name)
                elif openai is not None:
                    yield sse(openai.chunk(event), name)
                elif anthropic is not None:
                    for out_name, out in anthropic.event(name, event):
                        yield sse(out, out_name)
                elif events is not None:
                    for out_name, out in events.event(name, event):
                        yield sse(out, out_name)
                else:
                    yield sse(event, name)
            if openai is not None and not done:
                # The upstream closed without [DONE] (nor a finish_reason): the text held
                # back at the end still goes out.
                last = openai.finish()
                if last is not None:
                    yield sse(last)
            if anthropic is not None:
                for out in anthropic.finish():
                    yield sse(out, "content_block_delta")
            if events is not None:
                for out_name, out in events.finish():
                    yield sse(out, out_name)
            completed = True
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = upstream_error_of(exc, upstream.name)
            call.outcome, call.error = "error", "upstream_stream"
            yield _stream_error(endpoint, error.message, "upstream_error")
        except Exception as exc:  # a bug: the answer stops here, with an error event
            _log_internal(endpoint.name, exc)
            call.outcome, call.error = "error", "internal"
            yield _stream_error(endpoint, "Veil failed on this answer.", "internal_error")
        finally:
            if response is not None:
                response.release()
            if not completed and call.error is None:
                # The client went away mid-answer (the server closed this generator): the
                # entry says the answer was not delivered whole.
                call.outcome, call.error = "error", "client_disconnected"
            call.digests["answer"] = digest.value()
            streamed_usage = openai.usage if openai is not None else None
            if events is not None:
                streamed_usage = events.usage
            if streamed_usage:
                call.usage = {k: int(v) for k, v in streamed_usage.items() if isinstance(v, int)}
            elif anthropic is not None and (anthropic.input_tokens or anthropic.output_tokens):
                call.usage = {
                    "input_tokens": anthropic.input_tokens,
                    "output_tokens": anthropic.output_tokens,
                    "total_tokens": anthropic.input_tokens + anthropic.output_tokens,
                }
            else:
                call.usage = {"total_tokens": call.exchange.chars_out // 4, "estimated": 1}
            # The client may be gone: write the entry without waiting for it.
            await self._finish(call, wait=False)


def _stream_error(endpoint: Endpoint, message: str, code: str) -> bytes:
    """The error event that ends a stream, in the provider's shape: Anthropic's `error`
    event (`{"type": "error", "error": {"type": "api_error", ...}}`), the Responses API's
    `error` event, or an OpenAI chunk holding `error` (which the OpenAI SDK raises as an
    APIError)."""
    if endpoint.name == "responses":
        return sse(responses.stream_error(message, code), "error")
    if endpoint.api == "anthropic":
        return sse({"type": "error", "error": {"type": "api_error", "message": message}}, "error")
    return sse({"error": {"message": message, "type": code, "param": None, "code": code}})


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min 5 s``, ``22 h 34 min``: how long, for a person to read."""
    total = retry_after(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _log_internal(endpoint: str, exc: Exception) -> None:
    """A failure Veil did not expect, by type and place only (see failure_place)."""
    log.error("internal error handling %s: %s", endpoint, failure_place(exc))


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    async for line in response.content:
        yield line


def usage_of(data: dict[str, Any], api: Api) -> dict[str, int]:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return {}
    numbers = {k: int(v) for k, v in usage.items() if isinstance(v, int)}
    if api == "anthropic":
        numbers["total_tokens"] = numbers.get("input_tokens", 0) + numbers.get("output_tokens", 0)
    return numbers


# -- the echo upstream ---------------------------------------------------------------


def _echo_text(forwarded: bytes) -> str:
    return forwarded.decode()


def echo_answer(endpoint: Endpoint, body: dict[str, Any], forwarded: bytes) -> bytes:
    """What the built-in echo upstream answers: the body a provider would have received."""
    text = _echo_text(forwarded)
    model = str(body.get("model"))
    tokens = max(1, len(text) // 4)
    if endpoint.name == "embeddings":
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": _fake_embedding(json.dumps(item))}
            for i, item in enumerate(items)
        ]
        return dumps(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )
    if endpoint.name == "messages.count_tokens":
        return dumps({"input_tokens": tokens})
    if endpoint.name == "responses":
        return responses.echo_answer(model, text)
    if endpoint.api == "anthropic":
        return dumps(
            {
                "id": "msg_echo_" + secrets.token_hex(8),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": tokens, "output_tokens": tokens},
            }
        )
    usage = {"prompt_tokens": tokens, "completion_tokens": tokens, "total_tokens": 2 * tokens}
    if endpoint.name == "completions":
        return dumps(
            {
                "id": "cmpl-echo-" + secrets.token_hex(8),
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                "usage": usage,
            }
        )
    return dumps(
        {
            "id": "chatcmpl-echo-" + secrets.token_hex(8),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": usage,
        }
    )


def _fake_embedding(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(v / 2**31, 6) for v in struct.unpack(">8i", digest)]


async def echo_stream(
    endpoint: Endpoint, body: dict[str, Any], forwarded: bytes
) -> AsyncIterator[bytes]:
    text = _echo_text(forwarded)
    pieces = [text[i : i + 16] for i in range(0, len(text), 16)]
    model = str(body.get("model"))
    if endpoint.name == "responses":
        async for name, event in responses.echo_stream(model, text):
            for line in sse(event, name).split(b"\n"):
                yield line + b"\n"
        return
    if endpoint.api == "anthropic":
        events: list[tuple[str, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_echo_" + secrets.token_hex(8),
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": len(text) // 4, "output_tokens": 0},
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            *[
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
                for piece in pieces
            ],
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": len(text) // 4},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        for name, data in events:
            for line in sse(data, name).split(b"\n"):
                yield line + b"\n"
        return
    base = {
        "id": "chatcmpl-echo-" + secrets.token_hex(8),
        "created": int(time.time()),
        "model": model,
    }
    chunks: list[dict[str, Any]] = []
    if endpoint.name == "completions":
        chunks = [
            {
                **base,
                "object": "text_completion",
                "choices": [{"index": 0, "text": piece, "finish_reason": None}],
            }
            for piece in pieces
        ]
        chunks.append(
            {
                **base,
                "object": "text_completion",
                "choices": [{"index": 0, "text": "", "finish_reason": "stop"}],
            }
        )
    else:
        chunks = [
            {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": piece},
                        "finish_reason": None,
                    }
                ],
            }
            for piece in pieces
        ]
        chunks.append(
            {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        )
    for chunk in chunks:
        for line in sse(chunk).split(b"\n"):
            yield line + b"\n"
    for line in b"data: [DONE]\n\n".split(b"\n"):
        yield line + b"\n"
