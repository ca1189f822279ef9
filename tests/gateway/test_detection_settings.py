"""``veil serve`` scans prompts with the detection settings of its environment:
``VEIL_PHONE_REGION`` and the user's recognizers (``VEIL_RECOGNIZERS``), like the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from tests.gateway.conftest import UPSTREAM_KEY, Served, Upstream, gateway_env, start_gateway

RULES = (
    "version: 1\n"
    "recognizers:\n"
    "  - id: employee-id\n    kind: EMPLOYEE_ID\n    pattern: '\\bEMP-\\d{6}\\b'\n"
    "    keywords: [emp-]\n    score: 0.8\n    level: HIGH\n"
    # a value with quotes and a line break in it (as a multi-line address has)
    "  - id: case-note\n    kind: CASE_NOTE\n"
    "    pattern: 'Case \"[A-Z]{2}\\n\\d{4}\"'\n    score: 0.8\n    level: HIGH\n"
)
CASE = 'Case "AB\n1234"'


@pytest.fixture(scope="module")
def german(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("german-gateway")
    rules = home / "rules.yaml"
    rules.write_text(RULES)
    env = gateway_env(
        home,
        OPENAI_BASE_URL=upstream.url + "/v1",
        OPENAI_API_KEY=UPSTREAM_KEY,
        VEIL_PHONE_REGION="DE",
        VEIL_RECOGNIZERS=str(rules),
    )
    gateway = start_gateway(env)
    yield gateway
    gateway.stop()


def test_the_start_up_report_names_the_detection_settings(german: Served) -> None:
    assert german.report["phone_region"] == "DE"
    assert str(german.report["recognizers"]).endswith("rules.yaml")


def test_a_national_number_of_the_configured_region_never_reaches_the_upstream(
    german: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    prompt = "Rufen Sie mich an: 015112345678. Mitarbeiter EMP-004211 ist informiert."
    answer = openai.OpenAI(
        base_url=german.url, api_key=german.key, max_retries=0
    ).chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": prompt}])
    seen = "\n".join(item["raw"] for item in upstream.received[before:])
    assert "015112345678" not in seen
    assert "EMP-004211" not in seen
    assert "<PHONE_1>" in seen
    assert "<EMPLOYEE_ID_1>" in seen
    assert answer.choices[0].message.content == f"Noted: {prompt}"


@pytest.mark.parametrize("stream", [False, True])
def test_values_restored_into_tool_call_arguments_keep_them_valid_json(
    german: Served, upstream: Upstream, stream: bool
) -> None:
    before = len(upstream.received)
    prompt = f"File {CASE} for EMP-004211."
    request = {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": prompt}],
        "tools": [{"type": "function", "function": {"name": "send", "parameters": {}}}],
    }
    chat = openai.OpenAI(base_url=german.url, api_key=german.key, max_retries=0).chat
    if stream:
        arguments = ""
        for chunk in chat.completions.create(**request, stream=True):  # type: ignore[call-overload]
            for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                arguments += call.function.arguments or ""
    else:
        answer = chat.completions.create(**request)  # type: ignore[call-overload]
        arguments = answer.choices[0].message.tool_calls[0].function.arguments
    assert json.dumps(CASE)[1:-1] not in "\n".join(
        item["raw"] for item in upstream.received[before:]
    )
    assert json.loads(arguments) == {"recipient": prompt}


def test_tool_call_arguments_in_the_history_are_scanned_as_the_strings_they_hold(
    german: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    history = json.dumps({"who": CASE, "count": 2})  # the quote and line break escaped
    answer = openai.OpenAI(
        base_url=german.url, api_key=german.key, max_retries=0
    ).chat.completions.create(
        model="gpt-test",
        messages=[
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c0",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": history},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c0", "content": "found"},
            {"role": "user", "content": f"Send {CASE} again."},
        ],
        tools=[{"type": "function", "function": {"name": "send", "parameters": {}}}],
    )
    seen = "\n".join(item["raw"] for item in upstream.received[before:])
    assert json.dumps(CASE)[1:-1] not in seen
    forwarded = json.loads(upstream.received[before]["raw"])
    arguments = forwarded["messages"][0]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"who": "<CASE_NOTE_1>", "count": 2}
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == {"recipient": f"Send {CASE} again."}
