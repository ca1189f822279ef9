"""``veil serve``: the gateway on uvicorn, on the embedded SQLite database by default."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
import tempfile
from typing import Annotated, Any

import typer
from rich.markup import escape

from veil.cli._app import app, err, out, print_json, settings_from_context
from veil.cli.init_cmd import create_env_file_root_key, root_key_configured
from veil.config import env_file_path, is_loopback_host, mask_url, unknown_variables
from veil.errors import ConfigError
from veil.keys import root_key_from_settings

# Uvicorn's settings for every worker (its access log would duplicate the audit ledger).
_UVICORN: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "lifespan": "on",
    "timeout_graceful_shutdown": 10,
}


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"Listening on {host}:{port} is already in use.",
                hint="Pick another port with --port (or VEIL_GATEWAY_PORT); --port 0 picks a "
                "free one.",
            ) from None
        if exc.errno == errno.EACCES:
            hint = "Ports below 1024 need privileges: pick another with --port."
        else:  # a name that does not resolve, an address this machine does not have
            hint = (
                "Check --host (or VEIL_GATEWAY_HOST): an address of this machine, such as "
                "127.0.0.1, ::1 or 0.0.0.0."
            )
        raise ConfigError(
            f"Listening on {host}:{port} failed: {exc.strerror}.", hint=hint
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (VEIL_GATEWAY_HOST).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port (VEIL_GATEWAY_PORT, default 8787; 0 picks a free one)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes sharing the port (one CPU core each); more than one "
            "needs VEIL_REDIS_URL so that they share the rate limits.",
        ),
    ] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the start-up report as one JSON line.")
    ] = False,
) -> None:
    """Run the gateway: point an OpenAI or Anthropic client at it and prompts reach the
    provider with secrets removed and personal data pseudonymized; answers come back with
    the real values. With no provider configured, the built-in echo upstream answers with
    exactly what a provider would have received."""
    import uvicorn

    from veil.gateway import METRICS_DIR_VARIABLE, open_gateway
    from veil.gateway._upstreams import base_url_problem

    settings = settings_from_context(ctx)
    if workers > 1 and not settings.redis_url:
        raise ConfigError(
            f"--workers {workers} needs VEIL_REDIS_URL: each worker process would otherwise "
            "keep its own rate limits, and a key would get its limit once per worker.",
            hint="Set VEIL_REDIS_URL=redis://HOST:6379/0 (the workers share limits there), "
            "or run one worker.",
        )
    created_in = None
    if root_key_configured(settings):
        root = root_key_from_settings(settings)
    else:
        env_file = env_file_path()
        settings, root = create_env_file_root_key(env_file)
        created_in = str(env_file)
    gateway = open_gateway(settings, root)
    first_key = None
    if not gateway.virtual_keys.list(include_revoked=True):
        _key, first_key = gateway.virtual_keys.create("default")
    bind_host = host or settings.gateway_host
    sock = _bind(bind_host, settings.gateway_port if port is None else port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{bind_host}]" if ":" in bind_host else bind_host
    url = f"http://{shown_host}:{bound_port}/v1"
    upstreams = [u.describe() for u in gateway.router.upstreams.values()]
    if as_json:
        print_json(
            {
                "url": url,
                "root_key_created_in": created_in,
                "virtual_key": first_key,
                "upstreams": upstreams,
                "database": "postgresql" if settings.database_url else "sqlite",
                "limits": "redis" if settings.redis_url else "memory",
                "ner_model": settings.ner_model,
                "recognizers": str(settings.recognizers) if settings.recognizers else None,
                "phone_region": settings.phone_region,
                "workers": workers,
            }
        )
    else:
        if created_in is not None:
            out.print(
                f"[green]✓[/] created root key {root.key_id} in {escape(created_in)} (mode 0600) "
                "— back it up: without it the vault and the ledger's keys are lost."
            )
        out.print(f"[green]✓[/] Veil gateway listening on [bold]{escape(url)}[/]")
        for line in upstreams:
            out.print(f"  upstream: {escape(line)}")
        limits = "Redis (shared by replicas)" if settings.redis_url else "in memory"
        out.print(f"  limits: {limits}")
        if workers > 1:
            out.print(f"  workers: {workers} processes")
        if settings.ner_model:
            out.print(f"  names, places, organizations: spaCy model {escape(settings.ner_model)}")
        else:
            out.print(
                "  names, places, organizations: not detected (set VEIL_NER_MODEL, "
                "see docs/detection.md)"
            )
        if settings.recognizers is not None:
            out.print(f"  your recognizers: {escape(str(settings.recognizers))}")
        if settings.phone_region != "US":
            out.print(f"  national phone numbers: {settings.phone_region}")
        if first_key is not None:
            out.print("[yellow]First virtual key (shown once, store it now):[/]")
            out.print(f"  {first_key}")
            out.print(f"  try: OPENAI_BASE_URL={escape(url)} OPENAI_API_KEY=<that key> your-app")
        if not is_loopback_host(bind_host):
            out.print("[yellow]Listening beyond this machine: put TLS in front of it.[/]")
    # Warnings on stderr (also with --json): a base URL that sends requests to the wrong
    # path, and a misspelt VEIL_ variable, which leaves its setting at the default
    # (VEIL_REDIS_ULR: limits in memory, not shared).
    for name, url in settings.provider_endpoints().items():
        problem = base_url_problem(name, url)
        if problem is not None:
            err.print(f"[yellow]warning:[/] the {name} base URL {escape(mask_url(url))} {problem}")
    for name, where, close in unknown_variables():
        guess = f"; did you mean {close}?" if close else ""
        err.print(
            f"[yellow]warning:[/] {escape(name)} ({escape(where)}) is not a Veil setting "
            f"and is ignored{guess}"
        )
    sys.stdout.flush()
    if workers == 1:
        config = uvicorn.Config(gateway.app, **_UVICORN)
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    # The checks above ran here, once; each worker builds its own gateway from the same
    # environment and .env (worker_app), and this process only supervises them:
    # restarting a worker that dies and stopping all of them on SIGINT or SIGTERM.
    asyncio.run(gateway.close())
    gateway.engine.dispose()
    config = uvicorn.Config("veil.gateway:worker_app", factory=True, workers=workers, **_UVICORN)
    supervisor = Multiprocess(config, sockets=[sock])
    # The workers' metrics (SharedMetrics) live in VEIL_HOME, private to its user: the
    # counters name virtual key ids.
    run_dir = settings.home / "run"
    try:
        run_dir.mkdir(mode=0o700, exist_ok=True)
        metrics = tempfile.TemporaryDirectory(prefix="metrics-", dir=run_dir)
    except OSError as exc:
        raise ConfigError(
            f"Cannot create the workers' metrics directory in {run_dir}: {exc.strerror}.",
            hint="Make VEIL_HOME writable by the user running veil serve.",
        ) from None
    with metrics as metrics_dir:
        os.environ[METRICS_DIR_VARIABLE] = metrics_dir  # inherited by the workers
        supervisor.run()
    if any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes):
        # Uvicorn stops every worker when one cannot start, and returns quietly.
        raise ConfigError(
            "A gateway worker failed to start (its error is printed above); all stopped.",
            hint="Fix what it names and start veil serve again.",
        )
