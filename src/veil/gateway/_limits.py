"""Per-key limits as token buckets: in memory for one process, in Redis for replicas.

A bucket holds up to ``limit.amount`` and refills at ``amount / period`` per second.
Requests take 1 from the rate bucket; the token budget is checked before a request (at
least one token left) and charged with the usage the upstream reports afterwards, so a
large answer can drive it below zero and later requests wait until it refills.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal, Protocol

from veil.errors import StorageError
from veil.gateway._virtual_keys import Limit

Mode = Literal["take", "check", "charge"]
_MODES = {"take": 0, "check": 1, "charge": 2}

# Runs atomically in Redis: refill by elapsed time (Redis's own clock, so replicas agree),
# then take, check or charge. Returns the seconds to wait ("0" when allowed).
_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local mode = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if mode == 2 then
  tokens = tokens - cost
elseif tokens >= cost then
  if mode == 0 then tokens = tokens - cost end
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return tostring(wait)
"""


class Limiter(Protocol):
    async def apply(self, bucket: str, limit: Limit, cost: float, mode: Mode) -> float:
        """Seconds to wait before ``cost`` is available (0: allowed, and taken in
        ``take`` mode); ``charge`` always subtracts and returns 0."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Token buckets in this process (one gateway process)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def __repr__(self) -> str:
        return f"MemoryLimiter(buckets={len(self._buckets)})"

    async def apply(self, bucket: str, limit: Limit, cost: float, mode: Mode) -> float:
        # No await between read and write: atomic on the event loop.
        rate = limit.amount / limit.period
        now = time.monotonic()
        tokens, updated = self._buckets.get(bucket, (float(limit.amount), now))
        tokens = min(float(limit.amount), tokens + (now - updated) * rate)
        wait = 0.0
        if mode == "charge":
            tokens -= cost
        elif tokens >= cost:
            if mode == "take":
                tokens -= cost
        else:
            wait = (cost - tokens) / rate
        self._buckets[bucket] = (tokens, now)
        return wait

    async def close(self) -> None:
        self._buckets.clear()


class RedisLimiter:
    """Token buckets in Redis, shared by every gateway replica that uses the same URL."""

    def __init__(self, url: str, prefix: str = "veil:limit:") -> None:
        import redis.asyncio as redis_asyncio

        self._client: Any = redis_asyncio.Redis.from_url(url)
        self._script: Any = self._client.register_script(_LUA)
        self._prefix = prefix

    def __repr__(self) -> str:
        return "RedisLimiter()"

    async def apply(self, bucket: str, limit: Limit, cost: float, mode: Mode) -> float:
        import redis

        rate = limit.amount / limit.period
        try:
            result = await self._script(
                keys=[self._prefix + bucket],
                args=[limit.amount, repr(rate), repr(float(cost)), _MODES[mode]],
            )
        except (redis.RedisError, OSError) as exc:
            raise StorageError(
                f"The rate-limit store (Redis) failed: {type(exc).__name__}.",
                hint="Check that VEIL_REDIS_URL points at a running Redis.",
            ) from None
        return float(result)

    @staticmethod
    def check(url: str) -> None:
        """Fail at start-up, not on the first request, when Redis is unreachable."""
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            raise StorageError(
                f"Cannot reach Redis at VEIL_REDIS_URL: {type(exc).__name__}.",
                hint="Start Redis or unset VEIL_REDIS_URL to keep limits in this process.",
            ) from None
        finally:
            client.close()

    async def close(self) -> None:
        await self._client.aclose()


def retry_after(seconds: float) -> int:
    """The ``Retry-After`` header value: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))
