"""Atomic writes and the cross-process lock used for read-modify-write of files."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from veil._files import atomic_writer, exclusive, write_atomically


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "segment.jsonl"
    write_atomically(target, b"old\n")

    def write_then_fail() -> None:
        with atomic_writer(target) as handle:
            handle.write(b"new, half written")
            raise RuntimeError("the checks failed")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".segment")] == []


def test_a_streamed_write_replaces_the_file_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "segment.jsonl"
    with atomic_writer(target, mode=0o600) as handle:
        for n in range(3):
            handle.write(f"{n}\n".encode())
    assert target.read_bytes() == b"0\n1\n2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_write_that_must_not_replace_fails_when_the_file_appeared_meanwhile(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "archive"
    path = folder / "segment.jsonl"
    writer = atomic_writer(path, replace=False)
    handle = writer.__enter__()
    handle.write(b"new segment")
    path.write_bytes(b"earlier segment")  # another process, while this one wrote
    with pytest.raises(FileExistsError):
        writer.__exit__(None, None, None)
    assert path.read_bytes() == b"earlier segment"
    assert [p.name for p in folder.iterdir()] == ["segment.jsonl"]  # no temporary left
    with atomic_writer(folder / "fresh.jsonl", replace=False) as handle:
        handle.write(b"data")
    assert (folder / "fresh.jsonl").read_bytes() == b"data"


def test_exclusive_makes_another_process_wait(tmp_path: Path) -> None:
    target = tmp_path / "conv.map"
    waiter = (
        "import sys, time; from pathlib import Path; from veil._files import exclusive\n"
        "with exclusive(Path(sys.argv[1])): print(time.time(), flush=True)\n"
    )
    with exclusive(target):
        process = subprocess.Popen(
            [sys.executable, "-c", waiter, str(target)], stdout=subprocess.PIPE, text=True
        )
        time.sleep(1.0)
        released = time.time()
    assert process.stdout is not None
    entered = float(process.stdout.read())
    assert process.wait(timeout=30) == 0
    assert entered >= released  # it got the lock only after this process let it go
