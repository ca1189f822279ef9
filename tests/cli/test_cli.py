"""The ``veil`` command line as a user runs it: output, exit codes, error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.conftest import veil
from veil import __version__
from veil.cli import app
from veil.errors import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

OPENAI_KEY = "sk-proj-Zq3v9XbT7LmN2pQr8sUvWx4yZa1f"


def test_version() -> None:
    assert veil("--version") == (EXIT_OK, f"veil {__version__}\n")


def test_the_installed_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "veil", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"veil {__version__}"


@pytest.mark.parametrize("group", [(), ("vault",)])
def test_command_lists_show_each_summary_as_flowing_text(group: tuple[str, ...]) -> None:
    """Docstrings wrap at the source's line length; the help's command list must not keep
    those breaks (they cut sentences mid-line in the table)."""
    result = CliRunner().invoke(app, [*group, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == EXIT_OK
    summary = {
        (): "Encrypt a file in the age format (readable by the `age` tool): to recipients "
        "(streaming, constant memory) or with a passphrase.",
        ("vault",): "The value comes from a hidden prompt or stdin, never from the command "
        "line, where it would land in shell history.",
    }[group]
    assert summary in result.output


def test_starting_the_cli_loads_no_engine() -> None:
    # Every command pays for what `import veil.cli` loads (start-up time, and the
    # 64 MB peak of `veil encrypt`): the engines load in the commands that use them.
    code = "import sys, veil.cli; print(sorted(m for m in sys.modules if m.startswith('veil.')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = result.stdout
    for engine in ("veil.detect", "veil.transform", "veil.audit", "veil.gateway", "veil.scan"):
        assert f"'{engine}'" not in loaded


def test_unknown_command_is_a_usage_error() -> None:
    code, _ = veil("frobnicate")
    assert code == EXIT_USAGE


def test_config_status_masks_the_provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    code, output = veil("config", "status")
    assert code == EXIT_OK
    assert "sk-…a1f (configured)" in output
    assert "✗ not configured" in output
    assert OPENAI_KEY not in output


def test_config_status_json_lists_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    code, output = veil("config", "status", "--json")
    assert code == EXIT_OK
    report = json.loads(output)
    by_name = {row["variable"]: row for row in report["settings"]}
    assert {"VEIL_HOME", "VEIL_DATABASE_URL", "VEIL_LOG_LEVEL", "OPENAI_API_KEY"} <= set(by_name)
    assert by_name["OPENAI_API_KEY"] == {
        "variable": "OPENAI_API_KEY",
        "value": "sk-…a1f (configured)",
        "source": "environment",
        "secret": True,
        "configured": True,
        "description": "Provider key (overrides the vault)",
    }
    assert OPENAI_KEY not in output


def test_world_readable_env_file_stops_every_command_with_the_fix() -> None:
    env = Path(".env")
    env.write_text(f"OPENAI_API_KEY={OPENAI_KEY}\n")
    env.chmod(0o644)
    code, output = veil("config", "status")
    assert code == EXIT_USAGE
    assert "chmod 600" in output
    assert OPENAI_KEY not in output


def test_bad_database_url_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_DATABASE_URL", "oracle://scott:tiger@db/orcl")
    code, output = veil("db", "upgrade")
    assert code == EXIT_USAGE
    assert "VEIL_DATABASE_URL" in output
    assert "tiger" not in output


def test_db_upgrade_on_unreachable_database_fails_with_exit_4(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VEIL_DATABASE_URL", "postgresql://veil:hunter2@127.0.0.1:1/veil")
    code, output = veil("db", "upgrade")
    assert code == EXIT_ERROR
    assert "unreachable" in output
    assert "hunter2" not in output


def test_db_upgrade_then_status_on_sqlite(veil_home: Path) -> None:
    code, output = veil("db", "upgrade", "--json")
    assert code == EXIT_OK
    report = json.loads(output)
    assert report["from"] is None
    assert report["to"]
    code, output = veil("db", "status", "--json")
    assert code == EXIT_OK
    assert json.loads(output)["up_to_date"] is True


def test_db_status_before_upgrade_exits_1() -> None:
    code, output = veil("db", "status")
    assert code == EXIT_FINDINGS
    assert "revision none" in output


@pytest.mark.postgres
def test_db_upgrade_and_doctor_on_postgresql(
    monkeypatch: pytest.MonkeyPatch, fresh_postgres_url: str
) -> None:
    monkeypatch.setenv("VEIL_DATABASE_URL", fresh_postgres_url)
    code, output = veil("db", "upgrade")
    assert code == EXIT_OK, output
    code, output = veil("doctor", "--json")
    assert code == EXIT_OK, output
    statuses = {check["name"]: check["status"] for check in json.loads(output)["checks"]}
    assert statuses["database migrated"] == "ok"


def doctor_checks() -> tuple[int, dict[str, dict[str, str]]]:
    code, output = veil("doctor", "--json")
    report = json.loads(output)
    assert report["ok"] is (code == EXIT_OK)
    return code, {check["name"]: check for check in report["checks"]}


def test_doctor_passes_on_a_fresh_migrated_install() -> None:
    assert veil("db", "upgrade")[0] == EXIT_OK
    code, checks = doctor_checks()
    assert code == EXIT_OK
    ner = checks.pop("NER (names, places, organizations)")
    assert ner["status"] == "warn"
    assert "VEIL_NER_MODEL" in ner["fix"]
    assert {check["status"] for check in checks.values()} == {"ok"}


def test_doctor_fails_when_the_configured_ner_model_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    veil("db", "upgrade")
    monkeypatch.setenv("VEIL_NER_MODEL", "xx_no_such_model")
    code, checks = doctor_checks()
    assert code == EXIT_FINDINGS
    ner = checks["NER (names, places, organizations)"]
    assert ner["status"] == "fail"
    assert "never downloads" in ner["detail"] or "spaCy is not installed" in ner["detail"]


def test_doctor_names_veil_variables_that_nothing_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # VEIL_REDIS_ULR left the limits in memory, per process, without a word.
    veil("db", "upgrade")
    monkeypatch.setenv("VEIL_REDIS_ULR", "redis://127.0.0.1:6379/0")
    env = Path(".env")
    env.write_text("VEIL_NER_MODLE=en_core_web_sm\n")
    env.chmod(0o600)
    code, checks = doctor_checks()
    assert code == EXIT_OK  # a warning
    unknown = checks["unknown variables"]
    assert unknown["status"] == "warn"
    assert "VEIL_REDIS_ULR (environment), did you mean VEIL_REDIS_URL?" in unknown["detail"]
    assert "VEIL_NER_MODLE" in unknown["detail"]
    assert "did you mean VEIL_NER_MODEL?" in unknown["detail"]
    monkeypatch.delenv("VEIL_REDIS_ULR")
    env.write_text("VEIL_NER_MODEL=\n")
    assert "unknown variables" not in doctor_checks()[1]


def test_doctor_warns_of_a_base_url_that_misses_v1(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every request would have gone to https://api.openai.com/chat/completions (404).
    veil("db", "upgrade")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0000000000000000")
    code, checks = doctor_checks()
    assert code == EXIT_OK  # a warning
    assert checks["openai endpoint"]["status"] == "warn"
    assert "https://api.openai.com/v1" in checks["openai endpoint"]["detail"]


def test_doctor_fails_on_an_installed_policy_that_cannot_load(veil_home: Path) -> None:
    veil("db", "upgrade")
    (veil_home / "policies").mkdir(parents=True)
    (veil_home / "policies" / "support.yaml").write_text("version: 1\ndefault: {operator: zap}\n")
    code, checks = doctor_checks()
    assert code == EXIT_FINDINGS
    policies = checks["policies"]
    assert policies["status"] == "fail"
    assert "support" in policies["detail"]
    assert "support.yaml:2" in policies["detail"]
    assert "veil policy check" in policies["fix"]


def test_doctor_fails_on_an_installed_policy_naming_an_unknown_kind(veil_home: Path) -> None:
    # Edited by hand after install: the gateway would refuse it at its next load.
    veil("db", "upgrade")
    (veil_home / "policies").mkdir(parents=True)
    (veil_home / "policies" / "support.yaml").write_text(
        "version: 1\nkinds:\n  EMIAL: {operator: keep}\n"
    )
    code, checks = doctor_checks()
    assert code == EXIT_FINDINGS
    assert "support.yaml:3: kinds.EMIAL" in checks["policies"]["detail"]


def test_doctor_checks_the_recognizers_file_every_surface_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    veil("db", "upgrade")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\npublic_values: [EMP-000000]\nrecognizers:\n"
        "  - id: e\n    kind: EMPLOYEE_ID\n    pattern: 'EMP-\\d{6}'\n"
    )
    monkeypatch.setenv("VEIL_RECOGNIZERS", str(rules))
    code, checks = doctor_checks()
    assert code == EXIT_OK
    assert checks["your recognizers"]["detail"].startswith("1 recognizer(s), 1 public value(s)")
    rules.write_text("version: 1\nrecognizers:\n  - id: e\n    kind: lower\n    pattern: x\n")
    code, checks = doctor_checks()
    assert code == EXIT_FINDINGS
    assert "rules.yaml:3" in checks["your recognizers"]["detail"]


def test_doctor_warns_of_a_recognizer_that_can_never_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Score 0.4, no validator, no context words: every finding fell below 0.5, silently.
    veil("db", "upgrade")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nrecognizers:\n"
        "  - id: quiet\n    kind: EMPLOYEE_ID\n    pattern: 'EMP-\\d{6}'\n    score: 0.4\n"
        "  - id: heard\n    kind: BADGE_ID\n    pattern: 'B-\\d{6}'\n    score: 0.4\n"
        "    context: [badge]\n"
    )
    monkeypatch.setenv("VEIL_RECOGNIZERS", str(rules))
    code, checks = doctor_checks()
    assert code == EXIT_OK  # a warning
    check = checks["your recognizers"]
    assert check["status"] == "warn"
    assert "quiet can never report" in check["detail"]
    assert "heard" not in check["detail"]
    assert veil("detect", "-", stdin="id EMP-123456")[0] == EXIT_OK  # indeed nothing found


def test_detect_with_a_missing_ner_model_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VEIL_NER_MODEL", "xx_no_such_model")
    code, output = veil("detect", "-")
    assert code == EXIT_USAGE
    assert "xx_no_such_model" in output


def test_doctor_reports_a_missing_database_with_the_fix() -> None:
    code, checks = doctor_checks()
    assert code == EXIT_FINDINGS
    assert checks["database"]["fix"] == "veil db upgrade"


def test_doctor_flags_a_home_readable_by_others(veil_home: Path) -> None:
    veil("db", "upgrade")
    veil_home.chmod(0o755)
    code, checks = doctor_checks()
    assert code == EXIT_FINDINGS
    assert checks["VEIL_HOME"]["status"] == "fail"
    assert checks["VEIL_HOME"]["fix"] == f"chmod 700 {veil_home}"


def test_doctor_flags_a_world_readable_env_file_and_reads_nothing_from_it() -> None:
    env = Path(".env")
    env.write_text(f"OPENAI_API_KEY={OPENAI_KEY}\n")
    env.chmod(0o644)
    code, checks = doctor_checks()
    assert code == EXIT_FINDINGS
    assert checks[".env mode"]["fix"] == f"chmod 600 {env.absolute()}"
    assert checks["settings"]["status"] == "skip"


def test_doctor_flags_an_env_file_git_would_commit() -> None:
    subprocess.run(["git", "init", "-q", "."], check=True)
    env = Path(".env")
    env.write_text("VEIL_LOG_LEVEL=INFO\n")
    env.chmod(0o600)
    veil("db", "upgrade")
    code, checks = doctor_checks()
    assert code == EXIT_FINDINGS
    assert checks[".env ignored by git"]["status"] == "fail"
    Path(".gitignore").write_text(".env\n")
    code, checks = doctor_checks()
    assert checks[".env ignored by git"]["status"] == "ok"
    assert code == EXIT_OK


def test_doctor_flags_plain_http_to_a_remote_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    veil("db", "upgrade")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://api.example.com/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:8080")
    code, checks = doctor_checks()
    assert code == EXIT_FINDINGS
    assert checks["openai endpoint"]["status"] == "fail"
    assert checks["anthropic endpoint"]["status"] == "ok"


def test_doctor_reports_an_unreachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_DATABASE_URL", "postgresql://veil:hunter2@127.0.0.1:1/veil")
    code, output = veil("doctor")
    assert code == EXIT_FINDINGS
    assert "unreachable" in output
    assert "hunter2" not in output
