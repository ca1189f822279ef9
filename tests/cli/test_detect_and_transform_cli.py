"""The detect, redact, pseudonymize and restore commands as a user runs them."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import veil
from veil.cli import detect_cmd
from veil.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_INTEGRITY, EXIT_OK, EXIT_USAGE

TOKEN = "ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI"
TEXT = f"Hi, I am bob@example.com, call +1-415-555-0132. token {TOKEN}\n"


def test_detect_table_masks_values_and_exits_1() -> None:
    code, output = veil("detect", "-", stdin=TEXT)
    assert code == EXIT_FINDINGS
    assert "GITHUB_TOKEN" in output
    assert "ghp_…2uI" in output
    assert TOKEN not in output
    assert "bob@example.com" not in output


def test_detect_lists_many_findings_as_plain_columns_with_their_lines() -> None:
    # Past RICH_TABLE_ROWS findings the table is plain text (rich took 11 s for 16,000).
    text = "".join(f"line {n} mails user{n}@example.com\n" for n in range(1, 602))
    code, output = veil("detect", "-", stdin=text)
    assert code == EXIT_FINDINGS
    lines = output.splitlines()
    assert lines[0] == "601 finding(s)"
    assert lines[1].split()[:3] == ["line", "col", "kind"]
    assert lines[2].split()[:3] == ["1", "14", "EMAIL"]
    assert lines[-1].split()[:3] == ["601", "16", "EMAIL"]
    assert "user600@example.com" not in output


def test_detect_piped_keeps_every_column_and_each_value_on_one_line() -> None:
    # Piped, rich fitted its table to 80 columns: headings and short columns shrank to
    # nothing and long values wrapped, so a script or a pager got fragments.
    wallet = "0x52908400098527886E0F7030069857D2E4169EE7"
    code, output = veil("detect", "-", stdin=f"pay {wallet} from jane.doe@acme.co.uk\n")
    assert code == EXIT_FINDINGS
    lines = output.splitlines()
    assert lines[1].split() == [
        "line", "col", "kind", "level", "score", "value", "(masked)", "recognizer"
    ]  # fmt: skip
    assert lines[2].split() == [
        "1", "5", "CRYPTO_WALLET", "HIGH", "0.90", "X" * 38 + "9EE7", "eth-address"
    ]  # fmt: skip
    assert lines[3].split() == ["1", "53", "EMAIL", "CRITICAL", "0.90", "jXXX@acme.co.uk", "email"]


def test_detect_json_gives_offsets() -> None:
    path = Path("input.txt")
    path.write_text(TEXT)
    code, output = veil("detect", str(path), "--json")
    assert code == EXIT_FINDINGS
    kinds = [(f["kind"], TEXT[f["start"] : f["end"]]) for f in json.loads(output)["findings"]]
    assert kinds == [
        ("EMAIL", "bob@example.com"),
        ("PHONE", "+1-415-555-0132"),
        ("GITHUB_TOKEN", TOKEN),
    ]


def test_detect_with_nothing_found_exits_0() -> None:
    assert veil("detect", "-", stdin="nothing to see here")[0] == EXIT_OK


def test_detect_missing_file_is_a_usage_error() -> None:
    code, output = veil("detect", "no-such-file.txt")
    assert code == EXIT_USAGE
    assert "Cannot read" in output


def test_detect_jsonl_speaks_the_scorer_protocol_line_by_line() -> None:
    """A real subprocess: each answer must arrive before the next line is sent."""
    process = subprocess.Popen(
        [sys.executable, "-m", "veil", "detect", "--jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps({"id": 7, "text": "hi bob@example.com"}) + "\n")
    process.stdin.flush()
    first = json.loads(process.stdout.readline())
    assert first == {
        "id": 7,
        "findings": [
            {
                "start": 3,
                "end": 18,
                "kind": "EMAIL",
                "score": 0.9,
                "level": "CRITICAL",
                "source": "email",
            }
        ],
    }
    process.stdin.write(json.dumps("no findings") + "\n")
    process.stdin.close()
    second = json.loads(process.stdout.readline())
    assert second["findings"] == []
    assert process.wait(timeout=30) == 0


def test_detect_jsonl_answers_a_stream_of_lines_in_order_once_each() -> None:
    lines = [json.dumps({"id": i, "text": f"mail u{i}@example.com"}) for i in range(300)]
    result = subprocess.run(
        [sys.executable, "-m", "veil", "detect", "--jsonl"],
        input="\n".join(lines),  # the last line has no newline
        capture_output=True,
        text=True,
        check=True,
    )
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["id"] for a in answers] == list(range(300))
    assert all([f["kind"] for f in a["findings"]] == ["EMAIL"] for a in answers)


def test_detect_jsonl_answers_the_lines_before_a_bad_one() -> None:
    code, output = veil("detect", "--jsonl", stdin='"a@example.com"\n"fine"\n{"no": 1}\n"x"\n')
    assert code == EXIT_USAGE
    assert [json.loads(line)["id"] for line in output.splitlines()[:2]] == [0, 1]
    assert 'line 3 has no "text" string' in output


def test_detect_jsonl_rejects_a_line_that_is_not_json() -> None:
    code, output = veil("detect", "--jsonl", stdin="not json\n")
    assert code == EXIT_USAGE
    assert "line 1 is not JSON" in output


def test_redact_default_policy() -> None:
    code, output = veil("redact", "-", stdin=TEXT)
    assert code == EXIT_OK
    assert output == "Hi, I am [EMAIL], call +X-XXX-XXX-0132. token [GITHUB_TOKEN]\n"


def test_redact_with_a_policy_file_and_json() -> None:
    Path("policy.yaml").write_text("version: 1\ndefault: {operator: redact, label: '***'}\n")
    code, output = veil("redact", "-", "--policy", "policy.yaml", "--json", stdin=TEXT)
    assert code == EXIT_OK
    report = json.loads(output)
    assert report["text"] == "Hi, I am ***, call ***. token ***\n"
    assert report["actions"] == {"redact": 3}


def test_redact_with_a_bad_policy_names_the_line() -> None:
    Path("policy.yaml").write_text("version: 1\ndefault:\n  operator: shred\n")
    code, output = veil("redact", "-", "--policy", "policy.yaml", stdin=TEXT)
    assert code == EXIT_USAGE
    assert "policy.yaml:3: default.operator" in output


def test_pseudonymize_then_restore_with_an_encrypted_map(master_key: str) -> None:
    code, masked = veil("pseudonymize", "-", "--map", "conv.map", stdin=TEXT)
    assert code == EXIT_OK
    assert masked == "Hi, I am <EMAIL_1>, call <PHONE_1>. token [GITHUB_TOKEN]\n"
    map_file = Path("conv.map")
    assert stat.S_IMODE(map_file.stat().st_mode) == 0o600
    assert b"bob@example.com" not in map_file.read_bytes()
    code, restored = veil(
        "restore", "-", "--map", "conv.map", stdin="Write to <EMAIL_1>'s phone <PHONE_1>."
    )
    assert code == EXIT_OK
    assert restored == "Write to bob@example.com's phone +1-415-555-0132."


def test_pseudonymize_reuses_the_tokens_of_an_existing_map(master_key: str) -> None:
    veil("pseudonymize", "-", "--map", "conv.map", stdin="bob@example.com")
    _, second = veil(
        "pseudonymize", "-", "--map", "conv.map", stdin="carol@example.org, bob@example.com"
    )
    assert second == "<EMAIL_2>, <EMAIL_1>"


def test_concurrent_runs_on_one_map_keep_every_token(master_key: str) -> None:
    # Two processes on one map used to load the same old map and each save their own:
    # the first run's tokens were lost, or restored to the other run's values.
    from veil._files import exclusive

    inputs = {
        "a": "".join(f"alice{n}@example.com\n" for n in range(30)),
        "b": "".join(f"bruno{n}@example.org\n" for n in range(30)),
    }
    map_file = Path("shared.map")
    with exclusive(map_file):  # both start while the map is busy, then race for it
        runs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "veil", "pseudonymize", "-", "--map", str(map_file)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for name in inputs
        }
        for name, process in runs.items():
            assert process.stdin is not None
            process.stdin.write(inputs[name])
            process.stdin.close()
    masked = {}
    for name, process in runs.items():
        assert process.stdout is not None
        masked[name] = process.stdout.read()
        assert process.wait(timeout=60) == EXIT_OK
    tokens = [set(m.split()) for m in masked.values()]
    assert len(tokens[0] | tokens[1]) == 60  # no token stands for two values
    for name in inputs:
        code, restored = veil("restore", "-", "--map", str(map_file), stdin=masked[name])
        assert code == EXIT_OK
        assert restored == inputs[name]


def test_bytes_that_are_not_utf8_pass_through_unchanged(master_key: str) -> None:
    # A Latin-1 log: redacting it used to turn every é into U+FFFD.
    Path("latin1.log").write_bytes(b"Caf\xe9 owner bob@example.com, na\xefve \xff\n")

    def run(*args: str, stdin: bytes | None = None) -> bytes:
        done = subprocess.run(
            [sys.executable, "-m", "veil", *args], input=stdin, capture_output=True, check=True
        )
        return done.stdout

    assert run("redact", "latin1.log") == b"Caf\xe9 owner [EMAIL], na\xefve \xff\n"
    masked = run("pseudonymize", "--map", "l.map", "latin1.log")
    assert masked == b"Caf\xe9 owner <EMAIL_1>, na\xefve \xff\n"
    assert run("restore", "--map", "l.map", "-", stdin=masked) == Path("latin1.log").read_bytes()


def test_pseudonymize_without_a_root_key_says_how_to_configure_one() -> None:
    code, output = veil("pseudonymize", "-", "--map", "conv.map", stdin=TEXT)
    assert code == EXIT_ERROR
    assert "VEIL_MASTER_KEY" in output
    assert not Path("conv.map").exists()


def test_restore_with_another_key_fails_and_names_both_key_ids(
    master_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    veil("pseudonymize", "-", "--map", "conv.map", stdin=TEXT)
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    code, output = veil("restore", "-", "--map", "conv.map", stdin="<EMAIL_1>")
    assert code == EXIT_ERROR
    assert output.count("rk-") == 2
    assert master_key not in output


def test_restore_of_a_corrupted_map_is_an_integrity_failure(master_key: str) -> None:
    veil("pseudonymize", "-", "--map", "conv.map", stdin=TEXT)
    path = Path("conv.map")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    code, output = veil("restore", "-", "--map", "conv.map", stdin="<EMAIL_1>")
    assert code == EXIT_INTEGRITY
    assert "altered" in output


def test_a_map_readable_by_others_is_refused(master_key: str) -> None:
    veil("pseudonymize", "-", "--map", "conv.map", stdin=TEXT)
    Path("conv.map").chmod(0o644)
    code, output = veil("restore", "-", "--map", "conv.map", stdin="<EMAIL_1>")
    assert code == EXIT_USAGE
    assert "chmod 600" in output


def test_pseudonymize_and_restore_are_recorded_in_the_audit_ledger(master_key: str) -> None:
    veil("pseudonymize", "-", "--map", "conv.map", stdin=TEXT)
    veil("restore", "-", "--map", "conv.map", stdin="<EMAIL_1>")
    code, output = veil("audit", "query", "--format", "json")
    assert code == EXIT_OK
    entries = json.loads(output)
    assert [entry["action"] for entry in entries] == ["cli.pseudonymize", "cli.restore"]
    assert entries[0]["details"]["findings"] == 3
    assert "bob@example.com" not in output
    assert entries[0]["resource"].startswith("map:hmac-sha256:")


def test_error_messages_are_printed_literally_not_as_markup() -> None:
    code, output = veil("redact", "-", "--policy", "pol[icy].yaml", stdin=TEXT)
    assert code == EXIT_USAGE
    assert "pol[icy].yaml" in output


def test_code_anonymize_then_restore_reads_the_answer_from_stdin_with_a_dash(
    master_key: str,
) -> None:
    # `veil code restore --map M -` took "-" for a file name and crashed with a traceback.
    Path("src").mkdir()
    Path("src/billing.py").write_text(
        "def charge_customer(customer_email: str) -> str:\n    return customer_email\n"
    )
    code, output = veil("code", "anonymize", "src", "--out", "anon", "--map", "code.map")
    assert code == EXIT_OK, output
    [copy] = Path("anon").glob("*.py")  # module names are renamed too
    anonymized = copy.read_text()
    assert "charge_customer" not in anonymized
    code, restored = veil("code", "restore", "--map", "code.map", "-", stdin=anonymized)
    assert code == EXIT_OK, restored
    assert restored == Path("src/billing.py").read_text()
    # Both are privacy events in the ledger: counts and a digest of the map, no code.
    code, output = veil("audit", "query")
    entries = [json.loads(line) for line in output.splitlines()]
    assert [e["action"] for e in entries] == ["code.anonymize", "code.restore"]
    assert entries[0]["details"]["files"] == 1
    assert entries[0]["resource"] == entries[1]["resource"]
    assert "charge_customer" not in output


def test_an_unexpected_failure_names_its_type_and_place_not_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(source: str) -> str:
        raise RuntimeError("bug while reading bob@example.com")

    monkeypatch.setattr(detect_cmd, "read_input", broken)
    code, output = veil("detect", "-", stdin="mail bob@example.com")
    assert code == EXIT_ERROR
    assert "Veil failed unexpectedly (RuntimeError at test_detect_and_transform_cli.py:" in output
    assert "bob@example.com" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("out", "map_file", "why"),
    [
        ("src", "code.map", "overlaps the source"),  # copies beside the originals
        ("src/anon", "code.map", "overlaps the source"),  # the next run takes them in
        (".", "code.map", "overlaps the source"),  # the copy would hold the originals
        ("anon", "anon/code.map", "inside the copy"),
        ("notes.md", "code.map", "is a file"),
    ],
)
def test_code_anonymize_keeps_the_copy_apart_from_the_originals(
    master_key: str, out: str, map_file: str, why: str
) -> None:
    Path("src").mkdir()
    original = "def charge_customer(customer_email: str) -> str:\n    return customer_email\n"
    Path("src/billing.py").write_text(original)
    Path("notes.md").write_text("mine")
    code, output = veil("code", "anonymize", "src", "--out", out, "--map", map_file)
    assert code == EXIT_USAGE
    assert why in output
    assert [p.name for p in Path("src").iterdir()] == ["billing.py"]
    assert Path("src/billing.py").read_text() == original


def test_code_anonymize_into_a_directory_with_other_files_needs_force(master_key: str) -> None:
    Path("src").mkdir()
    Path("src/billing.py").write_text("def charge(): return 1\n")
    Path("anon").mkdir()
    Path("anon/notes.md").write_text("mine")
    code, output = veil("code", "anonymize", "src", "--out", "anon", "--map", "code.map")
    assert code == EXIT_USAGE
    assert "--force" in output
    assert [p.name for p in Path("anon").iterdir()] == ["notes.md"]
    assert (
        veil("code", "anonymize", "src", "--out", "anon", "--map", "code.map", "--force")[0]
        == EXIT_OK
    )
    assert Path("anon/notes.md").read_text() == "mine"


def test_list_kinds_names_every_kind_a_policy_may_use(tmp_path: Path) -> None:
    recognizers = tmp_path / "recognizers.yaml"
    recognizers.write_text(
        "version: 1\nrecognizers:\n  - id: employee-id\n    kind: EMPLOYEE_ID\n"
        "    pattern: 'EMP-\\d{6}'\n"
    )
    code, output = veil("detect", "--list-kinds", "--json", "--recognizers", str(recognizers))
    assert code == EXIT_OK
    kinds = {row["kind"]: row for row in json.loads(output)}
    assert kinds["EMAIL"]["level"] == "CRITICAL"
    assert kinds["GITHUB_TOKEN"]["secret"] is True
    assert kinds["EMPLOYEE_ID"]["description"] == "your recognizers: employee-id"
    code, output = veil("detect", "--list-kinds")
    assert code == EXIT_OK
    assert output.splitlines()[1].split()[:2] == ["EMAIL", "CRITICAL"]


@pytest.mark.parametrize("args", [["items.jsonl", "--jsonl"], ["--jsonl", "--json"]])
def test_jsonl_refuses_what_it_would_ignore(args: list[str]) -> None:
    # `veil detect items.jsonl --jsonl` read stdin and ignored the file.
    Path("items.jsonl").write_text('{"id": 1, "text": "mail bob@example.com"}\n')
    code, output = veil("detect", *args, stdin="")
    assert code == EXIT_USAGE
    assert "--jsonl reads standard input" in output


def test_detect_with_nothing_found_says_so_in_one_line() -> None:
    code, output = veil("detect", "-", stdin="nothing to see here\n")
    assert code == EXIT_OK
    assert output == "0 finding(s)\n"
