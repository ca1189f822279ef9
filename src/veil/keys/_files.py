"""File encryption: the age format (pyrage) for sharing, the sealed format for data at rest.

``age`` is the format for sharing: anyone with the ``age`` tool and the right identity can
decrypt. The installation's own identity is kept in the vault (sealed under a data key);
``recipient()`` is its public half, to give to others.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from veil.errors import InputError, IntegrityError, KeyMaterialError
from veil.keys import _sealed as sealed
from veil.keys._store import KeyStore
from veil.keys._vault import Vault

if TYPE_CHECKING:
    import pyrage

IDENTITY_NAME = "veil.age-identity"
SEALED_PURPOSE = "sealed-files"
_AGE_BINARY = b"age-encryption.org/v1\n"
_AGE_ARMORED = b"-----BEGIN AGE ENCRYPTED FILE-----"


def _identity(vault: Vault) -> pyrage.x25519.Identity:
    import pyrage  # only the age format needs it (loaded on use)

    try:
        return pyrage.x25519.Identity.from_str(vault.get(IDENTITY_NAME))
    except InputError:
        identity = pyrage.x25519.Identity.generate()
        vault.set(IDENTITY_NAME, str(identity))
        return identity


def recipient(vault: Vault) -> str:
    """This installation's age recipient (``age1…``), created on first use."""
    return str(_identity(vault).to_public())


def _recipients(values: list[str]) -> list[pyrage.x25519.Recipient]:
    import pyrage  # only the age format needs it (loaded on use)

    parsed = []
    for value in values:
        try:
            parsed.append(pyrage.x25519.Recipient.from_str(value.strip()))
        except pyrage.RecipientError:
            raise InputError(
                "A recipient is not an age X25519 public key (age1…).",
                hint="Ask for the output of `veil keys recipient` or `age-keygen -y`.",
            ) from None
    return parsed


# ``out`` as this name: standard output, streamed (a pipe has no file to rename into).
STDOUT = Path("-")


def _replace_atomically(out: Path, write: object) -> None:
    """Run ``write(temporary_path)``, then rename over ``out``; nothing is left on failure.
    With ``out`` = :data:`STDOUT`, ``write`` gets the standard output's binary stream."""
    if out == STDOUT:
        stdout = sys.stdout.buffer
        write(stdout)  # type: ignore[operator]
        stdout.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(temporary)  # type: ignore[operator]
        os.chmod(temporary, 0o600)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def encrypt_file(source: Path, out: Path, recipients: list[str], *, armored: bool = False) -> None:
    """Encrypt ``source`` to age ``recipients``, streaming (constant memory)."""
    import pyrage  # only the age format needs it (loaded on use)

    if not recipients:
        raise InputError("Name at least one recipient (--to age1…, or --self).")
    parsed = _recipients(recipients)

    def write(target: str | BinaryIO) -> None:
        if isinstance(target, str):
            pyrage.encrypt_file(str(source), target, parsed, armored=armored)
        else:
            with source.open("rb") as reader:
                pyrage.encrypt_io(reader, target, parsed, armored=armored)

    _replace_atomically(out, write)


def encrypt_with_passphrase(
    source: Path, out: Path, passphrase: str, *, armored: bool = False
) -> None:
    """Encrypt with a passphrase (age scrypt recipient). Reads the file into memory."""
    import pyrage  # only the age format needs it (loaded on use)

    data = source.read_bytes()
    sealed = pyrage.passphrase.encrypt(data, passphrase, armored=armored)
    _replace_atomically(out, lambda target: _write_bytes(target, sealed))


def _write_bytes(target: str | BinaryIO, data: bytes) -> None:
    with _writer(target) as writer:
        writer.write(data)


def is_passphrase_file(source: Path) -> bool:
    with source.open("rb") as handle:
        head = handle.read(400)
    if head.startswith(_AGE_ARMORED):
        # The armored header's first lines, decoded (64 characters a line, 48 bytes).
        lines = head.splitlines()[1:4]
        try:
            head = base64.b64decode(b"".join(line for line in lines if len(line) == 64))
        except ValueError:
            return False
    return head.startswith(_AGE_BINARY) and b"-> scrypt " in head


def check_age_file(source: Path) -> None:
    with source.open("rb") as handle:
        head = handle.read(64)
    if not (head.startswith(_AGE_BINARY) or head.startswith(_AGE_ARMORED)):
        raise InputError(f"{source} is not an age-encrypted file.")


def decrypt_file(source: Path, out: Path, vault: Vault) -> None:
    """Decrypt ``source`` with this installation's identity, streaming."""
    import pyrage  # only the age format needs it (loaded on use)

    check_age_file(source)
    identity = _identity(vault)

    def write(target: str | BinaryIO) -> None:
        try:
            if isinstance(target, str):
                pyrage.decrypt_file(str(source), target, [identity])
            else:
                with source.open("rb") as reader:
                    pyrage.decrypt_io(reader, target, [identity])
        except OSError as exc:
            if "decrypt" not in str(exc).lower():
                raise InputError(f"Cannot decrypt {source}: {exc.strerror or exc}.") from None
            raise IntegrityError(
                f"{source} is corrupted or truncated; nothing was written."
            ) from None
        except pyrage.DecryptError as exc:
            text = str(exc).lower()
            if "no matching keys" in text or "no identity" in text:
                raise KeyMaterialError(
                    f"{source} was not encrypted to this installation's recipient.",
                    hint="Decrypt it where its recipient's identity lives.",
                ) from None
            raise IntegrityError(
                f"{source} is corrupted or truncated; nothing was written.",
            ) from None

    _replace_atomically(out, write)


def is_sealed_file(source: Path) -> bool:
    with source.open("rb") as handle:
        return handle.read(len(sealed.MAGIC)) == sealed.MAGIC


def encrypt_sealed(source: Path, out: Path, keys: KeyStore) -> None:
    """Encrypt ``source`` in the sealed format under the ``sealed-files`` data key."""
    key_id, data_key = keys.data_key(SEALED_PURPOSE)

    def write(target: str | BinaryIO) -> None:
        with source.open("rb") as reader, _writer(target) as writer:
            sealed.encrypt_stream(reader, writer, key_id, data_key)

    _replace_atomically(out, write)


def decrypt_sealed(source: Path, out: Path, keys: KeyStore) -> None:
    def write(target: str | BinaryIO) -> None:
        with source.open("rb") as reader, _writer(target) as writer:
            sealed.decrypt_stream(reader, writer, keys.key_by_id)

    _replace_atomically(out, write)


def decrypt_with_passphrase(source: Path, out: Path, passphrase: str) -> None:
    import pyrage  # only the age format needs it (loaded on use)

    check_age_file(source)
    try:
        data = pyrage.passphrase.decrypt(source.read_bytes(), passphrase)
    except pyrage.DecryptError:
        raise KeyMaterialError(
            f"Wrong passphrase for {source}, or the file is corrupted; nothing was written."
        ) from None
    _replace_atomically(out, lambda target: _write_bytes(target, data))


def _writer(target: str | BinaryIO) -> contextlib.AbstractContextManager[BinaryIO]:
    """A temporary file opened for writing, or the standard output (left open)."""
    if isinstance(target, str):
        return open(target, "wb")
    return contextlib.nullcontext(target)
