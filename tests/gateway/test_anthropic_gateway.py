"""The official ``anthropic`` SDK against ``veil serve`` (Messages API, stream and not)."""

from __future__ import annotations

import anthropic
import pytest

from tests.gateway.conftest import UPSTREAM_KEY, Served, Upstream

EMAIL = "li.wei@example.com"
PHONE = "+44 20 7946 0958"


def client(served: Served) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.root, api_key=served.key, max_retries=0)


def test_messages_prompt_and_system_are_pseudonymized_and_answer_restored(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    message = client(served).messages.create(
        model="claude-test",
        max_tokens=100,
        system=f"The user is {EMAIL}.",
        messages=[{"role": "user", "content": [{"type": "text", "text": f"call {PHONE}"}]}],
    )
    received = upstream.received[before]
    assert received["path"] == "/v1/messages"
    assert EMAIL not in received["raw"]
    assert "7946 0958" not in received["raw"]
    headers = {k.lower(): v for k, v in received["headers"].items()}
    assert headers["x-api-key"] == UPSTREAM_KEY
    assert message.content[0].text == f"Noted: call {PHONE}"  # type: ignore[union-attr]


def test_messages_stream_cut_through_tokens_is_restored(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    with client(served).messages.stream(
        model="claude-test",
        max_tokens=100,
        messages=[{"role": "user", "content": f"mail {EMAIL} or {PHONE} today"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == f"Noted: mail {EMAIL} or {PHONE} today"
    assert final.usage.output_tokens == 7
    assert EMAIL not in upstream.received[before]["raw"]


def test_tool_use_input_is_scanned(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    client(served).messages.create(
        model="claude-test",
        max_tokens=50,
        messages=[
            {"role": "user", "content": "find the customer"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"email": EMAIL}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": f"{PHONE}"}],
            },
        ],
    )
    raw = upstream.received[before]["raw"]
    assert EMAIL not in raw
    assert "7946 0958" not in raw


def test_claude_model_on_the_openai_endpoint_is_not_found(served: Served) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as caught:
        openai.OpenAI(
            base_url=served.url, api_key=served.key, max_retries=0
        ).chat.completions.create(model="claude-test", messages=[{"role": "user", "content": "hi"}])
    assert "/v1/messages" in str(caught.value)


def test_invalid_key_gets_an_anthropic_style_error(served: Served) -> None:
    bad = anthropic.Anthropic(base_url=served.root, api_key="nope", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(
            model="claude-test", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def _documents_message(marker: str = "") -> dict[str, object]:
    return {
        "role": "user",
        "content": [
            {
                "type": "document",
                "source": {
                    "type": "content",
                    "content": [{"type": "text", "text": f"Contact {EMAIL} or {PHONE}."}],
                },
                "title": f"Notes on {EMAIL}",
                "context": f"written after a call to {PHONE}",
                "citations": {"enabled": True},
            },
            {
                "type": "search_result",
                "source": f"https://crm.example.com/people/{EMAIL}",
                "title": f"CRM record of {EMAIL}",
                "content": [{"type": "text", "text": f"Office phone {PHONE}"}],
            },
            {"type": "text", "text": f"Summarize the notes. {marker}"},
        ],
    }


def test_documents_search_results_and_the_user_id_never_reach_the_upstream(
    served: Served, upstream: Upstream
) -> None:
    before = len(upstream.received)
    client(served).messages.create(
        model="claude-test",
        max_tokens=100,
        messages=[_documents_message()],  # type: ignore[list-item]
        metadata={"user_id": EMAIL},
    )
    raw = upstream.received[before]["raw"]
    assert EMAIL not in raw
    assert PHONE not in raw
    assert "<EMAIL_1>" in raw


@pytest.mark.parametrize("stream", [False, True])
def test_citations_quote_the_document_with_its_real_values(
    served: Served, upstream: Upstream, stream: bool
) -> None:
    before = len(upstream.received)
    request = {
        "model": "claude-test",
        "max_tokens": 100,
        "messages": [_documents_message("[[cite]]")],
    }
    if stream:
        with client(served).messages.stream(**request) as events:  # type: ignore[arg-type]
            message = events.get_final_message()
    else:
        message = client(served).messages.create(**request)  # type: ignore[arg-type]
    (block,) = message.content
    assert block.type == "text"
    (citation,) = block.citations or []
    assert citation.cited_text == f"Contact {EMAIL} or {PHONE}."
    assert getattr(citation, "document_title", None) == f"Notes on {EMAIL}"
    assert EMAIL not in upstream.received[before]["raw"]  # the model quoted pseudonyms


def test_token_counting_sees_the_pseudonymized_request(served: Served, upstream: Upstream) -> None:
    before = len(upstream.received)
    counted = client(served).messages.count_tokens(
        model="claude-test",
        system=f"The user is {EMAIL}.",
        messages=[{"role": "user", "content": f"call {PHONE}"}],
    )
    received = upstream.received[before]
    assert received["path"] == "/v1/messages/count_tokens"
    assert EMAIL not in received["raw"]
    assert PHONE not in received["raw"]
    assert counted.input_tokens == len(received["raw"].encode()) // 4


def test_models_are_listed_and_retrieved_in_anthropics_shape(served: Served) -> None:
    key = served.create_key("--name", "claude-only", "--models", "claude-test")
    anthropic_client = anthropic.Anthropic(base_url=served.root, api_key=key, max_retries=0)
    listed = list(anthropic_client.models.list())
    assert [(m.id, m.type) for m in listed] == [("claude-test", "model")]
    assert anthropic_client.models.retrieve("claude-test").display_name == "claude-test"
    with pytest.raises(anthropic.NotFoundError) as caught:
        anthropic_client.models.retrieve("claude-other")
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
