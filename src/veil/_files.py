"""Atomic file writes: a crash mid-write leaves the previous file intact."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600, sync: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk (unless
    ``sync`` is False: readers still never see a partial file, but a power cut may lose
    it), set ``mode``, then rename it over ``path`` (atomic on POSIX)."""
    with atomic_writer(path, mode=mode, sync=sync) as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic_writer(
    path: Path, *, mode: int = 0o600, sync: bool = True, replace: bool = True
) -> Iterator[BinaryIO]:
    """:func:`write_atomically` for content written piece by piece: the file handed out
    is a temporary one beside ``path``, renamed over it only when the block ends without
    an exception (and removed when it raises). With ``replace`` False an existing
    ``path`` is never replaced: :class:`FileExistsError` instead, even when the file
    appeared while the block ran."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails when path exists, unlike a rename
            os.unlink(temporary)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for a read-modify-write of ``path`` across processes.

    The lock is an OS advisory lock on a companion file (``.NAME.lock`` beside ``path``),
    not on ``path`` itself: :func:`write_atomically` replaces ``path`` with a new file, and
    a lock on the old one would no longer exclude anybody. Released when the block ends,
    and by the OS if the process dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:  # pragma: no cover - Windows
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # retries for 10 s itself
                    break
                except OSError:
                    continue
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
