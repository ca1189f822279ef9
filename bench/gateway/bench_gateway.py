"""Gateway benchmark: the same upstream on 127.0.0.1 reached directly, through a minimal
aiohttp pass-through (the floor for any Python gateway), through the same relay on
Starlette and uvicorn (the floor for a gateway built like Veil's), through Veil (detection,
pseudonymization, restore, answer screening and the audit entry all on) and through the
LiteLLM proxy (no database), without and with its Presidio guardrail (pre-call masking,
output_parse_pii on; Presidio's REST API served by presidio_service.py), in one run.
Veil is measured as one process (the goals' figure) and as ``veil serve --workers 2``
(rate limits then in Redis, as that mode requires; skipped when Redis is not reachable).

Usage: python bench/gateway/bench_gateway.py [--seconds 5] [--soak SECONDS] > result.json
LiteLLM is looked for in .venv-litellm (bench/gateway/run.sh installs it), Presidio in
.venv-bench (bench/run.sh installs it); a target whose environment is missing is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
VEIL = str(Path(sys.executable).with_name("veil"))
LITELLM = ROOT / ".venv-litellm" / "bin" / "litellm"
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"  # Presidio + the spaCy model
REDIS_URL = os.environ.get("VEIL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

FILLER = (
    "Please summarize the support ticket below and suggest a friendly reply. The customer "
    "reports that the export job fails every night since the upgrade, and that the "
    "dashboard shows stale numbers for the last three days. "
)
PROMPT = (
    "Ticket from maria.gonzalez@example.com (phone +1 415 555 0133, office IP 198.51.100.7). "
    + FILLER * 4
    + "Escalate to j.doe@example.org if needed."
)[:1024]
BODY = {"model": "gpt-bench", "messages": [{"role": "user", "content": PROMPT}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def wait_ready(url: str, timeout: float = 120) -> float:
    import urllib.request

    start = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return time.perf_counter() - start
        except OSError:
            pass
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.02)


class Target:
    def __init__(
        self,
        name: str,
        url: str,
        headers: dict[str, str],
        process: subprocess.Popen[bytes] | None,
        cold_start: float | None,
    ) -> None:
        self.name, self.url, self.headers = name, url, headers
        self.process, self.cold_start = process, cold_start

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def one(session: aiohttp.ClientSession, target: Target, body: bytes) -> float:
    start = time.perf_counter()
    async with session.post(
        target.url + "/chat/completions", data=body, headers=target.headers
    ) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{target.name}: HTTP {response.status}")
    return time.perf_counter() - start


def body_number(number: int, **extra: Any) -> bytes:
    """The 1 KB prompt made unique per request (so no cache can answer it)."""
    prompt = f"#{number:08d} " + PROMPT[10:]
    return json.dumps({**BODY, **extra, "messages": [{"role": "user", "content": prompt}]}).encode()


async def load(target: Target, concurrency: int, seconds: float) -> dict[str, Any]:
    counter = iter(range(10**9))
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(min(concurrency, 8)):  # warm the pools
            await one(session, target, body_number(next(counter)))

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                try:
                    latencies.append(await one(session, target, body_number(next(counter))))
                except Exception:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3) if latencies else None,
    }


async def ttft(target: Target, count: int = 100) -> dict[str, Any]:
    firsts: list[float] = []
    async with aiohttp.ClientSession() as session:
        for index in range(count + 5):
            body = body_number(index, stream=True)
            start = time.perf_counter()
            first = None
            async with session.post(
                target.url + "/chat/completions", data=body, headers=target.headers
            ) as response:
                async for line in response.content:
                    if (
                        first is None
                        and line.startswith(b"data:")
                        and b'"content": "' in line.replace(b'"content":"', b'"content": "')
                        and b'"content": ""' not in line
                    ):
                        first = time.perf_counter() - start
                if first is None:
                    raise RuntimeError(f"{target.name}: no streamed content")
            if index >= 5:
                firsts.append(first)
    return {"ttft_p50_ms": round(statistics.median(firsts) * 1000, 3)}


def start_upstream() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([PYTHON, str(HERE / "upstream.py"), str(port)])
    wait_ready(f"http://127.0.0.1:{port}/v1/models")
    return process, f"http://127.0.0.1:{port}/v1"


def start_passthrough(upstream: str, script: str = "passthrough.py") -> Target:
    """The aiohttp pass-through (the floor), or with ``starlette_passthrough.py`` the same
    relay on Starlette and uvicorn (the floor for a gateway built like Veil's)."""
    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen([PYTHON, str(HERE / script), str(port), upstream])
    wait_ready(f"http://127.0.0.1:{port}/healthz")
    return Target(
        script.removesuffix(".py").replace("_", "-"),
        f"http://127.0.0.1:{port}/v1",
        {"content-type": "application/json"},
        process,
        time.perf_counter() - start,
    )


def redis_reachable(url: str) -> bool:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False
    return True


def start_veil(upstream: str, home: Path, workers: int = 1) -> Target:
    """``veil serve``; with ``workers`` > 1 the processes share limits in Redis
    (``--redis``), as ``veil serve --workers`` requires."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    env.update(
        {
            "VEIL_HOME": str(home / "state"),
            "VEIL_ENV_FILE": str(home / ".env"),
            "OPENAI_BASE_URL": upstream,
            "OPENAI_API_KEY": "sk-bench-upstream-key-0000",
        }
    )
    if workers > 1:
        env["VEIL_REDIS_URL"] = REDIS_URL
    key_file = home / "key"
    start = time.perf_counter()
    process = subprocess.Popen(
        [VEIL, "serve", "--port", str(port), "--json", "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.rstrip() == b"}":
            break
    report = json.loads(b"".join(lines))
    if report["virtual_key"]:
        key_file.write_text(report["virtual_key"])
    wait_ready(f"http://127.0.0.1:{port}/healthz")
    cold = time.perf_counter() - start
    return Target(
        "veil" if workers == 1 else f"veil-{workers}-workers",
        f"http://127.0.0.1:{port}/v1",
        {"content-type": "application/json", "authorization": f"Bearer {key_file.read_text()}"},
        process,
        cold,
    )


def start_presidio() -> tuple[subprocess.Popen[bytes], str] | None:
    """Presidio's analyzer and anonymizer REST API, for LiteLLM's Presidio guardrail."""
    if not BENCH_PYTHON.exists():
        return None
    port = free_port()
    process = subprocess.Popen(
        [str(BENCH_PYTHON), str(HERE / "presidio_service.py"), str(port)],
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/health", timeout=180)
    return process, f"http://127.0.0.1:{port}"


def start_litellm(upstream: str, home: Path, presidio: str | None = None) -> Target | None:
    if not LITELLM.exists():
        return None
    port = free_port()
    config = home / ("litellm-presidio.yaml" if presidio else "litellm.yaml")
    guardrail = (
        "guardrails:\n  - guardrail_name: presidio-pii\n    litellm_params:\n"
        "      guardrail: presidio\n      mode: pre_call\n      default_on: true\n"
        "      presidio_language: en\n      output_parse_pii: true\n"
        if presidio
        else ""
    )
    config.write_text(
        "model_list:\n  - model_name: gpt-bench\n    litellm_params:\n"
        f"      model: openai/gpt-bench\n      api_base: {upstream}\n"
        "      api_key: sk-bench-upstream-key-0000\n" + guardrail
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VEIL_", "DATABASE_URL"))}
    env["LITELLM_LOG"] = "ERROR"
    if presidio:
        env["PRESIDIO_ANALYZER_API_BASE"] = presidio
        env["PRESIDIO_ANONYMIZER_API_BASE"] = presidio
    master = "sk-" + os.urandom(32).hex()
    env["LITELLM_MASTER_KEY"] = master  # it refuses to start without one
    start = time.perf_counter()
    process = subprocess.Popen(
        [
            str(LITELLM),
            "--config",
            str(config),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--num_workers",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
    return Target(
        "litellm+presidio" if presidio else "litellm",
        f"http://127.0.0.1:{port}/v1",
        {"content-type": "application/json", "authorization": f"Bearer {master}"},
        process,
        time.perf_counter() - start,
    )


async def soak(target: Target, seconds: float) -> dict[str, Any]:
    samples = []
    errors = requests = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        result = await load(target, 64, min(30.0, end - time.perf_counter()))
        errors += result["errors"]
        requests += result["requests"]
        assert target.process is not None
        samples.append(rss_mb(target.process.pid))
        print(f"soak: {requests} requests, {errors} errors, RSS {samples[-1]} MB", file=sys.stderr)
    return {
        "seconds": seconds,
        "concurrency": 64,
        "requests": requests,
        "errors": errors,
        "rss_mb_samples": samples,
    }


def soak_only(seconds: float) -> None:
    upstream_process, upstream = start_upstream()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            veil = start_veil(upstream, Path(tmp))
            try:
                result = asyncio.run(soak(veil, seconds))
            finally:
                veil.stop()
    finally:
        upstream_process.terminate()
    json.dump({"soak": result}, sys.stdout, indent=2)
    sys.stdout.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per concurrency level")
    parser.add_argument("--soak", type=float, default=0.0, help="Veil alone at c=64 (s)")
    parser.add_argument("--levels", default="1,16,64")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also measure veil serve --workers N (limits in Redis at VEIL_BENCH_REDIS_URL)",
    )
    parser.add_argument(
        "--soak-only", action="store_true", help="only Veil's soak (--soak SECONDS), no anchors"
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    if args.soak_only:
        soak_only(args.soak or 600.0)
        return
    upstream_process, upstream = start_upstream()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "prompt_bytes": len(PROMPT.encode()),
        "seconds_per_level": args.seconds,
        "targets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        direct = Target("direct", upstream, {"content-type": "application/json"}, None, None)
        targets = [direct]
        presidio = None
        try:
            targets.append(start_passthrough(upstream))
            targets.append(start_passthrough(upstream, "starlette_passthrough.py"))
            targets.append(start_veil(upstream, home))
            if args.workers > 1 and redis_reachable(REDIS_URL):
                (home / "workers").mkdir()
                targets.append(start_veil(upstream, home / "workers", args.workers))
            litellm = start_litellm(upstream, home)
            if litellm is not None:
                targets.append(litellm)
                presidio = start_presidio()
                if presidio is not None:
                    guarded = start_litellm(upstream, home, presidio[1])
                    if guarded is not None:
                        targets.append(guarded)
            for target in targets:
                entry: dict[str, Any] = {
                    "cold_start_s": None
                    if target.cold_start is None
                    else round(target.cold_start, 2)
                }
                entry["levels"] = [asyncio.run(load(target, c, args.seconds)) for c in levels]
                entry.update(asyncio.run(ttft(target)))
                if target.process is not None:
                    entry["rss_mb"] = rss_mb(target.process.pid)
                results["targets"][target.name] = entry
                print(target.name, json.dumps(entry), file=sys.stderr)
            index = next(i for i, target in enumerate(targets) if target.name == "veil")
            targets[index].stop()
            restarted = start_veil(upstream, home)
            targets[index] = restarted
            results["targets"]["veil"]["warm_restart_s"] = round(restarted.cold_start or 0, 2)
            if args.soak:
                results["soak"] = asyncio.run(soak(restarted, args.soak))
        finally:
            for target in targets:
                target.stop()
            if presidio is not None:
                presidio[0].terminate()
            upstream_process.terminate()
    by = results["targets"]
    summary: dict[str, Any] = {}
    for index, c in enumerate(levels):
        floor = by["passthrough"]["levels"][index]["rps"]
        summary[f"veil_vs_passthrough_rps_c{c}"] = round(
            by["veil"]["levels"][index]["rps"] / floor, 3
        )
        summary[f"starlette_passthrough_vs_passthrough_rps_c{c}"] = round(
            by["starlette-passthrough"]["levels"][index]["rps"] / floor, 3
        )
        workers = f"veil-{args.workers}-workers"
        if workers in by:
            summary[f"{workers}_vs_passthrough_rps_c{c}"] = round(
                by[workers]["levels"][index]["rps"] / floor, 3
            )
        for name in ("litellm", "litellm+presidio"):
            if name in by:
                summary[f"veil_vs_{name}_rps_c{c}"] = round(
                    by["veil"]["levels"][index]["rps"] / by[name]["levels"][index]["rps"], 1
                )
    if 1 in levels:
        i = levels.index(1)
        summary["veil_added_p50_ms_vs_direct_c1"] = round(
            by["veil"]["levels"][i]["p50_ms"] - by["direct"]["levels"][i]["p50_ms"], 3
        )
        summary["veil_added_p50_ms_vs_passthrough_c1"] = round(
            by["veil"]["levels"][i]["p50_ms"] - by["passthrough"]["levels"][i]["p50_ms"], 3
        )
    summary["veil_added_ttft_ms_vs_passthrough"] = round(
        by["veil"]["ttft_p50_ms"] - by["passthrough"]["ttft_p50_ms"], 3
    )
    results["summary"] = summary
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
