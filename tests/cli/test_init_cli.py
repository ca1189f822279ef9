"""``veil init``: a root key is created once, never silently, and never replaced."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import pytest

from tests.cli.conftest import veil
from veil.errors import EXIT_ERROR, EXIT_INTEGRITY, EXIT_OK, EXIT_USAGE


def test_commands_needing_a_key_fail_until_init() -> None:
    code, output = veil("vault", "list")
    assert code == EXIT_ERROR
    assert "VEIL_MASTER_KEY" in output
    assert not Path(".env").exists()  # nothing was generated behind the user's back


def test_init_creates_the_key_once_in_a_private_env_file() -> None:
    code, output = veil("init", "--json")
    assert code == EXIT_OK
    report = json.loads(output)
    assert report["created"] is True
    env = Path(".env")
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    content = env.read_text()
    assert content.startswith("VEIL_MASTER_KEY=")
    assert content.split("=", 1)[1].strip() not in output
    code, output = veil("init", "--json")
    assert json.loads(output) == {**report, "created": False, "stored_in": "already configured"}
    assert env.read_text() == content
    assert veil("vault", "list")[0] == EXIT_OK


def test_init_keeps_existing_env_settings() -> None:
    env = Path(".env")
    env.write_text("VEIL_LOG_LEVEL=WARNING")
    env.chmod(0o600)
    assert veil("init")[0] == EXIT_OK
    lines = env.read_text().splitlines()
    assert lines[0] == "VEIL_LOG_LEVEL=WARNING"
    assert lines[1].startswith("VEIL_MASTER_KEY=")


def test_init_fills_an_empty_key_line_of_a_copied_template() -> None:
    # It appended a second VEIL_MASTER_KEY line after the template's empty one: other
    # readers of .env (docker --env-file, dotenv) could take the empty one.
    env = Path(".env")
    env.write_text('# copied from .env.example\nexport VEIL_MASTER_KEY=""\nVEIL_LOG_LEVEL=INFO\n')
    env.chmod(0o600)
    assert veil("init")[0] == EXIT_OK
    lines = env.read_text().splitlines()
    assert len(lines) == 3
    assert lines[0] == "# copied from .env.example"
    assert lines[1].startswith("export VEIL_MASTER_KEY=")
    assert len(lines[1]) > len('export VEIL_MASTER_KEY=""')
    assert lines[2] == "VEIL_LOG_LEVEL=INFO"
    assert veil("vault", "list", "--json")[0] == EXIT_OK


def test_init_refuses_a_world_readable_env_file() -> None:
    env = Path(".env")
    env.write_text("VEIL_LOG_LEVEL=WARNING\n")
    env.chmod(0o644)
    code, output = veil("init")
    assert code == EXIT_USAGE
    assert "chmod 600" in output


def test_init_with_a_configured_key_creates_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_MASTER_KEY", "q5Yk2b8vX0cJ3m4nR6tW9zA1sD7fG2hK4lP8oI3uE5w=")
    code, output = veil("init")
    assert code == EXIT_OK
    assert "already configured" in output
    assert not Path(".env").exists()


def test_init_with_a_passphrase_then_unlock_with_it(
    monkeypatch: pytest.MonkeyPatch, veil_home: Path
) -> None:
    code, output = veil(
        "init", "--passphrase", "--from-stdin", "--json", stdin="correct horse battery"
    )
    assert code == EXIT_OK, output
    report = json.loads(output)
    key_file = veil_home / "root-key.json"
    assert report["stored_in"] == str(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "correct horse" not in key_file.read_text()
    code, output = veil("vault", "list")
    assert code == EXIT_ERROR
    assert "VEIL_PASSPHRASE" in output
    monkeypatch.setenv("VEIL_PASSPHRASE", "wrong horse battery!")
    code, output = veil("vault", "list")
    assert code == EXIT_ERROR
    assert "Wrong passphrase" in output
    monkeypatch.setenv("VEIL_PASSPHRASE", "correct horse battery")
    assert veil("vault", "list")[0] == EXIT_OK
    code, output = veil("init", "--json")
    assert json.loads(output)["root_key_id"] == report["root_key_id"]
    assert json.loads(output)["created"] is False


def test_a_short_passphrase_is_refused() -> None:
    code, output = veil("init", "--passphrase", "--from-stdin", stdin="short")
    assert code == EXIT_USAGE
    assert "at least 12" in output


def test_init_with_a_local_kms_then_unlock_through_it(
    monkeypatch: pytest.MonkeyPatch, veil_home: Path, tmp_path: Path
) -> None:
    kek = tmp_path / "kms" / "kek.bin"
    monkeypatch.setenv("VEIL_KMS_URL", f"local:{kek}")
    code, output = veil("init", "--kms", "--json")
    assert code == EXIT_OK, output
    report = json.loads(output)
    wrapped = veil_home / "root-key.kms"
    assert stat.S_IMODE(wrapped.stat().st_mode) == 0o600
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600
    assert veil("vault", "list")[0] == EXIT_OK
    code, output = veil("init", "--json")
    assert json.loads(output)["root_key_id"] == report["root_key_id"]
    monkeypatch.delenv("VEIL_KMS_URL")
    code, output = veil("vault", "list")
    assert code == EXIT_ERROR
    assert "VEIL_KMS_URL" in output


def test_a_kms_key_that_was_swapped_does_not_unwrap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kek = tmp_path / "kek.bin"
    monkeypatch.setenv("VEIL_KMS_URL", f"local:{kek}")
    veil("init", "--kms")
    kek.write_bytes(bytes(32))
    code, output = veil("vault", "list")
    assert code == EXIT_INTEGRITY
    assert "does not unwrap" in output


def test_an_unknown_kms_scheme_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_KMS_URL", "vault9://kms.internal/key")
    code, output = veil("init", "--kms")
    assert code == EXIT_USAGE
    assert "unknown scheme 'vault9" in output


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps entries in this process (like a desktop keyring,
    without a desktop)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


def test_init_with_the_os_keyring(veil_home: Path) -> None:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        code, output = veil("init", "--keyring", "--json")
        assert code == EXIT_OK, output
        key_id = json.loads(output)["root_key_id"]
        marker = (veil_home / "root-key.keyring").read_text()
        assert key_id in marker
        (stored,) = backend.entries.values()
        assert stored not in marker
        assert veil("vault", "list")[0] == EXIT_OK
        backend.entries.clear()  # a locked or different user's keyring
        code, output = veil("vault", "list")
        assert code == EXIT_ERROR
        assert "keyring has no root key" in output
    finally:
        keyring.set_keyring(previous)


def test_init_refuses_a_keyring_that_would_not_protect_the_key() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        code, output = veil("init", "--keyring")
        assert code == EXIT_USAGE
        assert "would not protect the key" in output
    finally:
        keyring.set_keyring(previous)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--passphrase", "--kms"], "Choose one place for the root key"),  # --passphrase ignored
        (["--keyring", "--passphrase"], "Choose one place for the root key"),
        (["--from-stdin"], "use it with --passphrase"),  # a .env key was made instead
    ],
)
def test_init_refuses_options_it_would_ignore(args: list[str], message: str) -> None:
    code, output = veil("init", *args, stdin="")
    assert code == EXIT_USAGE
    assert message in output
    assert not Path(".env").exists()
