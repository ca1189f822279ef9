"""veil._hmac: the copied keyed object gives exactly HMAC-SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import threading

from hypothesis import given
from hypothesis import strategies as st

from veil._hmac import KeyedHmac


@given(st.binary(min_size=0, max_size=200), st.binary(max_size=5000))
def test_keyed_hmac_equals_one_shot_hmac_sha256(key: bytes, data: bytes) -> None:
    hasher = KeyedHmac(key)
    expected = hmac.digest(key, data, "sha256")
    assert hasher.digest(data) == expected
    assert hasher.hexdigest(data) == expected.hex()
    assert hasher.digest(data) == expected  # the keyed object is never consumed


def test_copies_hash_pieces_like_the_whole() -> None:
    hasher = KeyedHmac(b"k" * 32)
    mac = hasher.copy()
    for piece in (b"first ", b"second ", b"third"):
        mac.update(piece)
    assert mac.digest() == hmac.new(b"k" * 32, b"first second third", hashlib.sha256).digest()


def test_threads_sharing_one_keyed_hmac_get_their_own_digests() -> None:
    hasher = KeyedHmac(b"shared key")
    wrong: list[int] = []

    def work(n: int) -> None:
        for i in range(500):
            data = f"{n}:{i}".encode()
            if hasher.digest(data) != hmac.digest(b"shared key", data, "sha256"):
                wrong.append(i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_repr_shows_no_key() -> None:
    assert "secret" not in repr(KeyedHmac(b"secret"))
