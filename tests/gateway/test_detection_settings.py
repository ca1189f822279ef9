"""``veil serve`` scans prompts with the detection settings of its environment:
``VEIL_PHONE_REGION`` and the user's recognizers (``VEIL_RECOGNIZERS``), like the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.gateway.conftest import UPSTREAM_KEY, Served, Upstream, gateway_env, start_gateway

RULES = (
    "version: 1\n"
    "recognizers:\n"
    "  - id: employee-id\n    kind: EMPLOYEE_ID\n    pattern: '\\bEMP-\\d{6}\\b'\n"
    "    keywords: [emp-]\n    score: 0.8\n    level: HIGH\n"
)


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
