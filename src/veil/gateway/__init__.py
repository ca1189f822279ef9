"""The gateway: an OpenAI- and Anthropic-compatible proxy that pseudonymizes prompts,
restores answers (streams included), limits virtual keys and audits every call.

:func:`open_gateway` builds one from the settings; ``gateway.app`` is the ASGI app
(Starlette), served by ``veil serve`` on uvicorn. :func:`create_app` builds it from the
environment alone: each worker process of ``veil serve --workers N`` calls it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from starlette.applications import Starlette

from veil.config import Settings
from veil.gateway._app import ENDPOINTS, Gateway, GatewayError
from veil.gateway._limits import Limiter, MemoryLimiter, RedisLimiter
from veil.gateway._metrics import SharedMetrics
from veil.gateway._upstreams import Router, Upstream, configured_upstreams
from veil.gateway._virtual_keys import KEY_PREFIX, Limit, VirtualKey, VirtualKeys
from veil.keys import KeyStore, RootKey

# Set by ``veil serve --workers N`` for its workers: the directory where each publishes
# its counts, so that /metrics reports the whole server (see SharedMetrics).
METRICS_DIR_VARIABLE = "VEIL_WORKERS_METRICS_DIR"


def open_gateway(
    settings: Settings, root: RootKey, *, shared_metrics: SharedMetrics | None = None
) -> Gateway:
    """A gateway on the configured database, upstreams, limits store and root key;
    ``shared_metrics`` when it is one worker process of several."""
    from veil.analytics import EventStore
    from veil.audit import Ledger
    from veil.detect import configured_detector
    from veil.keys import Vault
    from veil.store import open_engine
    from veil.transform import shared_detector

    engine = open_engine(settings)
    keys = KeyStore(engine, root)
    detector = shared_detector(settings)
    # Names, places and organizations in prompts need the NER model when one is
    # configured (a missing model fails here, before anything listens).
    prompts = configured_detector(settings, ner=True) if settings.ner_model else detector
    upstreams = configured_upstreams(settings, Vault(engine, keys))
    limiter: Limiter = MemoryLimiter()
    if settings.redis_url:
        RedisLimiter.check(settings.redis_url)  # fail now, not on the first request
        limiter = RedisLimiter(settings.redis_url)
    return Gateway(
        settings,
        engine=engine,
        keys=keys,
        ledger=Ledger(engine, keys, detector),
        detector=prompts,
        answer_detector=detector,
        virtual_keys=VirtualKeys(engine, keys),
        router=Router(upstreams, settings.models),
        limiter=limiter,
        events=EventStore(engine, keys) if settings.analytics else None,
        shared_metrics=shared_metrics,
    )


def create_app() -> Starlette:
    """The gateway's ASGI app from the settings in the environment and ``.env`` (the
    uvicorn factory of each ``veil serve --workers`` process)."""
    from veil.config import load_settings
    from veil.keys import root_key_from_settings
    from veil.logging import configure_process

    settings = load_settings()
    configure_process(settings.log_level)
    metrics_dir = os.environ.get(METRICS_DIR_VARIABLE)
    shared = SharedMetrics(Path(metrics_dir)) if metrics_dir else None
    return open_gateway(settings, root_key_from_settings(settings), shared_metrics=shared).app


def worker_app() -> Starlette:
    """:func:`create_app` for the worker processes of ``veil serve --workers``: a worker
    that cannot start prints the error and exits with uvicorn's start-up failure code, on
    which uvicorn stops every worker (any other exit would be restarted in a loop)."""
    from uvicorn.config import STARTUP_FAILURE

    from veil.errors import VeilError

    try:
        return create_app()
    except VeilError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(STARTUP_FAILURE)
    except Exception:  # a defect, not a setting: the traceback, then stop all the same
        logging.getLogger(__name__).exception("A gateway worker failed to start.")
        sys.exit(STARTUP_FAILURE)


__all__ = [
    "ENDPOINTS",
    "KEY_PREFIX",
    "METRICS_DIR_VARIABLE",
    "Gateway",
    "GatewayError",
    "Limit",
    "Limiter",
    "MemoryLimiter",
    "RedisLimiter",
    "Router",
    "Upstream",
    "VirtualKey",
    "VirtualKeys",
    "configured_upstreams",
    "create_app",
    "open_gateway",
    "worker_app",
]
