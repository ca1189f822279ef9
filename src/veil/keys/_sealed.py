"""The ``sealed`` format: streaming AES-256-GCM for bulk data at rest (docs/formats.md).

A per-file key comes from HKDF over a data key and a random salt; the plaintext is cut
into fixed-size segments, each encrypted with nonce = prefix ‖ segment counter ‖ last flag
(the STREAM construction, as in Tink's AES-GCM-HKDF streaming AEAD) and with the SHA-256 of
the header as associated data. So truncation, reordering, and segments swapped between
files are all detected, and memory stays at one segment whatever the file size.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Callable
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from veil.errors import InputError, IntegrityError

MAGIC = b"VEILSEAL"
VERSION = 1
DEFAULT_SEGMENT = 1 << 20
TAG = 16
_PREFIX = 7


def _file_key(data_key: bytes, salt: bytes, key_id: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"veil-sealed-v1\0" + key_id.encode()
    ).derive(data_key)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


def build_header(key_id: str, segment: int, salt: bytes, prefix: bytes) -> bytes:
    encoded = key_id.encode("ascii")
    return (
        MAGIC
        + bytes([VERSION])
        + struct.pack(">IH", segment, len(encoded))
        + encoded
        + salt
        + prefix
    )


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the stream (raw streams read short)."""
    parts, missing = [], size
    while missing > 0:
        chunk = stream.read(missing)
        if not chunk:
            break
        parts.append(chunk)
        missing -= len(chunk)
    return b"".join(parts)


def read_header(stream: BinaryIO) -> tuple[bytes, str, int, bytes, bytes]:
    """(header bytes, key id, segment size, salt, nonce prefix) of a sealed stream."""
    fixed = _read_exactly(stream, len(MAGIC) + 1 + 6)
    if len(fixed) < len(MAGIC) + 7 or not fixed.startswith(MAGIC):
        raise InputError("This is not a Veil sealed file.")
    if fixed[len(MAGIC)] != VERSION:
        raise InputError(f"Unsupported sealed format version {fixed[len(MAGIC)]}.")
    segment, length = struct.unpack(">IH", fixed[len(MAGIC) + 1 :])
    rest = _read_exactly(stream, length + 32 + _PREFIX)
    if len(rest) != length + 32 + _PREFIX or not 16 <= segment <= 1 << 26:
        raise IntegrityError("The sealed file's header is truncated or corrupted.")
    key_id = rest[:length].decode("ascii", errors="replace")
    salt, prefix = rest[length : length + 32], rest[length + 32 :]
    return fixed + rest, key_id, segment, salt, prefix


def _reader(source: BinaryIO) -> Callable[[memoryview], int]:
    """A function that fills a buffer from ``source`` (short only at the end)."""
    readinto = getattr(source, "readinto", None)

    def fill(view: memoryview) -> int:
        total = 0
        while total < len(view):
            if readinto is not None:
                got = readinto(view[total:])
            else:
                chunk = source.read(len(view) - total)
                got = len(chunk)
                view[total : total + got] = chunk
            if not got:
                break
            total += got
        return total

    return fill


# Encrypting and decrypting into buffers allocated once: a fresh 1 MiB bytes object per
# segment costs a new mapping and its page faults, as much as the cipher itself.
_IN_PLACE = hasattr(AESGCM, "encrypt_into") and hasattr(AESGCM, "decrypt_into")


def encrypt_stream(
    source: BinaryIO,
    sink: BinaryIO,
    key_id: str,
    data_key: bytes,
    *,
    segment: int = DEFAULT_SEGMENT,
    salt: bytes | None = None,
    prefix: bytes | None = None,
) -> int:
    """Encrypt ``source`` into ``sink``; returns the plaintext size. ``salt`` and
    ``prefix`` are random unless given (test vectors only). ``sink.write`` must consume
    what it is given before returning (files, pipes and ``BytesIO`` do): the buffer
    passed to it is reused for the next segment."""
    salt = salt if salt is not None else secrets.token_bytes(32)
    prefix = prefix if prefix is not None else secrets.token_bytes(_PREFIX)
    header = build_header(key_id, segment, salt, prefix)
    aad = hashlib.sha256(header).digest()
    cipher = AESGCM(_file_key(data_key, salt, key_id))
    sink.write(header)
    fill = _reader(source)
    # The nonce says whether a segment is the last, so one byte past the segment is read
    # with it: when that byte is there, the segment is not the last, and the byte starts
    # the next one (one buffer, not two: the `veil` process stays under 64 MB).
    buffer = memoryview(bytearray(segment + 1))
    out = memoryview(bytearray(segment + TAG))
    counter, total = 0, 0
    length = fill(buffer)
    while True:
        last = length <= segment
        plain = buffer[: min(length, segment)]
        nonce = _nonce(prefix, counter, last)
        if _IN_PLACE:
            sealed = out[: len(plain) + TAG]
            cipher.encrypt_into(nonce, plain, aad, sealed)
            sink.write(sealed)
        else:
            sink.write(cipher.encrypt(nonce, bytes(plain), aad))
        total += len(plain)
        if last:
            return total
        counter += 1
        buffer[0] = buffer[segment]
        length = 1 + fill(buffer[1:])


def decrypt_stream(source: BinaryIO, sink: BinaryIO, key_for: Callable[[str], bytes]) -> int:
    """Decrypt a sealed stream; ``key_for(key_id)`` returns the data key. Raises
    :class:`IntegrityError` on any modification, truncation or reordering. As for
    :func:`encrypt_stream`, ``sink.write`` must consume its buffer before returning."""
    header, key_id, segment, salt, prefix = read_header(source)
    aad = hashlib.sha256(header).digest()
    cipher = AESGCM(_file_key(key_for(key_id), salt, key_id))
    size = segment + TAG
    fill = _reader(source)
    buffer = memoryview(bytearray(size + 1))  # one byte past the segment, as in encrypting
    out = memoryview(bytearray(segment))
    counter, total = 0, 0
    length = fill(buffer)
    while True:
        last = length <= size
        if length < TAG:
            raise IntegrityError(f"The sealed file is truncated (segment {counter}).")
        nonce = _nonce(prefix, counter, last)
        sealed = buffer[: min(length, size)]
        try:
            if _IN_PLACE:
                plain: memoryview | bytes = out[: len(sealed) - TAG]
                cipher.decrypt_into(nonce, sealed, aad, plain)
            else:
                plain = cipher.decrypt(nonce, bytes(sealed), aad)
        except InvalidTag:
            raise IntegrityError(
                f"Segment {counter} of the sealed file failed authentication: the file was "
                "truncated, reordered, altered or mixed with another file."
            ) from None
        # Only authenticated plaintext is ever written.
        sink.write(plain)
        total += len(plain)
        if last:
            return total
        counter += 1
        buffer[0] = buffer[size]
        length = 1 + fill(buffer[1:])
