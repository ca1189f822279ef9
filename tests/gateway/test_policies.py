"""Named policies in a running gateway: installed with ``veil policy``, applied to the
keys that name them, reloaded when their file changes, every version in the ledger."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.gateway.conftest import Served, gateway_env, patch_on_import, start_gateway

EMAIL = "omar.haddad@example.com"
REDACT = "version: 1\nname: team\ndefault: {operator: redact}\n"
MASK = "version: 1\nname: team\ndefault: {operator: redact}\nkinds:\n  EMAIL: {operator: mask}\n"


def _install(served: Served, text: str) -> dict[str, Any]:
    result = served.veil("policy", "install", "-", "--name", "team", "--json", stdin=text)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def _forwarded(client: openai.OpenAI) -> str:
    """What the echo upstream received: the prompt after the key's policy."""
    answer = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": f"mail {EMAIL}"}]
    )
    return str(json.loads(answer.choices[0].message.content or "")["messages"][0]["content"])


def _entries(served: Served, action: str) -> list[dict[str, Any]]:
    result = served.veil("audit", "query", "--action", action)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_a_policy_change_reaches_the_running_gateway_and_every_version_is_audited(
    tmp_path: Path,
) -> None:
    served = start_gateway(gateway_env(tmp_path))
    try:
        first = _install(served, REDACT)
        client = openai.OpenAI(
            base_url=served.url, api_key=served.create_key("--name", "t", "--policy", "team")
        )
        assert _forwarded(client) == "mail [EMAIL]"
        second = _install(served, MASK)
        assert second["previous_sha256"] == first["sha256"]
        _until(lambda: _forwarded(client) != "mail [EMAIL]", "the new policy never applied")
        assert EMAIL not in _forwarded(client)
        # An edit that breaks the file leaves the last good version in force (a file is
        # looked at again when a request needs its policy).
        masked = _forwarded(client)
        Path(second["path"]).write_text("version: 1\ndefault: {operator: zap}\n")
        _until(
            lambda: (
                _forwarded(client) == masked
                and any(e["outcome"] == "error" for e in _entries(served, "policy.load"))
            ),
            "the broken file was never noticed",
        )
        # So does a rule for a kind no recognizer reports (a typo: EMIAL), which would
        # otherwise apply the default to e-mail addresses without a word.
        Path(second["path"]).write_text(MASK.replace("EMAIL", "EMIAL"))
        _until(
            lambda: (
                _forwarded(client) == masked
                and sum(e["outcome"] == "error" for e in _entries(served, "policy.load")) == 2
            ),
            "the misspelt kind was never noticed",
        )
    finally:
        served.stop()
    loads = [e for e in _entries(served, "policy.load") if e["resource"] == "policy:team"]
    assert [(e["outcome"], e["details"]["sha256"]) for e in loads] == [
        ("ok", first["sha256"]),
        ("ok", second["sha256"]),
        ("error", second["sha256"]),
        ("error", second["sha256"]),
    ]
    assert loads[1]["details"]["previous_sha256"] == first["sha256"]
    installs = _entries(served, "policy.install")
    assert [e["details"]["sha256"] for e in installs] == [first["sha256"], second["sha256"]]
    calls = _entries(served, "gateway.chat.completions")
    assert calls
    assert {e["details"]["policy"] for e in calls} == {"team"}
    verified = served.veil("audit", "verify", "--json")
    assert verified.returncode == 0, verified.stderr


def test_a_policy_that_never_loaded_refuses_with_a_provider_style_error(tmp_path: Path) -> None:
    # Edited by hand into an invalid file before any request used it: the gateway has no
    # version to keep, and answered a bare text/plain 500 without a word in its log.
    served = start_gateway(gateway_env(tmp_path))
    try:
        path = Path(_install(served, REDACT)["path"])
        key = served.create_key("--name", "t", "--policy", "team")
        path.write_text(MASK.replace("EMAIL", "EMIAL"))
        client = openai.OpenAI(base_url=served.url, api_key=key, max_retries=0)
        with pytest.raises(openai.InternalServerError) as raised:
            _forwarded(client)
        assert raised.value.status_code == 500
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["code"] == "policy_unavailable"
        assert "veil doctor" in raised.value.body["message"]
        path.write_text(MASK)  # fixed: the next request applies it
        assert EMAIL not in _forwarded(client)
    finally:
        log = served.stop()
    assert "kinds.EMIAL" in log
    calls = _entries(served, "gateway.chat.completions")
    assert [e["outcome"] for e in calls] == ["error", "ok"]


def _with_bug(tmp_path: Path, module: str, cls: str, method: str) -> Served:
    """``veil serve`` with a bug (an exception Veil does not expect) in module.cls.method,
    whose message quotes a value."""
    patch = f"""
        def broken(*args, **kwargs):
            raise RuntimeError("bug while reading omar.haddad@example.com")
        setattr(module.{cls}, "{method}", broken)
        """
    hooks = patch_on_import(tmp_path / "hooks", module, patch)
    return start_gateway(gateway_env(tmp_path, PYTHONPATH=hooks))


def test_an_unexpected_failure_is_a_provider_style_500_logged_without_content(
    tmp_path: Path,
) -> None:
    served = _with_bug(tmp_path, "veil.gateway._policies", "Policies", "get")
    try:
        client = openai.OpenAI(base_url=served.url, api_key=served.key, max_retries=0)
        with pytest.raises(openai.InternalServerError) as raised:
            _forwarded(client)
        assert isinstance(raised.value.body, dict)
        assert raised.value.body["code"] == "internal_error"
    finally:
        log = served.stop()
    assert "RuntimeError" in log
    assert "omar.haddad" not in log
    calls = _entries(served, "gateway.chat.completions")
    assert [(e["outcome"], e["details"]["status"]) for e in calls] == [("error", 500)]
    assert served.veil("audit", "verify").returncode == 0


def test_an_unexpected_failure_mid_stream_ends_it_with_an_error_event(tmp_path: Path) -> None:
    served = _with_bug(tmp_path, "veil.gateway._streams", "OpenAIStream", "chunk")
    try:
        client = openai.OpenAI(base_url=served.url, api_key=served.key, max_retries=0)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"mail {EMAIL}"}], stream=True
        )
        with pytest.raises(openai.APIError, match="Veil failed on this answer"):
            list(stream)
    finally:
        log = served.stop()
    assert "RuntimeError" in log
    assert "omar.haddad" not in log
    calls = _entries(served, "gateway.chat.completions")
    assert [(e["outcome"], e["details"].get("error")) for e in calls] == [("error", "internal")]


def test_an_unexpected_failure_mid_anthropic_stream_ends_it_with_an_error_event(
    tmp_path: Path,
) -> None:
    served = _with_bug(tmp_path, "veil.gateway._streams", "AnthropicStream", "event")
    try:
        client = anthropic.Anthropic(base_url=served.root, api_key=served.key, max_retries=0)
        stream = client.messages.create(
            model="claude-test",
            max_tokens=50,
            messages=[{"role": "user", "content": f"mail {EMAIL}"}],
            stream=True,
        )
        with pytest.raises(anthropic.APIStatusError, match="Veil failed on this answer") as raised:
            list(stream)
        # Anthropic's own error event shape
        assert raised.value.body == {
            "type": "error",
            "error": {"type": "api_error", "message": "Veil failed on this answer."},
        }
    finally:
        log = served.stop()
    assert "RuntimeError" in log
    assert "omar.haddad" not in log
    calls = _entries(served, "gateway.messages")
    assert [(e["outcome"], e["details"].get("error")) for e in calls] == [("error", "internal")]
