"""veil encrypt / veil decrypt: the age format, interoperable, nothing written on failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest

from tests.cli.conftest import veil
from veil.errors import EXIT_ERROR, EXIT_INTEGRITY, EXIT_OK, EXIT_USAGE

CONTENT = os.urandom(300_000) + b"end"
VEIL = str(Path(sys.executable).with_name("veil"))


pytestmark = pytest.mark.usefixtures("master_key")


@pytest.fixture
def plain() -> Path:
    path = Path("report.bin")
    path.write_bytes(CONTENT)
    return path


def test_encrypt_to_self_then_decrypt(plain: Path) -> None:
    assert veil("encrypt", str(plain), "--self")[0] == EXIT_OK
    sealed = Path("report.bin.age")
    assert CONTENT[:1000] not in sealed.read_bytes()
    assert veil("decrypt", str(sealed), "--out", "back.bin")[0] == EXIT_OK
    assert Path("back.bin").read_bytes() == CONTENT


def test_files_for_others_are_standard_age(plain: Path) -> None:
    friend = pyrage.x25519.Identity.generate()
    assert veil("encrypt", str(plain), "--to", str(friend.to_public()), "--armor")[0] == EXIT_OK
    sealed = Path("report.bin.age").read_bytes()
    assert sealed.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    assert pyrage.decrypt(sealed, [friend]) == CONTENT


def test_files_from_others_to_our_recipient_decrypt() -> None:
    code, output = veil("keys", "recipient")
    assert code == EXIT_OK
    ours = pyrage.x25519.Recipient.from_str(output.strip())
    Path("in.age").write_bytes(pyrage.encrypt(b"hello from outside", [ours]))
    assert veil("decrypt", "in.age")[0] == EXIT_OK
    assert Path("in").read_bytes() == b"hello from outside"


def test_a_file_for_someone_else_is_refused_and_nothing_is_written(plain: Path) -> None:
    friend = pyrage.x25519.Identity.generate()
    veil("encrypt", str(plain), "--to", str(friend.to_public()))
    code, output = veil("decrypt", "report.bin.age", "--out", "never.bin")
    assert code == EXIT_ERROR
    assert "not encrypted to this installation" in output
    assert not Path("never.bin").exists()


def test_a_truncated_file_is_an_integrity_failure_and_nothing_is_written(plain: Path) -> None:
    veil("encrypt", str(plain), "--self")
    sealed = Path("report.bin.age")
    sealed.write_bytes(sealed.read_bytes()[:-500])
    code, output = veil("decrypt", str(sealed), "--out", "never.bin")
    assert code == EXIT_INTEGRITY
    assert "truncated" in output
    assert not Path("never.bin").exists()
    assert [p.name for p in Path().iterdir() if p.name.endswith(".tmp")] == []


def test_passphrase_round_trip_and_wrong_passphrase(plain: Path) -> None:
    code, _ = veil("encrypt", str(plain), "--passphrase", stdin="tr0ub4dor&3\ntr0ub4dor&3\n")
    assert code == EXIT_OK
    assert veil("decrypt", "report.bin.age", "--out", "back.bin", stdin="tr0ub4dor&3\n")[0] == 0
    assert Path("back.bin").read_bytes() == CONTENT
    code, output = veil("decrypt", "report.bin.age", "--out", "bad.bin", stdin="wrong\n")
    assert code == EXIT_ERROR
    assert "Wrong passphrase" in output
    assert not Path("bad.bin").exists()


def test_bad_inputs() -> None:
    Path("plain.txt").write_text("not encrypted")
    assert veil("decrypt", "plain.txt")[0] == EXIT_USAGE
    assert veil("encrypt", "missing.txt", "--self")[0] == EXIT_USAGE
    code, output = veil("encrypt", "plain.txt", "--to", "not-a-key")
    assert code == EXIT_USAGE
    assert "age1" in output
    assert veil("encrypt", "plain.txt")[0] == EXIT_USAGE


@pytest.mark.skipif(
    shutil.which("age") is None, reason="the age CLI (Debian package age) is not installed"
)
def test_interoperates_with_the_age_cli(plain: Path, tmp_path: Path) -> None:
    identity = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    public = subprocess.run(
        ["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    veil("encrypt", str(plain), "--to", public)
    decrypted = subprocess.run(
        ["age", "-d", "-i", str(identity), "report.bin.age"], check=True, capture_output=True
    ).stdout
    assert decrypted == CONTENT
    ours = veil("keys", "recipient")[1].strip()
    subprocess.run(["age", "-r", ours, "-o", "from-cli.age", str(plain)], check=True)
    assert veil("decrypt", "from-cli.age", "--out", "from-cli.bin")[0] == EXIT_OK
    assert Path("from-cli.bin").read_bytes() == CONTENT


def test_sealed_round_trip_through_the_cli(plain: Path) -> None:
    assert veil("encrypt", str(plain), "--sealed")[0] == EXIT_OK
    sealed_file = Path("report.bin.sealed")
    assert sealed_file.read_bytes().startswith(b"VEILSEAL")
    assert veil("decrypt", str(sealed_file), "--out", "back.bin")[0] == EXIT_OK
    assert Path("back.bin").read_bytes() == CONTENT
    data = bytearray(sealed_file.read_bytes())
    data[-1] ^= 1
    sealed_file.write_bytes(bytes(data))
    code, _ = veil("decrypt", str(sealed_file), "--out", "never.bin")
    assert code == EXIT_INTEGRITY
    assert not Path("never.bin").exists()


@pytest.mark.parametrize("sealed", [False, True])
def test_an_existing_output_file_is_never_replaced_without_force(plain: Path, sealed: bool) -> None:
    # `veil decrypt report.bin.age` wrote over report.bin, edited since, without a word.
    flag = ["--sealed"] if sealed else ["--self"]
    assert veil("encrypt", str(plain), *flag)[0] == EXIT_OK
    encrypted = f"report.bin.{'sealed' if sealed else 'age'}"
    plain.write_bytes(b"edited since")
    code, output = veil("decrypt", encrypted)
    assert code == EXIT_USAGE
    assert "already exists" in output
    assert "--force" in output
    assert plain.read_bytes() == b"edited since"
    assert veil("encrypt", str(plain), *flag)[0] == EXIT_USAGE  # the .age/.sealed exists
    assert veil("decrypt", encrypted, "--out", encrypted)[0] == EXIT_USAGE  # over its input
    assert veil("decrypt", encrypted, "--force")[0] == EXIT_OK
    assert plain.read_bytes() == CONTENT


@pytest.mark.parametrize("sealed", [False, True])
def test_out_dash_streams_to_standard_output(plain: Path, sealed: bool) -> None:
    # `--out -` wrote a file named "-".
    command = [VEIL, "encrypt", str(plain), "--sealed" if sealed else "--self", "--out", "-"]
    encrypted = subprocess.run(command, capture_output=True, check=True).stdout
    assert CONTENT[:1000] not in encrypted
    Path("piped.enc").write_bytes(encrypted)
    result = subprocess.run(
        [VEIL, "decrypt", "piped.enc", "--out", "-"], capture_output=True, check=True
    )
    assert result.stdout == CONTENT
    assert b"decrypted to standard output" in result.stderr
    assert not Path("-").exists()


def test_a_passphrase_prompt_stays_off_standard_output(plain: Path) -> None:
    # With --out - the prompt went to stdout, in front of the plaintext.
    code, _ = veil("encrypt", str(plain), "--passphrase", stdin="tr0ub4dor&3\ntr0ub4dor&3\n")
    assert code == EXIT_OK
    result = subprocess.run(
        [VEIL, "decrypt", "report.bin.age", "--out", "-"],
        input=b"tr0ub4dor&3\n",
        capture_output=True,
        check=True,
    )
    assert result.stdout == CONTENT


def test_a_passphrase_file_can_be_armored_and_decrypts(plain: Path) -> None:
    # --armor was ignored with --passphrase.
    code, _ = veil(
        "encrypt", str(plain), "--passphrase", "--armor", stdin="tr0ub4dor&3\ntr0ub4dor&3\n"
    )
    assert code == EXIT_OK
    assert Path("report.bin.age").read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    code, _ = veil("decrypt", "report.bin.age", "--out", "back.bin", stdin="tr0ub4dor&3\n")
    assert code == EXIT_OK
    assert Path("back.bin").read_bytes() == CONTENT
