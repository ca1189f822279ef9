"""The first-character look-ahead: every recognizer finds exactly what its plain pattern
finds, and patterns the analysis cannot bound are left as they are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.detect._first_chars import with_first_chars
from veil.detect._registry import builtin_specs

SHARED = Path(__file__).resolve().parents[3] / "shared" / "bench-data"
SPECS = builtin_specs()


def spans(pattern: str, text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(pattern, text, re.ASCII)]


def corpus() -> list[str]:
    texts = [d["full_text"] for d in json.loads((SHARED / "pii/synth_dataset_v2.json").read_text())]
    with (SHARED / "secrets/gitleaks_cases.jsonl").open() as cases:
        texts += [json.loads(line)["text"] for line in cases]
    return texts


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_each_builtin_finds_the_same_spans_on_the_benchmark_texts(spec) -> None:  # type: ignore[no-untyped-def]
    fast = with_first_chars(spec.pattern, re.ASCII)
    for text in corpus()[::3]:
        assert spans(fast, text) == spans(spec.pattern, text), spec.id


ALPHABET = "aAbBdDfFpPsSuUkK019+(-_ .@:/\n\tVia Street Apt #12 sk-ghp_ France"


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=ALPHABET, max_size=80))
def test_builtins_agree_on_generated_text(text: str) -> None:
    for spec in SPECS:
        assert spans(with_first_chars(spec.pattern, re.ASCII), text) == spans(spec.pattern, text)


@pytest.mark.parametrize(
    "pattern",
    [r"a*b?", r"(?:x)?", r".abc", r"[^a]bc", r"(a)?\1b", r"\w+", r"(?i)k\d"],
)
def test_unbounded_or_empty_capable_patterns_are_unchanged(pattern: str) -> None:
    # \w and (?i) outside ASCII mode are Unicode: no look-ahead there.
    assert with_first_chars(pattern, 0) == pattern


def test_global_flags_stay_first_and_case_variants_are_added() -> None:
    fast = with_first_chars(r"(?i)\b(?:apt|suite)\s?\d+", re.ASCII)
    assert fast.startswith("(?i)(?=[")
    assert spans(fast, "APT 4 and Suite 12") == spans(
        r"(?i)\b(?:apt|suite)\s?\d+", "APT 4 and Suite 12"
    )


def test_a_leading_look_behind_and_optional_prefix_are_seen_through() -> None:
    pattern = r"(?<![\w+])(?:\+\d{1,3} )?\(?\d{3}"
    fast = with_first_chars(pattern, re.ASCII)
    assert fast.startswith(r"(?=[\(\+0123456789])")
