"""Upstreams (providers) and model routing.

An upstream is OpenAI-compatible (OpenAI, Azure OpenAI, vLLM, Ollama, LM Studio: a base URL
ending in ``/v1`` or Azure's deployment URL), Anthropic, or the built-in ``echo`` that
answers with exactly what a provider would have received. Models are routed by globs
(``VEIL_MODELS=gpt-*=openai,claude-*=anthropic``).
"""

from __future__ import annotations

import asyncio
import fnmatch
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import aiohttp

from veil.config import Settings, is_loopback_host
from veil.errors import ConfigError, InputError, VeilError
from veil.keys import Vault

UpstreamKind = Literal["openai", "anthropic", "echo"]
CONNECT_ATTEMPTS = 3
_BACKOFF = 0.2  # seconds, doubled per attempt


@dataclass(frozen=True)
class Upstream:
    name: str
    kind: UpstreamKind
    base_url: str = ""
    api_key: str | None = field(default=None, repr=False)

    @property
    def is_azure(self) -> bool:
        return (urlsplit(self.base_url).hostname or "").endswith(".openai.azure.com")

    def url(self, path: str) -> str:
        """``path`` (``/chat/completions``) under the base URL, keeping its query
        (Azure's ``api-version``)."""
        parts = urlsplit(self.base_url)
        query = f"?{parts.query}" if parts.query else ""
        return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}{query}"

    def headers(self, incoming: dict[str, str]) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": incoming.get("accept", "*/*")}
        if self.kind == "anthropic":
            headers["anthropic-version"] = incoming.get("anthropic-version", "2023-06-01")
            if "anthropic-beta" in incoming:
                headers["anthropic-beta"] = incoming["anthropic-beta"]
            if self.api_key:
                headers["x-api-key"] = self.api_key
        elif self.api_key and self.is_azure:
            headers["api-key"] = self.api_key
        elif self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return headers

    def describe(self) -> str:
        if self.kind == "echo":
            return "echo (built in: answers with what a provider would have received)"
        key = "key from the vault/environment" if self.api_key else "no key"
        return f"{self.name}: {self.base_url} ({key})"


def base_url_problem(name: str, url: str) -> str | None:
    """A base URL that most likely sends requests to the wrong path, and where to: the
    OpenAI SDKs' convention keeps ``/v1`` in it (OpenAI, vLLM, Ollama, LM Studio), the
    Anthropic SDK's leaves it out."""
    path = urlsplit(url).path.rstrip("/")
    if name == "anthropic" and path.endswith("/v1"):
        return (
            f"ends with /v1, so requests would go to {url.rstrip('/')}/v1/messages; "
            "the Anthropic base URL has no /v1 (https://api.anthropic.com)"
        )
    if name != "anthropic" and not path and not url.rstrip("/").endswith(".openai.azure.com"):
        return (
            f"has no path, so requests would go to {url.rstrip('/')}/chat/completions; "
            "OpenAI-compatible servers serve under /v1 (https://api.openai.com/v1)"
        )
    return None


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"The {name} upstream {parts.scheme}://{parts.hostname} is not HTTPS.",
            hint="Use an https:// URL; plain http is allowed only on 127.0.0.1/localhost.",
        )


def _provider_key(vault: Vault | None, settings: Settings, name: str, url: str) -> str | None:
    configured = settings.openai_api_key if name == "openai" else settings.anthropic_api_key
    if configured is not None:
        return configured.get_secret_value()
    if vault is not None:
        try:
            return vault.get(name)
        except InputError:
            pass
    if is_loopback_host(urlsplit(url).hostname):
        return None  # vLLM, Ollama, LM Studio on this machine usually need none
    raise ConfigError(
        f"No API key for the {name} upstream.",
        hint=f"Store it with `veil vault set {name}` (or set {name.upper()}_API_KEY).",
    )


def configured_upstreams(settings: Settings, vault: Vault | None) -> dict[str, Upstream]:
    """The upstreams from the settings; ``echo`` alone when no provider is configured."""
    upstreams: dict[str, Upstream] = {}
    for name, url in settings.provider_endpoints().items():
        _check_url(name, url)
        kind: UpstreamKind = "anthropic" if name == "anthropic" else "openai"
        upstreams[name] = Upstream(name, kind, url, _provider_key(vault, settings, name, url))
    if not upstreams:
        upstreams["echo"] = Upstream("echo", "echo")
    return upstreams


class Router:
    """Model name → upstream, by the first matching glob."""

    def __init__(self, upstreams: dict[str, Upstream], spec: str | None) -> None:
        self.upstreams = upstreams
        self.routes: list[tuple[str, Upstream]] = []
        if spec:
            for item in spec.split(","):
                glob, sep, name = item.strip().rpartition("=")
                if not sep or not glob or name not in upstreams:
                    raise ConfigError(
                        f"VEIL_MODELS has an invalid route {item.strip()!r}.",
                        hint="Write glob=upstream pairs, e.g. gpt-*=openai,claude-*=anthropic; "
                        f"configured upstreams: {', '.join(upstreams)}.",
                    )
                self.routes.append((glob, upstreams[name]))
        else:
            if "anthropic" in upstreams:
                self.routes.append(("claude-*", upstreams["anthropic"]))
            if "openai" in upstreams:
                self.routes.append(("*", upstreams["openai"]))
            if "echo" in upstreams:
                self.routes.append(("*", upstreams["echo"]))

    def route(self, model: str) -> Upstream | None:
        for glob, upstream in self.routes:
            if fnmatch.fnmatchcase(model, glob):
                return upstream
        return None

    def concrete_models(self) -> list[str]:
        names = [glob for glob, _ in self.routes if not any(c in glob for c in "*?[")]
        # The echo upstream answers for any model name; list one to try.
        return [*names, "echo"] if "echo" in self.upstreams else names


class UpstreamError(VeilError):
    """The upstream could not be reached (502) or did not answer in time (504)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class UpstreamClient:
    """One pooled aiohttp session for every upstream; retries connect errors only."""

    def __init__(self, *, timeout: float, connect_timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return "UpstreamClient()"

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=30, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=True
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, upstream: Upstream, path: str, body: bytes, headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        """The upstream's response, headers read; the caller reads and releases it."""
        return await self._send("POST", upstream, path, body, headers)

    async def get(
        self, upstream: Upstream, path: str, headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        return await self._send("GET", upstream, path, None, headers)

    async def _send(
        self,
        method: str,
        upstream: Upstream,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
    ) -> aiohttp.ClientResponse:
        if self._session is None:
            await self.start()
        assert self._session is not None
        url = upstream.url(path)
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                return await self._session.request(method, url, data=body, headers=headers)
            except aiohttp.ClientConnectorError:
                # Nothing reached the upstream: safe to try again.
                if attempt + 1 == CONNECT_ATTEMPTS:
                    raise UpstreamError(
                        f"Cannot connect to the {upstream.name} upstream.", 502
                    ) from None
                await asyncio.sleep(_BACKOFF * 2**attempt)
            except (TimeoutError, aiohttp.ServerTimeoutError):
                raise UpstreamError(
                    f"The {upstream.name} upstream did not answer in time.", 504
                ) from None
            except aiohttp.ClientError as exc:
                raise UpstreamError(
                    f"The {upstream.name} upstream failed: {type(exc).__name__}.", 502
                ) from None
        raise AssertionError("unreachable: the last attempt returns or raises")


def upstream_error_of(exc: BaseException, name: str) -> UpstreamError:
    """A read error while reading an upstream body, as a gateway error."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamError(f"The {name} upstream did not answer in time.", 504)
    return UpstreamError(f"The {name} upstream broke off its answer.", 502)
