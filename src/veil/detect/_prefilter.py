"""One pass over the input for all recognizers: a Hyperscan prefilter.

Every recognizer pattern is compiled into one Hyperscan database in prefilter mode (a
superset of what the pattern matches: look-arounds and back-references are relaxed) and
single-match mode. One scan of the input tells which recognizers can match at all; only
those run their Python pattern, which decides the findings. So findings are identical
with and without Hyperscan, and a text with nothing to find costs one scan.

Patterns are compiled in UTF-8 mode without Unicode properties, which is exactly Python's
``re.ASCII`` semantics on ``str``: ``\\w``, ``\\d`` and ``\\b`` are ASCII, while ``.`` and
negated classes consume whole code points.

Compiling takes about a second, so the database is cached (serialized, keyed by a hash of
the patterns) under ``$XDG_CACHE_HOME/veil`` (default ``~/.cache/veil``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from veil.detect._registry import CompiledRecognizer

log = logging.getLogger(__name__)

_hs: Any
try:  # optional: veil[fast]
    import hyperscan as _hs
except ImportError:  # pragma: no cover - exercised where hyperscan is absent
    _hs = None

_CACHE_VERSION = b"veil-prefilter-1"


_LARGE_REPEAT = re.compile(r"(?<!\\)\{(\d+),(\d+)\}")


def relax(pattern: str) -> str:
    """The pattern with large bounded repeats made unbounded (``{16,16384}`` → ``{16,}``).

    Hyperscan compiles large bounded repeats into huge automata; the unbounded form
    matches a superset, which is all a prefilter needs.
    """
    return _LARGE_REPEAT.sub(
        lambda m: m.group(0) if int(m.group(2)) <= 64 else f"{{{m.group(1)},}}", pattern
    )


def hyperscan_available() -> bool:
    return _hs is not None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "veil"


class Prefilter:
    """Which recognizers can match a text; ``None`` from :meth:`select` means "all"."""

    def __init__(self, recognizers: Sequence[CompiledRecognizer]) -> None:
        self._all = tuple(range(len(recognizers)))
        self._database: Any = None
        self._always: tuple[int, ...] = ()
        if _hs is None:
            return
        patterns = [relax(recognizer.spec.pattern).encode() for recognizer in recognizers]
        digest = hashlib.sha256(_CACHE_VERSION)
        for pattern in patterns:
            digest.update(pattern + b"\0")
        cache = _cache_dir() / f"prefilter-{digest.hexdigest()[:32]}.hsdb"
        loaded = self._load(cache)
        if loaded is None:
            loaded = self._compile(patterns)
            self._store(cache, *loaded)
        self._database, self._always = loaded
        # A deserialized database has no scratch space yet; scanning needs one.
        self._database.scratch = _hs.Scratch(self._database)

    @staticmethod
    def _flags() -> int:
        assert _hs is not None
        return int(
            _hs.HS_FLAG_PREFILTER
            | _hs.HS_FLAG_SINGLEMATCH
            | _hs.HS_FLAG_ALLOWEMPTY
            | _hs.HS_FLAG_UTF8
        )

    def _compile(self, patterns: list[bytes]) -> tuple[Any, tuple[int, ...]]:
        """The database of every pattern Hyperscan accepts; the rest always run."""
        assert _hs is not None
        ids, always = [], []
        for index, pattern in enumerate(patterns):
            single = _hs.Database(mode=_hs.HS_MODE_BLOCK)
            try:
                single.compile(expressions=[pattern], ids=[0], elements=1, flags=[self._flags()])
                ids.append(index)
            except _hs.error:
                always.append(index)
        database = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        database.compile(
            expressions=[patterns[i] for i in ids],
            ids=ids,
            elements=len(ids),
            flags=[self._flags()] * len(ids),
        )
        return database, tuple(always)

    @staticmethod
    def _load(cache: Path) -> tuple[Any, tuple[int, ...]] | None:
        assert _hs is not None
        try:
            raw = cache.read_bytes()
            header_length = int.from_bytes(raw[:4], "big")
            always = tuple(json.loads(raw[4 : 4 + header_length]))
            return _hs.loadb(raw[4 + header_length :], _hs.HS_MODE_BLOCK), always
        except (OSError, ValueError, _hs.error):
            return None

    @staticmethod
    def _store(cache: Path, database: Any, always: tuple[int, ...]) -> None:
        assert _hs is not None
        header = json.dumps(list(always)).encode()
        try:
            cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.NamedTemporaryFile(dir=cache.parent, delete=False) as handle:
                handle.write(len(header).to_bytes(4, "big") + header + _hs.dumpb(database))
            os.replace(handle.name, cache)
        except OSError as exc:  # a read-only home only costs start-up time
            log.debug("prefilter cache not written: %s", exc.strerror)

    @property
    def active(self) -> bool:
        return self._database is not None

    def select(self, text: str) -> tuple[int, ...] | None:
        if self._database is None:
            return None
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: not valid UTF-8, scan everything
            return None
        hits: set[int] = set(self._always)

        def on_match(ident: int, _start: int, _end: int, _flags: int, _ctx: Any) -> None:
            hits.add(ident)

        self._database.scan(data, match_event_handler=on_match)
        return tuple(sorted(hits))
