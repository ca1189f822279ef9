"""Operators and policies: what replaces a value, chosen by kind, level and surface."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from veil.detect import Detector, RecognizerSpec
from veil.errors import ConfigError, InputError, IntegrityError
from veil.keys import KeyStore, RootKey
from veil.transform import Redactor, default_policy, load_policy, parse_policy, redact

TEXT = (
    "Mail bob@example.com, call +1-415-555-0132, pay 4111 1111 1111 1111, "
    "key ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI"
)


def test_default_policy_redacts_masks_and_removes_secrets() -> None:
    assert redact(TEXT) == (
        "Mail [EMAIL], call +X-XXX-XXX-0132, pay XXXX XXXX XXXX 1111, key [GITHUB_TOKEN]"
    )


def test_gateway_surface_pseudonymizes_personal_data_but_not_secrets() -> None:
    result = Redactor(surface="gateway").redact(TEXT)
    assert result.text == (
        "Mail <EMAIL_1>, call <PHONE_1>, pay <CREDIT_CARD_1>, key [GITHUB_TOKEN]"
    )
    assert result.actions == {"pseudonymize": 3, "redact": 1}


def test_mask_keeps_a_vendor_prefix_for_secrets_and_the_domain_for_email() -> None:
    policy = parse_policy("version: 1\ndefault: {operator: mask}\n")
    assert Redactor(policy=policy).redact(TEXT).text == (
        "Mail bXXX@example.com, call +X-XXX-XXX-0132, pay XXXX XXXX XXXX 1111, key ghp_…2uI"
    )


def test_hash_is_keyed_consistent_and_needs_a_key(
    new_keystore: Callable[[], KeyStore],
) -> None:
    policy = parse_policy("version: 1\ndefault: {operator: hash}\n")
    keys = new_keystore()
    first = Redactor(policy=policy, keys=keys).redact("bob@example.com").text
    again = Redactor(policy=policy, keys=keys).redact("bob@example.com").text
    other = Redactor(policy=policy, keys=new_keystore()).redact("bob@example.com").text
    assert first == again
    assert first != other
    assert first.startswith("<EMAIL:")
    with pytest.raises(ConfigError, match="hash key"):
        Redactor(policy=policy).redact("bob@example.com")


def test_encrypt_is_deterministic_and_reversible_by_the_key_holder(
    new_keystore: Callable[[], KeyStore],
) -> None:
    policy = parse_policy("version: 1\ndefault: {operator: encrypt}\n")
    redactor = Redactor(policy=policy, keys=new_keystore())
    sealed = redactor.redact("from bob@example.com to bob@example.com").text
    first, second = sealed.split(" to ")
    assert first.removeprefix("from ") == second
    assert "bob" not in sealed
    assert redactor.restore(sealed) == "from bob@example.com to bob@example.com"


def test_a_tampered_encrypted_token_is_an_integrity_error(
    new_keystore: Callable[[], KeyStore],
) -> None:
    policy = parse_policy("version: 1\ndefault: {operator: encrypt}\n")
    redactor = Redactor(policy=policy, keys=new_keystore())
    sealed = redactor.redact("bob@example.com").text
    tampered = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    with pytest.raises(IntegrityError):
        redactor.restore(tampered)


def test_drop_and_keep() -> None:
    policy = parse_policy(
        "version: 1\ndefault: {operator: drop}\nkinds:\n  EMAIL: {operator: keep}\n"
    )
    assert Redactor(policy=policy).redact("a bob@example.com b 10.0.0.1 c").text == (
        "a bob@example.com b  c"
    )


def test_kind_rule_beats_secret_rule_beats_level_rule_beats_default() -> None:
    policy = parse_policy(
        "version: 1\n"
        "default: {operator: keep}\n"
        "levels:\n  CRITICAL: {operator: drop}\n"
        "secrets: {operator: mask}\n"
        "kinds:\n  PHONE: {operator: redact, label: '[tel]'}\n"
    )
    text = "bob@example.com ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI 212-555-0147 10.0.0.1"
    assert Redactor(policy=policy).redact(text).text == " ghp_…2uI [tel] 10.0.0.1"


def test_policy_errors_name_the_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nkinds:\n  EMAIL:\n    operator: scramble\n")
    with pytest.raises(InputError, match=r"policy.yaml:4: kinds.EMAIL.operator"):
        load_policy(path)


def test_policy_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nkinds: [unclosed\n")
    with pytest.raises(InputError, match=r"policy.yaml:3: invalid YAML"):
        load_policy(path)


def test_policy_needs_version_1() -> None:
    with pytest.raises(InputError, match="version"):
        parse_policy("default: {operator: redact}\n")


def test_default_policy_ships_and_validates() -> None:
    policy = default_policy()
    assert policy.name == "default"
    assert "gateway" in policy.surfaces


def test_root_key_repr_shows_only_its_id() -> None:
    material = os.urandom(32)
    key = RootKey(material)
    assert base64.b64encode(material).decode() not in repr(key)
    assert material.hex() not in repr(key)
    assert repr(key).startswith("RootKey(key_id='rk-")


def test_a_rule_for_a_kind_no_recognizer_reports_is_refused_with_its_line(
    tmp_path: Path,
) -> None:
    # EMAIL misspelt: the rule would never apply and e-mail addresses would silently get
    # the default operator.
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\ndefault: {operator: keep}\nsurfaces:\n  logging:\n    kinds:\n"
        "      EMIAL: {operator: redact}\n"
    )
    policy = load_policy(path)
    with pytest.raises(InputError, match=r"policy.yaml:6: surfaces.logging.kinds.EMIAL: .*EMAIL"):
        Redactor(policy=policy)


def test_a_rule_for_a_kind_of_a_users_recognizer_applies() -> None:
    spec = RecognizerSpec(id="employee-id", kind="EMPLOYEE_ID", pattern=r"EMP-\d{6}")
    detector = Detector(extra=[spec])
    policy = parse_policy("version: 1\nkinds:\n  EMPLOYEE_ID: {operator: mask, reveal: 2}\n")
    assert Redactor(detector=detector, policy=policy).redact("id EMP-123456").text == (
        "id XXX-XXXX56"
    )


def test_a_misspelt_surface_is_refused() -> None:
    with pytest.raises(InputError, match=r"surfaces.gatway: Input should be 'gateway'"):
        parse_policy("version: 1\nsurfaces:\n  gatway:\n    default: {operator: keep}\n")
    with pytest.raises(InputError, match="Unknown surface 'gatway'"):
        Redactor(surface="gatway")


def test_library_misuse_gets_a_clear_error() -> None:
    # A policy name or bytes failed with an AttributeError from deep inside.
    with pytest.raises(InputError, match="policy must be a Policy, not str"):
        redact("mail bob@example.com", policy="default")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="takes text"):
        redact(b"mail bob@example.com")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="takes text"):
        Detector().find(None)  # type: ignore[arg-type]
