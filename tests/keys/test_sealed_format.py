"""The sealed streaming format: round trips, the published vector, and every attack the
STREAM construction must stop."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.errors import InputError, IntegrityError
from veil.keys import _sealed as sealed

KEY = bytes(range(32))
SEGMENT = 16
HEADER = 8 + 1 + 4 + 2 + len("dk-test") + 32 + 7
VECTOR_HEX = (
    "5645494c5345414c01000000100007646b2d746573746465666768696a6b6c6d6e6f7071727374757677"
    "78797a7b7c7d7e7f8081828300010203040506571ffd36998ec1d18bf094d0536c4d626312539c47e044"
    "65829089573dcad2310d8ac8e54963e4b235b3f7fd5a296313d5bafd555f6852a8923707363685f8a3"
)


def seal(plaintext: bytes, **kwargs: bytes) -> bytes:
    out = io.BytesIO()
    sealed.encrypt_stream(io.BytesIO(plaintext), out, "dk-test", KEY, segment=SEGMENT, **kwargs)
    return out.getvalue()


def open_(blob: bytes) -> bytes:
    out = io.BytesIO()
    sealed.decrypt_stream(io.BytesIO(blob), out, lambda key_id: KEY)
    return out.getvalue()


def segments(blob: bytes) -> list[bytes]:
    body = blob[HEADER:]
    size = SEGMENT + sealed.TAG
    return [body[i : i + size] for i in range(0, len(body), size)]


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=200))
def test_round_trip_for_every_length_around_segment_boundaries(plaintext: bytes) -> None:
    assert open_(seal(plaintext)) == plaintext


def test_the_published_test_vector() -> None:
    blob = seal(
        b"hello sealed world, in segments!", salt=bytes(range(100, 132)), prefix=bytes(range(7))
    )
    assert blob.hex() == VECTOR_HEX
    assert open_(bytes.fromhex(VECTOR_HEX)) == b"hello sealed world, in segments!"


def test_dropping_the_last_segment_is_detected() -> None:
    blob = seal(os.urandom(SEGMENT * 3))
    parts = segments(blob)
    with pytest.raises(IntegrityError, match="Segment 1"):
        open_(blob[:HEADER] + b"".join(parts[:-1]))


def test_reordered_segments_are_detected() -> None:
    blob = seal(os.urandom(SEGMENT * 3))
    first, second, *rest = segments(blob)
    with pytest.raises(IntegrityError, match="Segment 0"):
        open_(blob[:HEADER] + second + first + b"".join(rest))


def test_a_segment_from_another_file_is_detected() -> None:
    one, other = seal(os.urandom(SEGMENT * 2)), seal(os.urandom(SEGMENT * 2))
    mixed = one[:HEADER] + segments(one)[0] + segments(other)[1]
    with pytest.raises(IntegrityError, match="Segment 1"):
        open_(mixed)


def test_an_altered_header_is_detected() -> None:
    blob = bytearray(seal(b"some data"))
    blob[HEADER - 1] ^= 1  # the nonce prefix
    with pytest.raises(IntegrityError):
        open_(bytes(blob))


def test_a_cut_header_or_foreign_file_is_refused() -> None:
    with pytest.raises(IntegrityError, match="header"):
        open_(seal(b"x")[: HEADER - 3])
    with pytest.raises(InputError, match="not a Veil sealed file"):
        open_(b"age-encryption.org/v1\n...")


def test_the_empty_file_is_one_final_segment() -> None:
    blob = seal(b"")
    assert len(blob) == HEADER + sealed.TAG
    assert open_(blob) == b""


class Trickle(io.RawIOBase):
    """A pipe-like source: at most 5 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(5, len(buffer)))
        buffer[: len(chunk)] = chunk
        return len(chunk)


class ReadOnly:
    """A source with ``read`` only (no ``readinto``)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 3))


@pytest.mark.parametrize("source", [Trickle, ReadOnly])
@pytest.mark.parametrize("size", [0, 1, SEGMENT, SEGMENT + 1, 5 * SEGMENT])
def test_short_reads_give_the_same_file(source: type, size: int) -> None:
    plaintext = os.urandom(size)
    salt, prefix = os.urandom(32), os.urandom(7)
    expected = seal(plaintext, salt=salt, prefix=prefix)
    out = io.BytesIO()
    sealed.encrypt_stream(
        source(plaintext), out, "dk-test", KEY, segment=SEGMENT, salt=salt, prefix=prefix
    )
    assert out.getvalue() == expected
    restored = io.BytesIO()
    sealed.decrypt_stream(source(expected), restored, lambda key_id: KEY)
    assert restored.getvalue() == plaintext


def test_the_copying_fallback_writes_the_same_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """cryptography releases without encrypt_into/decrypt_into take the copying path."""
    plaintext = os.urandom(3 * SEGMENT + 5)
    salt, prefix = os.urandom(32), os.urandom(7)
    expected = seal(plaintext, salt=salt, prefix=prefix)
    monkeypatch.setattr(sealed, "_IN_PLACE", False)
    assert seal(plaintext, salt=salt, prefix=prefix) == expected
    assert open_(expected) == plaintext
