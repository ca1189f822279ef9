"""The gateway as an application sees it: the official ``openai`` SDK against a running
``veil serve`` in front of a real upstream that records what it receives."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.gateway.conftest import UPSTREAM_KEY, Served, Upstream, new_requests
from tests.gateway.conftest import openai_client as client

EMAIL = "maria.gonzalez@example.com"
PHONE = "+1 415 555 0133"
CARD = "4111 1111 1111 1111"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PROMPT = f"Write to {EMAIL} or call {PHONE}; card {CARD}."


def test_chat_prompt_reaches_upstream_without_pii_and_answer_has_real_values(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    answer = client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": PROMPT}]
    )
    seen = new_requests(upstream, before)
    for value in (EMAIL, "415 555 0133", "1111 1111 1111"):
        assert value not in seen
    assert "<EMAIL_1>" in seen
    assert answer.choices[0].message.content == f"Noted: {PROMPT}"


def test_provider_key_comes_from_veil_not_from_the_client(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hello"}]
    )
    headers = {k.lower(): v for k, v in upstream.received[before]["headers"].items()}
    assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert served.key not in json.dumps(upstream.received[before])


def test_stream_cut_through_tokens_is_restored(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    stream = client(served).chat.completions.create(
        model="gpt-test", stream=True, messages=[{"role": "user", "content": PROMPT}]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == f"Noted: {PROMPT}"
    assert EMAIL not in new_requests(upstream, before)


def test_secret_is_removed_before_forwarding(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    answer = client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": f"my token is {GITHUB}"}]
    )
    assert GITHUB not in new_requests(upstream, before)
    assert "[GITHUB_TOKEN]" in (answer.choices[0].message.content or "")


def test_blocking_policy_refuses_secret_with_kinds_and_forwards_nothing(
    served: Served, upstream: Upstream
) -> None:
    policies = Path(served.env["VEIL_HOME"]) / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    (policies / "strict.yaml").write_text(
        "version: 1\nname: strict\nsurfaces:\n  gateway:\n    secrets: {operator: block}\n"
        "    default: {operator: pseudonymize}\n"
    )
    key = served.create_key("--name", "strict-app", "--policy", "strict")
    before = len(upstream.received)
    with pytest.raises(openai.BadRequestError) as caught:
        client(served, key).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": f"token {GITHUB}"}]
        )
    assert caught.value.code == "veil_blocked"
    assert "GITHUB_TOKEN" in str(caught.value)
    assert GITHUB not in str(caught.value)
    assert len(upstream.received) == before


def test_content_parts_and_tool_arguments_are_scanned_and_restored(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    answer = client(served).chat.completions.create(
        model="gpt-test",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": f"earlier: {EMAIL}"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c0",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": json.dumps({"who": PHONE})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c0", "content": f"found {EMAIL}"},
            {"role": "user", "content": [{"type": "text", "text": f"mail {EMAIL}"}]},
        ],
        tools=[{"type": "function", "function": {"name": "send", "parameters": {}}}],
    )
    seen = new_requests(upstream, before)
    assert EMAIL not in seen
    assert "555 0133" not in seen
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == {"recipient": f"mail {EMAIL}"}


def test_streamed_tool_call_arguments_are_restored(served: Served) -> None:
    stream = client(served).chat.completions.create(
        model="gpt-test",
        stream=True,
        messages=[{"role": "user", "content": f"mail {EMAIL}"}],
        tools=[{"type": "function", "function": {"name": "send", "parameters": {}}}],
    )
    arguments = ""
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += call.function.arguments or ""  # type: ignore[union-attr]
    assert json.loads(arguments) == {"recipient": f"mail {EMAIL}"}


def test_tool_call_arguments_escaped_as_go_writes_them_are_restored(served: Served) -> None:
    # Ollama's arguments come from Go's JSON encoder: "\u003cEMAIL_1\u003e", not "<EMAIL_1>".
    messages: Any = [{"role": "user", "content": f"[[go-json]] mail {EMAIL}"}]
    tools: Any = [{"type": "function", "function": {"name": "send", "parameters": {}}}]
    answer = client(served).chat.completions.create(
        model="gpt-test", messages=messages, tools=tools
    )
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == {"recipient": f"[[go-json]] mail {EMAIL}"}
    stream = client(served).chat.completions.create(
        model="gpt-test", messages=messages, tools=tools, stream=True
    )
    arguments = ""
    for chunk in stream:
        for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += piece.function.arguments or ""  # type: ignore[union-attr]
    assert json.loads(arguments) == {"recipient": f"[[go-json]] mail {EMAIL}"}


def test_embeddings_are_redacted_not_pseudonymized(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    result = client(served).embeddings.create(
        model="text-embedding-test", input=[f"user {EMAIL}", "plain"]
    )
    assert len(result.data) == 2
    body = upstream.received[before]["body"]
    assert body["input"] == ["user [EMAIL]", "plain"]


def test_completions_endpoint_round_trip(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    answer = client(served).completions.create(model="gpt-test", prompt=f"hi {EMAIL}")
    assert EMAIL not in new_requests(upstream, before)
    assert answer.choices[0].text == f"Noted: hi {EMAIL}"


def test_new_personal_data_in_the_answer_is_masked(served: Served) -> None:
    answer = client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": f"[[new-pii]] {EMAIL}"}]
    )
    content = answer.choices[0].message.content or ""
    assert EMAIL in content  # the user's own value comes back
    assert "dana.new@example.org" not in content
    assert "dXXX@example.org" in content


def test_models_lists_what_the_key_may_use(served: Served) -> None:
    key = served.create_key("--name", "narrow", "--models", "gpt-test")
    assert [m.id for m in client(served, key).models.list()] == ["gpt-test"]


def test_a_model_the_key_may_use_can_be_retrieved(served: Served) -> None:
    key = served.create_key("--name", "retrieve", "--models", "gpt-test,org/model-7b")
    assert client(served, key).models.retrieve("gpt-test").id == "gpt-test"
    assert client(served, key).models.retrieve("org/model-7b").id == "org/model-7b"
    with pytest.raises(openai.NotFoundError) as caught:
        client(served, key).models.retrieve("gpt-other")
    assert caught.value.code == "model_not_found"


def test_a_path_the_gateway_does_not_serve_gets_an_error_naming_what_it_serves(
    served: Served,
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(served).files.list()
    assert caught.value.code == "not_found"
    assert "GET /v1/files" in caught.value.message
    assert "POST /v1/chat/completions, /v1/responses" in caught.value.message


def test_a_method_the_endpoint_does_not_take_is_refused_in_json_with_allow(
    served: Served,
) -> None:
    request = urllib.request.Request(served.url + "/chat/completions")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 405
    assert caught.value.headers["allow"] == "POST"
    error = json.loads(caught.value.read())["error"]
    assert error["code"] == "method_not_allowed"
    assert "GET /v1/chat/completions" in error["message"]


def test_a_secret_in_an_unknown_path_is_not_echoed(served: Served) -> None:
    token = "ghp_R8x2kLm9QwErTy7UiOp3AsDfGh5JkLz1XcVb"
    request = urllib.request.Request(f"{served.url}/{token}/chat", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    message = json.loads(caught.value.read())["error"]["message"]
    assert token not in message
    assert "[GITHUB_TOKEN]" in message


def test_model_outside_the_keys_list_is_not_found(served: Served, upstream: Upstream) -> None:
    key = served.create_key("--name", "only-test", "--models", "gpt-test")
    before = len(upstream.received)
    with pytest.raises(openai.NotFoundError):
        client(served, key).chat.completions.create(
            model="gpt-other", messages=[{"role": "user", "content": "hi"}]
        )
    assert len(upstream.received) == before


def test_unknown_and_revoked_keys_are_refused(served: Served) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(served, "sk-veil-000000000000-" + "x" * 43).models.list()
    key = served.create_key("--name", "short-lived")
    key_id = "vk_" + key.split("-")[2]
    assert served.veil("keys", "revoke", key_id).returncode == 0
    with pytest.raises(openai.AuthenticationError):
        client(served, key).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )


def test_rate_limit_answers_429_with_retry_after(served: Served) -> None:
    key = served.create_key("--name", "limited", "--rate", "2/min")
    limited = client(served, key)
    for _ in range(2):
        limited.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.RateLimitError) as caught:
        limited.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert "(2/min)" in caught.value.body["message"]


def test_token_budget_is_charged_with_upstream_usage(served: Served) -> None:
    key = served.create_key("--name", "budget", "--tokens", "20/day")
    limited = client(served, key)
    limited.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "a"}])
    limited.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "b"}])
    # 2 x 12 tokens used of 20: the budget is spent. Said as such (it was "rate limit
    # reached; retry in 81216 s"), with the wait in hours.
    with pytest.raises(openai.RateLimitError) as caught:
        limited.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "c"}]
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "token_budget_exceeded"
    assert re.search(
        r"\(20/day\) is used up; it allows more in \d+ h \d+ min", caught.value.body["message"]
    )


def _post(served: Served, body: bytes, key: str | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        served.url + "/chat/completions",
        data=body,
        headers={
            "authorization": f"Bearer {key or served.key}",
            "content-type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_malformed_json_is_400(served: Served) -> None:
    status, body = _post(served, b'{"model": "gpt-test", "messages": [')
    assert status == 400
    assert body["error"]["code"] == "invalid_json"


def test_body_over_the_limit_is_413(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    big = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "x" * 70000}]})
    status, body = _post(served, big.encode())
    assert status == 413
    assert body["error"]["code"] == "request_too_large"
    assert len(upstream.received) == before


def test_a_request_without_a_valid_key_is_refused_before_its_body_is_read(
    served: Served,
) -> None:
    big = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "x" * 70000}]})
    status, body = _post(served, big.encode(), key="sk-veil-000000000000-" + "x" * 40)
    assert status == 401  # not 413: nothing about the request is looked at without a key
    assert body["error"]["code"] == "invalid_api_key"


def test_slow_upstream_is_504(served: Served) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client(served).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "[[slow]]"}]
        )
    assert caught.value.status_code == 504


def test_metrics_count_requests_and_findings(served: Served) -> None:
    client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": EMAIL}]
    )
    with urllib.request.urlopen(served.root + "/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'veil_requests_total{endpoint="chat.completions",status="200"}' in text
    assert 'veil_findings_total{kind="EMAIL"}' in text


def test_every_call_is_audited_without_content_and_the_ledger_verifies(served: Served) -> None:
    client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": PROMPT}]
    )
    result = served.veil("audit", "query", "--action", "gateway.chat.completions")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert entries
    last = entries[-1]
    assert last["details"]["found"]["EMAIL"] >= 1
    assert last["details"]["usage"]["total_tokens"] == 12
    dumped = json.dumps(entries)
    assert EMAIL not in dumped
    assert "415 555" not in dumped
    verify = served.veil("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


CODE = """Please review:
```python
def secret_sauce_ratio(recipe_weights, pepper_grams):
    # proprietary blend
    return pepper_grams / sum(recipe_weights)
```
"""


def _code_key(served: Served) -> str:
    policies = Path(served.env["VEIL_HOME"]) / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    (policies / "code.yaml").write_text(
        "version: 1\nname: code\ncode_blocks: anonymize\nsurfaces:\n  gateway:\n"
        "    default: {operator: pseudonymize}\n"
    )
    return served.create_key("--name", "code-review", "--policy", "code")


def test_fenced_code_is_anonymized_and_restored_in_the_answer(
    served: Served, upstream: Upstream
) -> None:
    key = _code_key(served)
    before = len(upstream.received)
    answer = client(served, key).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": CODE}]
    )
    seen = new_requests(upstream, before)
    for word in ("secret_sauce_ratio", "recipe_weights", "pepper_grams", "proprietary"):
        assert word not in seen
    assert "def f_1(" in seen
    assert answer.choices[0].message.content == f"Noted: {CODE}"


def test_fenced_code_is_restored_in_a_stream_cut_through_names(served: Served) -> None:
    key = _code_key(served)
    stream = client(served, key).chat.completions.create(
        model="gpt-test", stream=True, messages=[{"role": "user", "content": CODE}]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == f"Noted: {CODE}"


def test_creating_and_revoking_keys_is_audited_without_the_secret(served: Served) -> None:
    key = served.create_key("--name", "audited", "--rate", "5/s")
    key_id = "vk_" + key.split("-")[2]
    assert served.veil("keys", "revoke", key_id).returncode == 0
    result = served.veil("audit", "query", "--action", "keys.create")
    created = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert any(e["resource"] == key_id and e["details"]["rate"] == "5/s" for e in created)
    revoked = served.veil("audit", "query", "--action", "keys.revoke").stdout
    assert key_id in revoked
    assert key.split("-", 3)[3] not in result.stdout + revoked  # the secret (may hold "-")


def test_every_call_is_an_analytics_event_without_content(served: Served) -> None:
    client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": PROMPT}]
    )
    events: list[dict[str, Any]] = []
    mine: list[dict[str, Any]] = []
    for _ in range(100):  # the writer flushes at least once a second
        result = served.veil("analytics", "events", "--action", "gateway.chat.completions")
        assert result.returncode == 0, result.stderr
        events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        mine = [  # the served gateway is shared: this call's is a non-streamed 200 with usage
            e
            for e in events
            if e["values"].get("found.EMAIL")
            and e["dims"]["stream"] == "false"
            and "prompt_tokens" in e["values"]
        ]
        if mine:
            break
        time.sleep(0.1)
    event = mine[-1]
    assert event["dims"]["model"] == "gpt-test"
    assert event["dims"]["status"] == "200"
    assert event["values"]["prompt_tokens"] >= 1
    assert event["values"]["latency_ms"] > 0
    assert event["actor"].startswith("a_")
    assert "vk_" not in event["actor"]
    dumped = json.dumps(events)
    assert EMAIL not in dumped
    assert "415 555" not in dumped
    summary = served.veil("analytics", "summary", "--json")
    assert summary.returncode == 0, summary.stderr
    rows = json.loads(summary.stdout)
    assert any(r["model"] == "gpt-test" and r["totals"].get("found.EMAIL") for r in rows)


def _chat_entries(served: Served) -> list[dict[str, Any]]:
    result = served.veil("audit", "query", "--action", "gateway.chat.completions")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_an_upstream_answer_that_is_not_json_is_a_502_and_is_not_relayed(
    served: Served,
) -> None:
    # It used to go to the client as it came: neither restored nor screened.
    with pytest.raises(openai.APIStatusError) as raised:
        client(served).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": f"[[html]] {EMAIL}"}]
        )
    assert raised.value.status_code == 502
    assert "not a JSON object" in raised.value.message
    assert "<html>" not in raised.value.response.text
    last = _chat_entries(served)[-1]
    assert (last["outcome"], last["details"]["error"]) == ("error", "upstream_bad_answer")


def test_an_upstream_error_page_keeps_its_status_as_a_json_error(served: Served) -> None:
    with pytest.raises(openai.APIStatusError) as raised:
        client(served).chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "[[html-503]] hello"}]
        )
    assert raised.value.status_code == 503
    assert raised.value.response.json()["error"]["code"] == "upstream"


def test_a_streamed_answer_digest_is_keyed(served: Served) -> None:
    stream = client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "Yes"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    last = _chat_entries(served)[-1]
    assert last["details"]["stream"] is True
    assert last["details"]["digests"]["answer"].startswith("hmac-sha256:")


def test_a_client_leaving_mid_stream_is_audited_as_not_delivered(served: Served) -> None:
    before = len(_chat_entries(served))
    stream = client(served).chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "[[drip]] " + "a long answer " * 40}],
        stream=True,
    )
    for count, _ in enumerate(stream, 1):
        if count == 3:
            break
    stream.close()
    deadline = time.monotonic() + 10
    while len(_chat_entries(served)) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    last = _chat_entries(served)[-1]
    assert (last["outcome"], last["details"]["error"]) == ("error", "client_disconnected")


def test_end_user_ids_metadata_and_predicted_outputs_never_reach_the_upstream(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    client(served).chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Fix the greeting."}],
        user="maria.gonzalez@example.com",
        metadata={"customer": "call +1 415 555 0133"},
        prediction={"type": "content", "content": "Dear maria.gonzalez@example.com,"},
        extra_body={"safety_identifier": "maria.gonzalez@example.com"},
    )
    raw = upstream.received[before]["raw"]
    assert "maria.gonzalez@example.com" not in raw
    assert "415 555 0133" not in raw
    assert json.loads(raw)["user"] == "<EMAIL_1>"


def test_a_completions_suffix_is_scanned_like_the_prompt(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    client(served).completions.create(
        model="gpt-test", prompt="def notify():\n", suffix="    send('maria@example.com')\n"
    )
    raw = upstream.received[before]["raw"]
    assert "maria@example.com" not in raw
    assert "<EMAIL_1>" in raw


@pytest.mark.parametrize("stream", [False, True])
def test_tokens_the_model_escaped_or_unbracketed_come_back_as_real_values(
    served: Served, stream: bool
) -> None:
    prompt = "Mail a@example.com, b@example.com and c@example.com. [[escaped]]"
    request = {"model": "gpt-test", "messages": [{"role": "user", "content": prompt}]}
    if stream:
        chunks = client(served).chat.completions.create(**request, stream=True)  # type: ignore[call-overload]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client(served).chat.completions.create(**request).choices[0].message.content  # type: ignore[call-overload]
    assert text == f"Noted: {prompt}"  # &lt;EMAIL_1&gt;, \\<EMAIL_2\\>, EMAIL_3 restored


def test_a_stream_that_just_ends_still_delivers_the_text_held_back(served: Served) -> None:
    prompt = f"Reach me at {EMAIL} [[no-end]]"
    chunks = client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": prompt}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Noted: {prompt}"


def test_a_streamed_refusal_comes_back_with_real_values(served: Served) -> None:
    prompt = f"Write to {EMAIL} [[refuse]]"
    chunks = client(served).chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": prompt}], stream=True
    )
    text = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
    assert text == f"Noted: {prompt}"


def test_a_credential_sent_as_the_model_is_refused_and_never_recorded(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    body = {"model": GITHUB, "messages": [{"role": "user", "content": "hi"}]}  # swapped
    status, answer = _post(served, json.dumps(body).encode())
    assert status == 400
    assert answer["error"]["code"] == "veil_blocked"
    assert GITHUB not in json.dumps(answer)
    assert len(upstream.received) == before
    # By outcome, not "the last entry": a stream of an earlier test records its entry
    # when the stream ends, which may come after this one.
    result = served.veil("audit", "query", "--outcome", "blocked")
    assert result.returncode == 0
    assert GITHUB not in result.stdout  # the ledger keeps what it is given for ever
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(e["resource"].startswith("[GITHUB_TOKEN] hmac-sha256:") for e in entries)


@pytest.mark.parametrize("stream", [False, True])
def test_a_lone_surrogate_escape_passes_through_both_ways(
    served: Served, upstream: Upstream, stream: bool
) -> None:
    # `"\ud800"` is valid JSON but not UTF-8: writing the forwarded body (and the answer)
    # failed with a bare 500.
    raw = (
        '{"model": "gpt-test", "stream": %s, "messages": '
        '[{"role": "user", "content": "odd \\ud800 text, mail omar.haddad@example.com"}]}'
    ) % ("true" if stream else "false")
    request = urllib.request.Request(
        served.url + "/chat/completions",
        data=raw.encode(),
        headers={"Authorization": f"Bearer {served.key}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = response.read().decode()
    forwarded = upstream.received[-1]["raw"]
    assert "\\ud800" in forwarded
    assert "omar.haddad" not in forwarded
    assert "<EMAIL_1>" in forwarded
    if stream:
        text = "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            for line in answer.splitlines()
            if line.startswith("data: {")
        )
    else:
        text = json.loads(answer)["choices"][0]["message"]["content"]
    assert text == "Noted: odd \ud800 text, mail omar.haddad@example.com"
