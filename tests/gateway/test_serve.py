"""``veil serve`` start-up, the echo upstream, upstream failures and shared limits."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic
import openai
import pytest

from tests.gateway.conftest import (
    UPSTREAM_KEY,
    VEIL,
    Upstream,
    gateway_env,
    patch_on_import,
    serve_refusing_to_start,
    start_gateway,
)

EMAIL = "omar.haddad@example.com"


def test_first_start_creates_root_key_and_one_virtual_key_shown_once(tmp_path: Path) -> None:
    env = gateway_env(tmp_path)
    first = start_gateway(env)
    first.stop()
    assert first.key.startswith("sk-veil-")
    assert "VEIL_MASTER_KEY=" in (tmp_path / ".env").read_text()
    assert oct((tmp_path / ".env").stat().st_mode & 0o777) == "0o600"
    second = start_gateway(env)
    try:
        assert second.key is None  # not shown again; the first still works
        answer = openai.OpenAI(base_url=second.url, api_key=first.key).models.list()
        assert answer.data
    finally:
        second.stop()


def test_echo_upstream_answers_with_what_a_provider_would_receive(tmp_path: Path) -> None:
    served = start_gateway(gateway_env(tmp_path))
    try:
        answer = openai.OpenAI(base_url=served.url, api_key=served.key).chat.completions.create(
            model="any-model", messages=[{"role": "user", "content": f"mail {EMAIL}"}]
        )
        received = json.loads(answer.choices[0].message.content or "")
        assert received["messages"][0]["content"] == "mail <EMAIL_1>"
        counted = anthropic.Anthropic(base_url=served.root, api_key=served.key).messages
        tokens = counted.count_tokens(
            model="claude-any", messages=[{"role": "user", "content": f"mail {EMAIL}"}]
        )
        assert tokens.input_tokens > 0  # the echo counts what it would have received
    finally:
        served.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_upstream_is_502(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, OPENAI_BASE_URL=f"http://127.0.0.1:{_free_port()}/v1")
    served = start_gateway(env)
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            openai.OpenAI(
                base_url=served.url, api_key=served.key, max_retries=0
            ).chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}]
            )
        assert caught.value.status_code == 502
    finally:
        served.stop()


def test_plain_http_upstream_off_this_machine_is_refused(tmp_path: Path) -> None:
    env = gateway_env(
        tmp_path, OPENAI_BASE_URL="http://api.example.com/v1", OPENAI_API_KEY="sk-x" * 5
    )
    result = serve_refusing_to_start(env)
    assert result.returncode == 2
    assert "not HTTPS" in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = serve_refusing_to_start(gateway_env(tmp_path), port)
    assert result.returncode == 2
    assert "already in use" in result.stderr


@pytest.mark.redis
def test_two_gateway_processes_share_limits_through_redis(tmp_path: Path, redis_url: str) -> None:
    env = gateway_env(tmp_path, VEIL_REDIS_URL=redis_url)
    first = start_gateway(env)
    second = start_gateway(env)
    try:
        key = first.create_key("--name", "shared", "--rate", "3/min")
        a = openai.OpenAI(base_url=first.url, api_key=key, max_retries=0)
        b = openai.OpenAI(base_url=second.url, api_key=key, max_retries=0)
        for client in (a, b, a):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.RateLimitError):
            b.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    finally:
        first.stop()
        second.stop()


def test_more_than_one_worker_needs_redis_for_shared_limits(tmp_path: Path) -> None:
    result = serve_refusing_to_start(gateway_env(tmp_path), 0, "--workers", "2")
    assert result.returncode == 2
    assert "--workers 2 needs VEIL_REDIS_URL" in result.stderr


def _worker_processes(pid: int) -> list[int]:
    """Uvicorn's worker processes under ``pid`` (spawned by multiprocessing)."""
    workers = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"multiprocessing.spawn" in command:
            workers.append(int(child))
    return workers


@pytest.mark.redis
def test_workers_share_one_port_the_limits_and_the_ledger(
    tmp_path: Path, redis_url: str, upstream: Upstream
) -> None:
    env = gateway_env(
        tmp_path,
        VEIL_REDIS_URL=redis_url,
        OPENAI_BASE_URL=upstream.url + "/v1",
        OPENAI_API_KEY=UPSTREAM_KEY,
    )
    served = start_gateway(env, "--workers", "2")
    try:
        assert served.report["workers"] == 2
        assert len(_worker_processes(served.process.pid)) == 2
        key = served.create_key("--name", "shared", "--rate", "4/min")
        client = openai.OpenAI(base_url=served.url, api_key=key, max_retries=0)

        def ask(n: int) -> str:
            try:
                answer = client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": f"mail worker{n}@example.com"}]
                )
            except openai.RateLimitError:
                return "limited"
            return answer.choices[0].message.content or ""

        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(ask, range(6)))
        assert answers.count("limited") == 2
        assert sum("@example.com" in answer for answer in answers) == 4
        # Either worker answers a scrape, and reports both: the other's counts arrive
        # within SharedMetrics.PERIOD, so scrape until they have.
        expected = {
            'veil_requests_total{endpoint="chat.completions",status="200"}': 4,
            'veil_requests_total{endpoint="chat.completions",status="429"}': 2,
            'veil_findings_total{kind="EMAIL"}': 4,
        }
        deadline = time.monotonic() + 30
        while (counts := _scrape(served.root, expected)) != expected:
            assert time.monotonic() < deadline, counts
            time.sleep(0.2)
    finally:
        served.stop()
    assert "@example.com" not in upstream.everything_received()
    verified = served.veil("audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["entries"] >= 6


def _scrape(root: str, series: dict[str, int]) -> dict[str, int]:
    with urllib.request.urlopen(root + "/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    values = dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    return {name: int(float(values.get(name, "0"))) for name in series}


@pytest.mark.redis
def test_a_worker_that_cannot_start_stops_serve_with_its_error(
    tmp_path: Path, redis_url: str
) -> None:
    # In uvicorn's worker processes only (spawned with --multiprocessing-fork),
    # veil.gateway.create_app fails the way a worker that cannot reach something fails.
    hooks = patch_on_import(
        tmp_path / "hooks",
        "veil.gateway",
        """
        def create_app():
            from veil.errors import ConfigError
            raise ConfigError("this worker cannot start (test)")
        module.create_app = create_app
        """,
        condition='"--multiprocessing-fork" in sys.argv',
    )
    env = gateway_env(tmp_path, VEIL_REDIS_URL=redis_url, PYTHONPATH=hooks)
    result = serve_refusing_to_start(env, 0, "--workers", "2")
    assert result.returncode == 2
    assert "this worker cannot start (test)" in result.stderr
    assert "A gateway worker failed to start" in result.stderr


def test_unreachable_redis_is_a_clear_error_at_start(tmp_path: Path) -> None:
    env = gateway_env(tmp_path, VEIL_REDIS_URL=f"redis://127.0.0.1:{_free_port()}/0")
    result = subprocess.run(
        [VEIL, "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 4
    assert "Cannot reach Redis" in result.stderr


def test_a_host_that_is_not_this_machines_is_named_with_the_host_fix(tmp_path: Path) -> None:
    # The hint said to pick another port.
    result = serve_refusing_to_start(gateway_env(tmp_path), 0, "--host", "no-such-host.invalid")
    assert result.returncode == 2
    assert "Listening on no-such-host.invalid" in result.stderr
    assert "Check --host" in result.stderr


def test_serve_warns_of_a_misspelt_veil_variable(tmp_path: Path) -> None:
    served = start_gateway(gateway_env(tmp_path, VEIL_REDIS_ULR="redis://127.0.0.1:6379/0"))
    log = served.stop()
    assert "VEIL_REDIS_ULR (environment) is not a Veil setting and is ignored" in log
    assert "did you mean VEIL_REDIS_URL?" in log
