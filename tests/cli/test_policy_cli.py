"""``veil policy``: named policies for virtual keys, validated, audited, never half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import veil
from veil.errors import EXIT_OK, EXIT_USAGE
from veil.transform import default_policy_text

STRICT = "version: 1\nname: strict\ndefault: {operator: redact}\n"
BROKEN = "version: 1\ndefault: {operator: zap}\n"


pytestmark = pytest.mark.usefixtures("master_key")


def _ledger(action: str) -> list[dict[str, object]]:
    code, output = veil("audit", "query", "--action", action)
    assert code == EXIT_OK, output
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_check_names_the_line_at_fault(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(BROKEN)
    code, output = veil("policy", "check", str(tmp_path / "p.yaml"))
    assert code == EXIT_USAGE
    assert "p.yaml:2: default.operator" in output


def test_a_rule_for_a_kind_no_recognizer_reports_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("version: 1\nkinds:\n  EMIAL: {operator: keep}\n")
    code, output = veil("policy", "check", str(tmp_path / "p.yaml"))
    assert code == EXIT_USAGE
    assert "p.yaml:3: kinds.EMIAL" in output
    assert "Did you mean EMAIL?" in output
    code, output = veil("policy", "install", str(tmp_path / "p.yaml"))
    assert code == EXIT_USAGE
    assert veil("policy", "list", "--json")[1].count('"name"') == 1  # only default


def test_a_kind_of_the_users_own_recognizers_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recognizers = tmp_path / "recognizers.yaml"
    recognizers.write_text(
        "version: 1\nrecognizers:\n  - id: employee-id\n    kind: EMPLOYEE_ID\n"
        "    pattern: 'EMP-\\d{6}'\n"
    )
    (tmp_path / "p.yaml").write_text("version: 1\nkinds:\n  EMPLOYEE_ID: {operator: mask}\n")
    code, output = veil("policy", "check", str(tmp_path / "p.yaml"))
    assert code == EXIT_USAGE
    assert "kinds.EMPLOYEE_ID" in output
    monkeypatch.setenv("VEIL_RECOGNIZERS", str(recognizers))
    code, output = veil("policy", "check", str(tmp_path / "p.yaml"))
    assert code == EXIT_OK, output


def test_install_is_audited_with_the_digest_of_each_version(tmp_path: Path) -> None:
    (tmp_path / "strict.yaml").write_text(STRICT)
    code, output = veil("policy", "install", str(tmp_path / "strict.yaml"), "--json")
    assert code == EXIT_OK, output
    first = json.loads(output)
    assert first["name"] == "strict"
    code, output = veil(
        "policy", "install", "-", "--name", "strict", "--json", stdin=STRICT + "#\n"
    )
    second = json.loads(output)
    assert second["previous_sha256"] == first["sha256"] != second["sha256"]
    entries = _ledger("policy.install")
    assert [e["resource"] for e in entries] == ["policy:strict", "policy:strict"]
    assert [e["details"] for e in entries] == [
        {"sha256": first["sha256"]},
        {"sha256": second["sha256"], "previous_sha256": first["sha256"]},
    ]


def test_an_invalid_policy_is_not_installed_and_the_old_one_stays() -> None:
    veil("policy", "install", "-", "--name", "strict", stdin=STRICT)
    code, output = veil("policy", "install", "-", "--name", "strict", stdin=BROKEN)
    assert code == EXIT_USAGE
    assert "default.operator" in output
    assert veil("policy", "show", "strict")[1] == STRICT
    assert len(_ledger("policy.install")) == 1


def test_list_shows_default_the_installed_and_the_broken(veil_home: Path) -> None:
    veil("policy", "install", "-", "--name", "strict", stdin=STRICT)
    (veil_home / "policies" / "edited.yaml").write_text(BROKEN)
    (veil_home / "policies" / "typo.yaml").write_text(
        "version: 1\nkinds:\n  EMIAL: {operator: keep}\n"
    )
    code, output = veil("policy", "list", "--json")
    assert code == EXIT_OK
    rows = {row["name"]: row for row in json.loads(output)}
    assert set(rows) == {"default", "edited", "strict", "typo"}
    assert rows["strict"]["valid"]
    assert len(rows["strict"]["sha256"]) == 64
    assert not rows["edited"]["valid"]
    assert "default.operator" in rows["edited"]["error"]
    assert not rows["typo"]["valid"]
    assert "kinds.EMIAL" in rows["typo"]["error"]


def test_the_shipped_default_cannot_be_replaced_or_removed() -> None:
    assert veil("policy", "install", "-", "--name", "default", stdin=STRICT)[0] == EXIT_USAGE
    assert veil("policy", "remove", "default")[0] == EXIT_USAGE
    code, output = veil("policy", "show", "default")
    assert code == EXIT_OK
    assert output == default_policy_text()


def test_remove_is_refused_while_a_key_uses_the_policy() -> None:
    veil("policy", "install", "-", "--name", "strict", stdin=STRICT)
    code, output = veil("keys", "create", "--name", "app", "--policy", "strict", "--json")
    assert code == EXIT_OK, output
    key_id = json.loads(output)["key_id"]
    code, output = veil("policy", "remove", "strict")
    assert code == EXIT_USAGE
    assert f"vk_{key_id}" in output
    assert veil("keys", "revoke", f"vk_{key_id}")[0] == EXIT_OK
    code, output = veil("policy", "remove", "strict", "--json")
    assert code == EXIT_OK, output
    assert [e["resource"] for e in _ledger("policy.remove")] == ["policy:strict"]
    assert veil("policy", "show", "strict")[0] == EXIT_USAGE


def test_a_key_cannot_be_created_for_a_policy_naming_an_unknown_kind(veil_home: Path) -> None:
    (veil_home / "policies").mkdir(parents=True, exist_ok=True)
    (veil_home / "policies" / "typo.yaml").write_text(
        "version: 1\nkinds:\n  EMIAL: {operator: keep}\n"
    )
    code, output = veil("keys", "create", "--name", "app", "--policy", "typo")
    assert code == EXIT_USAGE
    assert "typo.yaml:3: kinds.EMIAL" in output
