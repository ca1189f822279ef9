"""The shared detector follows the detection settings (VEIL_PHONE_REGION,
VEIL_RECOGNIZERS, VEIL_ADDRESS_BLOCKS) on every surface that uses it."""

from __future__ import annotations

from pathlib import Path

from veil.config import load_settings
from veil.transform import Redactor, shared_detector

GERMAN = "Meine Handynummer: 015112345678"
RULES = (
    "version: 1\n"
    "public_values:\n  - EMP-000000\n"
    "recognizers:\n"
    "  - id: employee-id\n    kind: EMPLOYEE_ID\n    pattern: '\\bEMP-\\d{6}\\b'\n"
    "    keywords: [emp-]\n    score: 0.8\n    level: HIGH\n"
)


def test_the_phone_region_setting_reaches_the_shared_detector() -> None:
    default = shared_detector(load_settings())
    german = shared_detector(load_settings(phone_region="DE"))
    assert [f.kind for f in default.find(GERMAN)] == []  # a US-hinted engine needs context
    assert [f.kind for f in german.find(GERMAN)] == ["PHONE"]
    redactor = Redactor(detector=german)
    assert "015112345678" not in redactor.redact(GERMAN).text


def test_the_recognizers_setting_adds_the_users_recognizers_and_public_values(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    detector = shared_detector(load_settings(recognizers=str(rules)))
    text = "ticket for EMP-004211, template EMP-000000"
    assert [(f.kind, text[f.start : f.end]) for f in detector.find(text)] == [
        ("EMPLOYEE_ID", "EMP-004211")
    ]


def test_one_detector_per_configuration_is_compiled_once() -> None:
    assert shared_detector(load_settings()) is shared_detector(load_settings())
    assert shared_detector(load_settings(phone_region="GB")) is not shared_detector(load_settings())


def test_veil_redact_in_a_fresh_process_follows_the_environment(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    script = "import sys, veil; sys.stdout.write(veil.redact(sys.argv[1]))"
    run = [sys.executable, "-c", script, GERMAN]
    plain = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert "015112345678" in plain.stdout  # a US hint and no context word: kept
    german = subprocess.run(
        run, env={**env, "VEIL_PHONE_REGION": "DE"}, capture_output=True, text=True, check=True
    )
    assert "015112345678" not in german.stdout


def test_a_missing_recognizers_file_names_the_variable(tmp_path: Path) -> None:
    import pytest

    from veil.errors import InputError

    with pytest.raises(InputError, match="Cannot read") as raised:
        shared_detector(load_settings(recognizers=str(tmp_path / "missing.yaml")))
    assert "VEIL_RECOGNIZERS" in str(raised.value.hint)
