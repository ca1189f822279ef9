"""The engine: overlap resolution, the one-pass prefilter, batches and streams, YAML."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.detect import Detector, Finding, Level, RecognizerSpec, resolve_overlaps
from veil.detect._detector import _Candidate, _windowed_matches
from veil.detect._prefilter import relax
from veil.errors import InputError

FAST = Detector()
PYTHON = Detector(engine="python")

FRAGMENTS = [
    "bob@example.com",
    "+1 (415) 555-0132",
    "4111 1111 1111 1111",
    "GB82WEST12345698765432",
    "123-45-6788",
    "10.0.0.1",
    "https://example.com/x",
    "ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI",
    'api_key = "q8F2kL9xZ3vB7nM1pR5tW0yC4hJ6"',
    "password: Tr0ub4dor&3",
    "born 1990-05-17",
    "2026-11-23T10:48:00Z",
    'client_secret: "' + "Zq3v9XbT7LmN2pQr8sUvWx4yZa1f" * 6 + '"',
    "the monkey keyboard tokenizer",
    "fe80::1ff:fe23:4567:890a",
    "x",
    ".",
    "Zoë",
    "🙂",
    "\n",
    " ",
    "-",
    "@",
    ":",
    "key",
    "0",
]
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=25).map(
    "".join
)


def candidate(
    start: int, end: int, *, validated: bool, specificity: int, score: float
) -> _Candidate:
    return _Candidate(
        Finding(start, end, f"K{start}{end}", score, Level.HIGH, f"r{start}", validated),
        specificity,
    )


def test_overlap_validated_beats_unvalidated() -> None:
    kept = resolve_overlaps(
        [
            candidate(0, 20, validated=False, specificity=3, score=0.99),
            candidate(5, 10, validated=True, specificity=1, score=0.5),
        ]
    )
    assert [(f.start, f.end) for f in kept] == [(5, 10)]


def test_overlap_specific_beats_generic_then_score_then_length() -> None:
    specific = resolve_overlaps(
        [
            candidate(0, 20, validated=False, specificity=0, score=0.9),
            candidate(2, 8, validated=False, specificity=3, score=0.6),
        ]
    )
    assert [(f.start, f.end) for f in specific] == [(2, 8)]
    by_score = resolve_overlaps(
        [
            candidate(0, 20, validated=False, specificity=1, score=0.6),
            candidate(2, 8, validated=False, specificity=1, score=0.7),
        ]
    )
    assert [(f.start, f.end) for f in by_score] == [(2, 8)]
    by_length = resolve_overlaps(
        [
            candidate(0, 20, validated=False, specificity=1, score=0.7),
            candidate(2, 8, validated=False, specificity=1, score=0.7),
        ]
    )
    assert [(f.start, f.end) for f in by_length] == [(0, 20)]


def test_non_overlapping_losers_of_a_cluster_are_kept() -> None:
    kept = resolve_overlaps(
        [
            candidate(0, 10, validated=False, specificity=1, score=0.6),
            candidate(8, 30, validated=True, specificity=2, score=0.9),
            candidate(31, 40, validated=False, specificity=1, score=0.6),
        ]
    )
    assert [(f.start, f.end) for f in kept] == [(8, 30), (31, 40)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_prefilter_engine_gives_identical_findings_to_plain_python(text: str) -> None:
    assert FAST.find(text) == PYTHON.find(text)


def test_the_prefilter_reads_a_leading_lookbehind_as_the_character_before_the_match() -> None:
    assert relax(r"(?i)(?<![\w:.])[0-9a-f]{1,4}") == r"(?i)(?:^|[^\w:.])[0-9a-f]{1,4}"
    assert relax(r"(?<![^a])x") == r"(?<![^a])x"  # a negated class: left to Hyperscan
    assert relax(r"a(?<![\w])b") == r"a(?<![\w])b"  # not at the start


def test_timestamps_are_no_ipv6_candidates_for_the_prefilter() -> None:
    pytest.importorskip("hyperscan")
    ipv6 = next(i for i, r in enumerate(FAST._compiled) if r.spec.id == "ipv6")
    prefilter = FAST._prefilter
    assert prefilter is not None
    ends, _ = prefilter.match_ends(b"2026-11-23T10:48:00Z INFO started\n" * 50)
    assert ipv6 not in ends
    ends, _ = prefilter.match_ends(b"from 2001:db8:85a3:0:0:8a2e:370:7334 today")
    assert ipv6 in ends


def test_hyperscan_prefilter_is_active_when_installed() -> None:
    pytest.importorskip("hyperscan")
    assert FAST.engine == "hyperscan"
    assert PYTHON.engine == "python"


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.text(alphabet="ab \n", max_size=300),
    chunk=st.integers(min_value=100, max_value=240),
)
def test_secret_straddling_a_chunk_boundary_is_found_exactly_once(prefix: str, chunk: int) -> None:
    token = "ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI"
    text = prefix + " " + token + " tail " * 20
    # The overlap must exceed the longest value; chunk sizes move the boundary everywhere.
    streamed = list(FAST.scan_stream(io.StringIO(text), chunk_chars=chunk, overlap=48))
    tokens = [f for f in streamed if f.kind == "GITHUB_TOKEN"]
    assert len(tokens) == 1
    assert text[tokens[0].start : tokens[0].end] == token


def test_stream_of_bytes_matches_whole_text_findings() -> None:
    lines = [
        f"user{i}@example.com paid with 4111 1111 1111 1111 from 10.0.0.{i % 250}\n"
        for i in range(400)
    ]
    text = "Zoë 🙂 " + "".join(lines)
    whole = FAST.find(text)
    streamed = list(FAST.scan_stream(io.BytesIO(text.encode()), chunk_chars=4096, overlap=512))
    assert streamed == whole


def test_stream_rejects_an_overlap_too_large_for_the_chunk() -> None:
    with pytest.raises(InputError, match="overlap"):
        list(FAST.scan_stream(io.StringIO("x"), chunk_chars=100, overlap=60))


def test_find_many_with_workers_equals_sequential() -> None:
    batch = [f"mail user{i}@example.com or call 212-555-01{i % 90 + 10}" for i in range(600)]
    assert FAST.find_many(batch, workers=2, batch_size=100) == [FAST.find(t) for t in batch]


def test_users_add_recognizers_from_yaml(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrecognizers:\n"
        "  - id: employee-id\n    kind: EMPLOYEE_ID\n    pattern: '\\bEMP-\\d{6}\\b'\n"
        "    keywords: [emp-]\n    score: 0.8\n    level: HIGH\n"
    )
    detector = Detector(extra=rules)
    (finding,) = detector.find("ticket for EMP-004211 closed")
    assert (finding.kind, finding.level, finding.source) == (
        "EMPLOYEE_ID",
        Level.HIGH,
        "employee-id",
    )


def test_a_user_file_adds_public_values_that_are_never_reported(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\npublic_values:\n  - ghp_R4nd0mS4mpleT0kenFr0mOurDocs0123456789\n"
        "recognizers: []\n"
    )
    real = "ghp_9fK2mQ7xL4pR8vT1wZ6yB3nC5dE0gH2jK4mN"
    text = f"docs token ghp_R4nd0mS4mpleT0kenFr0mOurDocs0123456789 and a real one {real}"
    assert [f.kind for f in FAST.find(text)] == ["GITHUB_TOKEN", "GITHUB_TOKEN"]
    detector = Detector(extra=rules)
    assert [text[f.start : f.end] for f in detector.find(text)] == [real]
    # the built-in list still holds, and a worker process gets the same lists
    assert detector.find("AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs") == []
    batch = [text] * 300
    assert detector.find_many(batch, workers=2, batch_size=100) == [detector.find(t) for t in batch]


def test_a_longer_value_holding_a_public_value_is_still_reported() -> None:
    value = "AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIsQ9x"
    (finding,) = FAST.find(f'api_key = "{value}"')
    assert finding.kind == "GENERIC_SECRET"


def test_a_misspelt_key_of_a_recognizer_file_is_refused(tmp_path: Path) -> None:
    # `public_value:` was ignored, so the values it listed went on being reported.
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\npublic_value: [EMP-000000]\nrecognizers: []\n")
    with pytest.raises(InputError, match="did you mean public_values"):
        Detector(extra=rules)


def test_public_values_must_be_a_list_of_strings(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\npublic_values: AIzaSy\nrecognizers: []\n")
    with pytest.raises(InputError, match="public_values` must be a list"):
        Detector(extra=rules)


def test_a_user_file_can_disable_a_builtin(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrecognizers:\n"
        "  - id: email\n    kind: EMAIL\n    pattern: 'unused'\n    enabled: false\n"
    )
    assert Detector(extra=rules).find("bob@example.com") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "  - id: x\n    kind: lower\n    pattern: 'a'\n",
            ":3: recognizer 'x': kind: must be UPPER_SNAKE_CASE",
        ),
        (
            "  - id: x\n    kind: X\n    pattern: '(unclosed'\n",
            ":3: recognizer 'x' has an invalid pattern",
        ),
        ("  - id: x\n    kind: X\n    pattern: 'a'\n    validator: nope\n", "unknown validator"),
        ("  - id: x\n    kind: X\n    pattern: 'a'\n    colour: red\n", "colour"),
        (
            "  - id: x\n    kind: X\n    pattern: 'a'\n    keywords_within: 5\n",
            "keywords_within needs keywords",
        ),
    ],
)
def test_bad_recognizer_files_name_the_line_and_the_problem(
    tmp_path: Path, body: str, message: str
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrecognizers:\n" + body)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        Detector(extra=rules)


def test_recognizer_specs_are_data() -> None:
    spec = RecognizerSpec(id="x", kind="ORDER_ID", pattern=r"\bORD\d{4}\b", score=0.9)
    (finding,) = Detector([spec]).find("see ORD1234")
    assert finding.kind == "ORDER_ID"


def test_a_recognizer_can_report_several_groups_of_a_match_as_findings() -> None:
    spec = RecognizerSpec(
        id="x", kind="ORDER_ID", pattern=r"\b(?:(ORD\d{4})/)?(LINE\d{2})\b", group=(1, 2)
    )
    text = "see ORD1234/LINE07 and LINE08"
    found = [text[f.start : f.end] for f in Detector([spec]).find(text)]
    assert found == ["ORD1234", "LINE07", "LINE08"]  # a group that did not match: no finding


@pytest.mark.parametrize("group", [(1, 3), ()])
def test_a_list_of_groups_must_exist_in_the_pattern(group: tuple[int, ...]) -> None:
    spec = RecognizerSpec(id="x", kind="X", pattern=r"(a)(b)", group=group)
    with pytest.raises(InputError, match="uses group"):
        Detector([spec])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), min_size=50, max_size=120)
)
def test_windowed_matching_on_long_texts_equals_plain_python(parts: list[str]) -> None:
    text = ("".join(parts) + "\n") * (20_000 // max(1, len("".join(parts))) + 1)
    assert len(text) >= 16 << 10
    assert FAST.find(text) == PYTHON.find(text)


KEYWORD_JUMPERS = [r for r in FAST._compiled if r.keyword_regex is not None]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    *FRAGMENTS,
                    "@",
                    "@@",
                    "x.y+z@",
                    "maria.gonzalez+billing@example.co.uk",
                    "a" * 64 + "@example.com",  # the longest local part
                    "a" * 70 + "@example.com",
                    "my_service_private_key = ",
                    '"Zq3v9XbT7LmN2pQr8sUvWx4y"',
                ]
            ),
            st.text(alphabet="ab@.-_ =:'\"\n", max_size=12),
            st.text(max_size=12),
        ),
        max_size=60,
    )
)
def test_searching_from_keyword_to_keyword_gives_every_match_a_full_scan_gives(
    parts: list[str],
) -> None:
    # Patterns with keywords_within (e-mail: its "@") skip to each keyword on texts of
    # KEYWORD_JUMP_MIN_CHARS or more; the matches must be exactly finditer's.
    text = "".join(parts)
    assert KEYWORD_JUMPERS
    for recognizer in KEYWORD_JUMPERS:
        jumped = _windowed_matches(recognizer, text, [(0, len(text))], 0)
        assert [m.span() for m in jumped] == [m.span() for m in recognizer.regex.finditer(text)]


def test_windowed_matching_finds_assignments_with_the_key_word_deep_in_the_name() -> None:
    # The generic assignment recognizer searches long texts only near its key words
    # (keywords_within): names with up to 40 characters before "private_key" must count.
    names = [
        prefix + word
        for prefix in ("", "x", "my_service_", "a" * 39 + "_")
        for word in ("secret", "token", "api-key", "private_key", "client.key", "credentials")
    ]
    value = "Zq3v9XbT7LmN2pQr8sUvWx4yZa1f" * 5
    text = "".join(f'{name} = "{value}"\nnothing to see on this line\n' for name in names)
    text *= 16_384 // len(text) + 1
    found = FAST.find(text)
    assert found == PYTHON.find(text)
    assert sum(f.kind == "GENERIC_SECRET" for f in found) == text.count(value)


def test_windowed_matching_maps_offsets_after_multibyte_characters() -> None:
    line = (
        "Zoë 🙂 paid 4111 1111 1111 1111 — mail bob@example.com, "
        "token ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI\n"
    )
    text = line * 400
    found = FAST.find(text)
    assert found == PYTHON.find(text)
    assert {text[f.start : f.end] for f in found} == {
        "4111 1111 1111 1111",
        "bob@example.com",
        "ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI",
    }


def test_one_detector_is_safe_to_share_between_threads() -> None:
    texts = [
        f"user{i}@example.com paid 4111 1111 1111 1111 from 10.0.0.{i}" * (1 + i % 3)
        for i in range(64)
    ]
    texts += ["x" * 20_000 + f" bob{i}@example.com" for i in range(8)]  # windowed path too
    expected = [PYTHON.find(text) for text in texts]
    results: dict[int, list[Finding]] = {}

    def work(offset: int) -> None:
        for index in range(offset, len(texts), 4):
            results[index] = FAST.find(texts[index])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(len(texts))] == expected


def test_a_detector_refuses_a_phone_region_phone_numbers_are_unknown_in() -> None:
    with pytest.raises(InputError, match="the United Kingdom is GB"):
        Detector(phone_region="UK")
