"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification.

Pure functions over SHA-256 hashes, no database: anyone can check a Veil ledger proof with
this module alone (or any RFC 6962 verifier). Leaf hash = SHA-256(0x00 ‖ entry), node
hash = SHA-256(0x01 ‖ left ‖ right); the tree of n leaves splits at the largest power of
two smaller than n. Indices are 0-based.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from veil.errors import IntegrityError

HASH_SIZE = 32
_RUN_HEIGHT = 10  # Frontier.extend hashes runs of 1,024 leaves level by level
_sha256 = hashlib.sha256
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of the leaf hashes (``EMPTY_ROOT`` for no leaves)."""
    if not leaves:
        return EMPTY_ROOT
    frontier = Frontier()
    frontier.extend(leaves)
    return frontier.root()


class Frontier:
    """The right edge of a tree: the roots of its perfect subtrees, largest first.

    Appending a leaf costs O(log n) hashes and the root of the whole tree can be
    computed from the frontier alone, so the ledger never rereads old entries to append.
    """

    __slots__ = ("_size", "_subtrees")

    def __init__(self, size: int = 0, subtrees: Sequence[bytes] = ()) -> None:
        if len(subtrees) != size.bit_count():
            raise ValueError("a frontier has one subtree per set bit of its size")
        self._size = size
        self._subtrees = list(subtrees)

    @property
    def size(self) -> int:
        return self._size

    @property
    def subtrees(self) -> list[bytes]:
        return list(self._subtrees)

    def append(self, leaf: bytes) -> None:
        node = leaf
        size = self._size
        # Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
        subtrees = self._subtrees
        # node_hash inlined here and in root(): the ledger's sequencer calls these for
        # every entry, and the call costs as much as the hash.
        while size & 1:
            node = _sha256(b"\x01" + subtrees.pop() + node).digest()
            size >>= 1
        subtrees.append(node)
        self._size += 1

    def append_subtree(self, node: bytes, height: int) -> None:
        """Append the root of a perfect subtree of ``2**height`` leaves, the same as
        appending those leaves one by one; the size must be a multiple of its size."""
        if self._size % (1 << height):
            raise ValueError(f"a subtree of height {height} cannot start at {self._size}")
        size = self._size >> height
        subtrees = self._subtrees
        while size & 1:
            node = _sha256(b"\x01" + subtrees.pop() + node).digest()
            size >>= 1
        subtrees.append(node)
        self._size += 1 << height

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append many leaves; the same as appending them one by one, but runs of
        ``2**_RUN_HEIGHT`` aligned leaves are hashed level by level and joined as one
        perfect subtree (a tight loop instead of one Python call per leaf)."""
        run = 1 << _RUN_HEIGHT
        index, count = 0, len(leaves)
        while index < count:
            if self._size % run == 0 and count - index >= run:
                level = leaves[index : index + run]
                while len(level) > 1:
                    level = [
                        _sha256(b"\x01" + level[i] + level[i + 1]).digest()
                        for i in range(0, len(level), 2)
                    ]
                node, size = level[0], self._size >> _RUN_HEIGHT
                while size & 1:
                    node = node_hash(self._subtrees.pop(), node)
                    size >>= 1
                self._subtrees.append(node)
                self._size += run
                index += run
            else:
                self.append(leaves[index])
                index += 1

    def root(self) -> bytes:
        if not self._subtrees:
            return EMPTY_ROOT
        subtrees = self._subtrees
        node = subtrees[-1]
        for index in range(len(subtrees) - 2, -1, -1):
            node = _sha256(b"\x01" + subtrees[index] + node).digest()
        return node


def _subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return leaves[start]
    k = _split(end - start)
    return node_hash(_subtree_root(leaves, start, start + k), _subtree_root(leaves, start + k, end))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaves`` (RFC 6962 §2.1.1)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf {index} is not in a tree of size {n}")

    def path(m: int, start: int, end: int) -> list[bytes]:
        if end - start == 1:
            return []
        k = _split(end - start)
        if m < k:
            return [*path(m, start, start + k), _subtree_root(leaves, start + k, end)]
        return [*path(m - k, start + k, end), _subtree_root(leaves, start, start + k)]

    return path(index, 0, n)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose subtree roots make up the audit path of leaf
    ``index`` in a tree of ``size`` leaves, in the proof's order (RFC 6962 §2.1.1): a
    prover can stream the leaves once and hash each range as it passes."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()  # the path lists the sibling nearest the leaf first
    return ranges


def streamed_inclusion_proof(
    index: int,
    size: int,
    leaves: Iterable[bytes],
    *,
    prefix: int = 0,
    prefix_subtrees: Sequence[bytes] = (),
) -> tuple[bytes, list[bytes]]:
    """Leaf ``index``'s hash and audit path in a tree of ``size`` leaves, reading
    ``leaves`` (the leaf hashes from position ``prefix`` on, in order) once and keeping
    only one subtree's right edge at a time. The leaves before ``prefix`` are given by
    the tree's right edge at ``prefix`` (``Frontier.subtrees``: an archived segment's
    stored edge), so ``index`` must be at or after ``prefix``. Equal to
    :func:`inclusion_proof` over all the leaves (property-tested)."""
    if not prefix <= index < size:
        raise ValueError(f"leaf {index} is not between {prefix} and {size}")
    captured: list[bytes] = []
    roots = _streamed_roots(
        inclusion_ranges(index, size), size, leaves, prefix, prefix_subtrees, index, captured
    )
    return captured[0], roots


def streamed_consistency_proof(
    old_size: int,
    size: int,
    leaves: Iterable[bytes],
    *,
    prefix: int = 0,
    prefix_subtrees: Sequence[bytes] = (),
) -> list[bytes]:
    """:func:`consistency_proof` from ``old_size`` to ``size``, reading the leaves once
    as :func:`streamed_inclusion_proof` does. Raises ValueError when a subtree the proof
    needs lies inside the part before ``prefix`` (only its right edge is known)."""
    if not 0 < old_size <= size:
        raise ValueError(f"no consistency proof from size {old_size} to {size}")
    return _streamed_roots(
        consistency_ranges(old_size, size), size, leaves, prefix, prefix_subtrees, None, []
    )


def _streamed_roots(
    ranges: list[tuple[int, int]],
    size: int,
    leaves: Iterable[bytes],
    prefix: int,
    prefix_subtrees: Sequence[bytes],
    capture: int | None,
    captured: list[bytes],
) -> list[bytes]:
    """The roots of disjoint leaf ``ranges`` (in their order), from one pass over the
    leaves after ``prefix`` and the right edge before it; the leaf at ``capture`` is
    appended to ``captured``."""
    known = {
        start: (end, node)
        for (start, end), node in zip(frontier_ranges(prefix), prefix_subtrees, strict=True)
    }
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    roots: list[bytes] = [EMPTY_ROOT] * len(ranges)

    def open_range(position: int) -> Frontier:
        start, end = ranges[order[position]]
        tree, at = Frontier(), start
        while at < min(end, prefix):  # the part before ``prefix``: whole subtrees
            stop, node = known.get(at, (end + 1, b""))
            if stop > end:
                raise ValueError(f"leaves {start}..{end - 1} are only known by a right edge")
            tree.append_subtree(node, (stop - at).bit_length() - 1)
            at = stop
        return tree

    def close_range(position: int, tree: Frontier) -> None:
        start, end = ranges[order[position]]
        if tree.size != end - start:
            raise ValueError(f"leaves {start}..{end - 1} are missing")
        roots[order[position]] = tree.root()

    at, current, tree = prefix, -1, Frontier()
    for value in leaves:
        if at >= size:
            break
        if at == capture:
            captured.append(value)
        else:
            while current + 1 < len(order) and (current < 0 or at >= ranges[order[current]][1]):
                if current >= 0:
                    close_range(current, tree)
                current += 1
                tree = open_range(current)
            start, end = ranges[order[current]] if current >= 0 else (size, size)
            if start <= at < end:
                tree.append(value)
        at += 1
    if at != size or (capture is not None and not captured):
        raise ValueError(f"the leaves end at {at}, before {size}")
    if current >= 0:
        close_range(current, tree)
    for position in range(current + 1, len(order)):  # wholly before ``prefix``
        close_range(position, open_range(position))
    return roots


def consistency_ranges(old_size: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose subtree roots make up the consistency proof from
    ``old_size`` to ``size``, in the proof's order (RFC 6962 §2.1.2)."""
    if not 0 < old_size <= size:
        raise ValueError(f"no consistency proof from size {old_size} to {size}")
    ranges: list[tuple[int, int]] = []

    def sub(m: int, start: int, end: int, complete: bool) -> None:
        if m == end - start:
            if not complete:
                ranges.append((start, end))
            return
        k = _split(end - start)
        if m <= k:
            sub(m, start, start + k, complete)
            ranges.append((start + k, end))
        else:
            sub(m - k, start + k, end, False)
            ranges.append((start, start + k))

    sub(old_size, 0, size, True)
    return ranges


def frontier_ranges(size: int) -> list[tuple[int, int]]:
    """The leaf ranges of a :class:`Frontier`'s subtrees at ``size`` (largest first)."""
    ranges, start = [], 0
    for bit in range(size.bit_length() - 1, -1, -1):
        if size >> bit & 1:
            ranges.append((start, start + (1 << bit)))
            start += 1 << bit
    return ranges


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix (RFC 6962 §2.1.2)."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"no consistency proof from size {old_size} to {n}")

    def subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
        if m == end - start:
            return [] if complete else [_subtree_root(leaves, start, end)]
        k = _split(end - start)
        if m <= k:
            return [*subproof(m, start, start + k, complete), _subtree_root(leaves, start + k, end)]
        return [*subproof(m - k, start + k, end, False), _subtree_root(leaves, start, start + k)]

    return subproof(old_size, 0, n, True)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise IntegrityError(f"The {what} is {len(value)} bytes, not a SHA-256 hash.")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        raise IntegrityError(f"Leaf index {index} is outside a tree of size {size}.")
    _check_hash(leaf, "leaf hash")
    fn, sn = index, size - 1
    node = leaf
    for sibling in proof:
        _check_hash(sibling, "proof hash")
        if sn == 0:
            raise IntegrityError("The inclusion proof is longer than the tree is deep.")
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("The inclusion proof is shorter than the tree is deep.")
    return node


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Raise :class:`IntegrityError` unless ``leaf`` is at ``index`` in the tree."""
    _check_hash(expected_root, "root")
    if root_from_inclusion(index, size, leaf, proof) != expected_root:
        raise IntegrityError(f"Leaf {index} is not in the tree of size {size} with this root.")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`IntegrityError` unless the old tree is a prefix of the new one
    (RFC 9162 §2.1.4.2)."""
    if old_size < 1 or new_size < old_size:
        raise IntegrityError(f"No consistency proof from size {old_size} to {new_size}.")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise IntegrityError("Equal tree sizes need an empty proof and equal roots.")
        return
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for item in proof:
        _check_hash(item, "proof hash")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root starts the path
        path.insert(0, old_root)
    if not path:
        raise IntegrityError("The consistency proof is empty.")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for item in path[1:]:
        if sn == 0:
            raise IntegrityError("The consistency proof is too long.")
        if fn & 1 or fn == sn:
            fr = node_hash(item, fr)
            sr = node_hash(item, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, item)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("The consistency proof is too short.")
    if fr != old_root or sr != new_root:
        raise IntegrityError(
            f"The tree of size {new_size} does not extend the tree of size {old_size}."
        )
