"""Provider base URLs that would send every request to the wrong path are named at start
and by `veil doctor` (the OpenAI SDKs keep /v1 in the base URL, Anthropic's does not)."""

from __future__ import annotations

import pytest

from veil.gateway._upstreams import base_url_problem


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("openai", "https://api.openai.com/v1"),
        ("openai", "http://127.0.0.1:11434/v1"),  # Ollama
        ("openai", "https://gw.example.com/openai/v1"),
        ("openai", "https://NAME.openai.azure.com/openai/deployments/D?api-version=2024-06-01"),
        ("anthropic", "https://api.anthropic.com"),
        ("anthropic", "https://api.anthropic.com/"),
    ],
)
def test_usual_base_urls_are_fine(name: str, url: str) -> None:
    assert base_url_problem(name, url) is None


def test_an_openai_base_url_without_v1_is_named() -> None:
    problem = base_url_problem("openai", "https://api.openai.com")
    assert problem is not None
    assert "https://api.openai.com/chat/completions" in problem


def test_an_anthropic_base_url_with_v1_is_named() -> None:
    problem = base_url_problem("anthropic", "https://api.anthropic.com/v1/")
    assert problem is not None
    assert "/v1/v1/messages" in problem
