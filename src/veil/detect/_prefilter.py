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
import threading
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

_CACHE_VERSION = b"veil-prefilter-2"


_LARGE_REPEAT = re.compile(r"(?<!\\)\{(\d+),(\d+)\}")


# Bounded repeats wider than this become unbounded. Each bounded repeat is a counter in
# Hyperscan's automaton; at 64 the scan of a 1 KB prompt took 16.7 µs, at 16 it takes
# 5.8 µs (2.8 → 1.8 µs per short text) and selects the same recognizers on the benchmark
# texts; lower thresholds select more without scanning faster.
_REPEAT_LIMIT = 16


# A negative look-behind for one character class at the very start of a pattern (after
# its global flags): `(?<![\w.-])`, the usual "not inside a longer token" guard.
_LEADING_LOOKBEHIND = re.compile(r"^(\(\?[aiLmsux]+\))?\(\?<!\[(?!\^)((?:\\.|[^\]\\])+)\]\)")
# Only patterns up to this length get that character: on the 1,700-character pattern of
# ~70 vendor token prefixes, Hyperscan's prefilter approximation with the character in
# front matched nearly every position of the benchmark text (it matched none without).
_LOOKBEHIND_MAX_PATTERN = 600


def relax(pattern: str) -> str:
    r"""The pattern as the prefilter compiles it.

    Large bounded repeats become unbounded (``{1,64}`` → ``{1,}``): Hyperscan compiles
    them into large automata, and the unbounded form matches a superset, which is all a
    prefilter needs. A leading look-behind for one character class becomes that
    character itself (``(?<![\w.-])X`` → ``(?:^|[^\w.-])X``): prefilter mode would drop
    the look-behind, and then every timestamp's ``10:48:00`` could be an IPv6 address
    and every digit run inside a longer number a phone number. Both forms match at the
    same ends, which is what the windowed matching reads.
    """
    relaxed = _LARGE_REPEAT.sub(
        lambda m: m.group(0) if int(m.group(2)) <= _REPEAT_LIMIT else f"{{{m.group(1)},}}",
        pattern,
    )
    lead = _LEADING_LOOKBEHIND.match(relaxed)
    if lead is None or len(relaxed) > _LOOKBEHIND_MAX_PATTERN:
        return relaxed
    return f"{lead.group(1) or ''}(?:^|[^{lead.group(2)}]){relaxed[lead.end() :]}"


def hyperscan_available() -> bool:
    return _hs is not None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "veil"


def _collect(ident: int, _start: int, _end: int, _flags: int, hits: list[int]) -> None:
    """Hyperscan's match callback in single-match mode: one call per recognizer."""
    hits.append(ident)


class Prefilter:
    """Which recognizers can match a text, and where their matches can end.

    Two databases over the same (relaxed) patterns: single-match mode answers "which
    recognizers" for short texts; all-matches mode gives every possible match end, so
    on long texts a recognizer's Python pattern runs only in windows around them.
    """

    def __init__(self, recognizers: Sequence[CompiledRecognizer]) -> None:
        self._database: Any = None
        self._all_matches: Any = None
        # Hyperscan scratch space is per thread: one scan at a time may use it.
        self._local = threading.local()
        self._lock = threading.Lock()
        self._always: tuple[int, ...] = ()
        if _hs is None:
            return
        self._patterns = [relax(recognizer.spec.pattern).encode() for recognizer in recognizers]
        digest = hashlib.sha256(_CACHE_VERSION)
        for pattern in self._patterns:
            digest.update(pattern + b"\0")
        self._digest = digest.hexdigest()[:32]
        self._database, self._always = self._open(single=True)

    def _open(self, *, single: bool) -> tuple[Any, tuple[int, ...]]:
        assert _hs is not None
        mode = "single" if single else "all"
        cache = _cache_dir() / f"prefilter-{self._digest}-{mode}.hsdb"
        loaded = self._load(cache)
        if loaded is None:
            loaded = self._compile(self._patterns, single=single)
            self._store(cache, *loaded)
        database, always = loaded
        # A deserialized database has no scratch space yet; scanning needs one.
        database.scratch = _hs.Scratch(database)
        return database, always

    @staticmethod
    def _flags(*, single: bool) -> int:
        assert _hs is not None
        flags = _hs.HS_FLAG_PREFILTER | _hs.HS_FLAG_ALLOWEMPTY | _hs.HS_FLAG_UTF8
        return int(flags | _hs.HS_FLAG_SINGLEMATCH) if single else int(flags)

    def _compile(self, patterns: list[bytes], *, single: bool) -> tuple[Any, tuple[int, ...]]:
        """The database of every pattern Hyperscan accepts; the rest always run."""
        assert _hs is not None
        flags = self._flags(single=single)
        ids, always = [], []
        for index, pattern in enumerate(patterns):
            probe = _hs.Database(mode=_hs.HS_MODE_BLOCK)
            try:
                probe.compile(expressions=[pattern], ids=[0], elements=1, flags=[flags])
                ids.append(index)
            except _hs.error:
                always.append(index)
        database = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        database.compile(
            expressions=[patterns[i] for i in ids],
            ids=ids,
            elements=len(ids),
            flags=[flags] * len(ids),
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
        # Single-match mode reports each recognizer at most once, so a list is enough.
        hits: list[int] = list(self._always)
        scratch = getattr(self._local, "single", None) or self._scratch("single")
        self._database.scan(data, _collect, 0, hits, scratch)
        return tuple(hits)

    def _scratch(self, which: str) -> Any:
        assert _hs is not None
        scratch = getattr(self._local, which, None)
        if scratch is None:
            database = self._database if which == "single" else self._all_matches
            scratch = _hs.Scratch(database)
            setattr(self._local, which, scratch)
        return scratch

    def match_ends(self, data: bytes) -> tuple[dict[int, list[int]], tuple[int, ...]]:
        """Every possible match end (byte offset) per recognizer, and the recognizers that
        Hyperscan could not compile (those must scan the whole text)."""
        if self._all_matches is None:
            with self._lock:
                if self._all_matches is None:
                    self._all_matches, _ = self._open(single=False)
        ends: dict[int, list[int]] = {}

        def on_match(ident: int, _start: int, end: int, _flags: int, _ctx: Any) -> None:
            bucket = ends.get(ident)
            if bucket is None:
                ends[ident] = [end]
            elif bucket[-1] != end:
                bucket.append(end)

        self._all_matches.scan(data, match_event_handler=on_match, scratch=self._scratch("all"))
        return ends, self._always
