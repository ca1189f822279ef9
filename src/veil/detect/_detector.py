"""The detector: every recognizer over the input, validators on candidates, context
boosts, and one deterministic overlap resolution."""

from __future__ import annotations

import bisect
import codecs
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple, TextIO

from veil.config import phone_region_problem
from veil.detect._address_blocks import (
    extend_address_blocks,
    join_address_lines,
    join_inline_addresses,
)
from veil.detect._finding import Finding
from veil.detect._ner import NER_SPECIFICITY, NerRecognizer
from veil.detect._prefilter import Prefilter
from veil.detect._registry import (
    CompiledRecognizer,
    RecognizerSpec,
    builtin_public_values,
    builtin_specs,
    compile_recognizer,
    load_public_values,
    load_recognizer_file,
    merge_specs,
)
from veil.detect._validators import ValidatorOptions, Verdict
from veil.errors import InputError

CONTEXT_BEFORE = 48
CONTEXT_AFTER = 24
CONTEXT_BOOST = 0.35
VALIDATED_SCORE = 0.9
WEAK_PENALTY = 0.25
# Texts this long use windowed matching around the prefilter's match ends.
WINDOWED_MIN_CHARS = 16 << 10
# Texts this long search patterns with `keywords_within` from keyword to keyword (on
# shorter ones the jumps cost more than the positions they skip).
KEYWORD_JUMP_MIN_CHARS = 256
LOOKAROUND_MARGIN = 256
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class _Candidate(NamedTuple):
    # A tuple, not a frozen dataclass: one is built per candidate on the hot path.
    finding: Finding
    specificity: int

    def priority(self) -> tuple[int, int, float, int, int, str]:
        f = self.finding
        # Lower sorts first: validated, then specific, then score, then longer, then earlier.
        return (
            -int(f.validated),
            -self.specificity,
            -f.score,
            -(f.end - f.start),
            f.start,
            f.source,
        )


def resolve_overlaps(candidates: list[_Candidate]) -> list[Finding]:
    """Keep a set of non-overlapping findings, deterministically.

    Candidates are split into clusters of transitively overlapping spans; within a
    cluster the best by :meth:`_Candidate.priority` is kept first, then the next best
    that overlaps nothing kept, and so on.
    """
    if len(candidates) < 2:
        return [candidates[0].finding] if candidates else []
    candidates.sort(key=lambda c: (c.finding.start, c.finding.end))
    kept: list[Finding] = []
    cluster: list[_Candidate] = [candidates[0]]
    cluster_end = candidates[0].finding.end
    for candidate in candidates[1:]:
        if candidate.finding.start < cluster_end:
            cluster.append(candidate)
            cluster_end = max(cluster_end, candidate.finding.end)
            continue
        kept.extend(_resolve_cluster(cluster))
        cluster, cluster_end = [candidate], candidate.finding.end
    kept.extend(_resolve_cluster(cluster))
    return kept


def _resolve_cluster(cluster: list[_Candidate]) -> list[Finding]:
    if len(cluster) == 1:
        return [cluster[0].finding]
    chosen: list[Finding] = []
    for candidate in sorted(cluster, key=_Candidate.priority):
        f = candidate.finding
        if all(f.end <= other.start or f.start >= other.end for other in chosen):
            chosen.append(f)
    chosen.sort(key=lambda f: f.start)
    return chosen


class Detector:
    """Finds secrets and PII in text.

    >>> Detector().find("mail bob@example.com")[0].kind
    'EMAIL'

    ``recognizers`` replaces the built-in set; ``extra`` (specs or a YAML path) adds to it.
    ``kinds`` restricts output to those kinds. ``min_score`` drops weaker findings.
    ``address_blocks`` covers multi-line postal addresses whole (default: on with NER).
    ``public_values`` are exact published sample credentials never reported (default: the
    built-in list plus the ``public_values`` of an ``extra`` file).
    """

    def __init__(
        self,
        recognizers: Sequence[RecognizerSpec] | None = None,
        *,
        extra: Sequence[RecognizerSpec] | Path | None = None,
        kinds: Iterable[str] | None = None,
        min_score: float = 0.5,
        phone_region: str = "US",
        engine: Literal["auto", "python"] = "auto",
        ner: NerRecognizer | str | None = None,
        address_blocks: bool | None = None,
        public_values: Iterable[str] | None = None,
    ) -> None:
        specs = list(recognizers) if recognizers is not None else builtin_specs()
        if public_values is None:
            public = builtin_public_values()
            if isinstance(extra, Path):
                public |= load_public_values(extra)
            public_values = public
        self._public_values = frozenset(public_values)
        if isinstance(extra, Path):
            specs = merge_specs(specs, load_recognizer_file(extra))
        elif extra is not None:
            specs = merge_specs(specs, extra)
        else:
            specs = [spec for spec in specs if spec.enabled]
        wanted = set(kinds) if kinds is not None else None
        self._kinds = wanted
        if wanted is not None:
            specs = [spec for spec in specs if spec.kind in wanted]
        self._specs = tuple(specs)
        self._compiled = tuple(compile_recognizer(spec) for spec in specs)
        self._min_score = min_score
        problem = phone_region_problem(phone_region)
        if problem is not None:
            raise InputError(
                f"The phone region {phone_region!r} {problem}.",
                hint="Set VEIL_PHONE_REGION (or --region) to an ISO 3166 code such as US, "
                "GB or DE.",
            )
        self._phone_region = phone_region
        self._options = ValidatorOptions(phone_region=phone_region)
        self._engine = engine
        self._prefilter = Prefilter(self._compiled) if engine == "auto" else None
        self._ner = NerRecognizer(ner) if isinstance(ner, str) else ner
        # Multi-line postal addresses covered whole (see _address_blocks): on by default
        # with NER, the thorough mode, where it costs nothing next to the model; off by
        # default without it, where it would add ~2.5 µs to every short text with lines.
        self._address_blocks = self._ner is not None if address_blocks is None else address_blocks

    @property
    def engine(self) -> str:
        """``hyperscan`` when the one-pass prefilter is active, else ``python``."""
        return "hyperscan" if self._prefilter is not None and self._prefilter.active else "python"

    @property
    def recognizers(self) -> tuple[RecognizerSpec, ...]:
        return self._specs

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds this detector's pattern recognizers report (NER adds only catalog
        kinds: PERSON, LOCATION, ORGANIZATION, DATE)."""
        return frozenset(spec.kind for spec in self._specs)

    def __repr__(self) -> str:
        return f"Detector(recognizers={len(self._compiled)}, min_score={self._min_score})"

    def __reduce__(self) -> tuple[object, ...]:
        # Compiled patterns stay out of pickles; a worker recompiles from the specs.
        return (
            _rebuild,
            (
                self._specs,
                self._min_score,
                self._phone_region,
                self._engine,
                self._ner,
                self._address_blocks,
                self._public_values,
            ),
        )

    @property
    def ner(self) -> NerRecognizer | None:
        return self._ner

    def find(self, text: str) -> list[Finding]:
        """Every finding in ``text``, non-overlapping, sorted by start offset."""
        if not isinstance(text, str):
            raise InputError(
                f"find() takes text (str), not {type(text).__name__}.",
                hint="Decode bytes first; scan_stream() reads binary streams.",
            )
        if not text:
            return []
        candidates = self._pattern_candidates(text)
        if self._ner is not None:
            candidates.extend(self._ner_candidates(self._ner.find(text)))
        return self._blocks(text, resolve_overlaps(candidates))

    def _blocks(self, text: str, findings: list[Finding]) -> list[Finding]:
        if not self._address_blocks:
            return findings
        blocks = extend_address_blocks(text, join_address_lines(text, findings))
        return join_inline_addresses(text, blocks)

    def _ner_candidates(self, findings: list[Finding]) -> Iterator[_Candidate]:
        for finding in findings:
            if finding.score >= self._min_score and (
                self._kinds is None or finding.kind in self._kinds
            ):
                yield _Candidate(finding, NER_SPECIFICITY)

    def _pattern_candidates(self, text: str) -> list[_Candidate]:
        if len(text) >= WINDOWED_MIN_CHARS and self._prefilter is not None:
            windowed = self._windowed_candidates(text)
            if windowed is not None:
                return windowed
        selected = self._prefilter.select(text) if self._prefilter is not None else None
        candidates: list[_Candidate] = []
        if not selected and selected is not None:
            return candidates  # the prefilter ruled every recognizer out: nothing to find
        lowered = _Lowered(text)
        if selected is None:
            # No one-pass prefilter: keywords (as in gitleaks) skip recognizers cheaply.
            recognizers = [
                r
                for r in self._compiled
                if not r.spec.keywords or any(word in lowered.text for word in r.spec.keywords)
            ]
        else:
            compiled = self._compiled
            recognizers = [compiled[i] for i in selected]
        for recognizer in recognizers:
            self._candidates(candidates, recognizer, text, lowered)
        return candidates

    def _windowed_candidates(self, text: str) -> list[_Candidate] | None:
        """Long texts: each recognizer's pattern runs only around the match ends that the
        Hyperscan pass reported, and gives exactly the matches a full scan would."""
        assert self._prefilter is not None
        if not self._prefilter.active:
            return None
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return None
        ends, always = self._prefilter.match_ends(data)
        to_char = _byte_to_char_offsets(text, data)
        lowered = _Lowered(text)
        candidates: list[_Candidate] = []
        for index in sorted({*ends, *always}):
            recognizer = self._compiled[index]
            width = recognizer.max_width
            if index in always or width is None:
                self._candidates(candidates, recognizer, text, lowered)
                continue
            ranges = _merge_windows([to_char(end) for end in ends[index]], width)
            matches = _windowed_matches(recognizer, text, ranges, width)
            self._candidates(candidates, recognizer, text, lowered, matches)
        return candidates

    def _candidates(
        self,
        out: list[_Candidate],
        recognizer: CompiledRecognizer,
        text: str,
        lowered: _Lowered,
        matches: Iterable[re.Match[str] | _Part] | None = None,
        group: int | str | tuple[int, ...] | None = None,
    ) -> None:
        """Append ``recognizer``'s candidates in ``text`` to ``out`` (a list, not a
        generator: this runs for every selected recognizer of every text)."""
        # Locals: this loop runs for every candidate of every text.
        (
            spec_group,
            validator,
            context,
            context_required,
            context_words,
            base_score,
            kind,
            level,
            source,
            specificity,
        ) = recognizer.loop
        if group is None:
            group = spec_group
        options, min_score, public = self._options, self._min_score, self._public_values
        if (
            context is not None
            and context_required
            and not _has_whole_word(lowered.text, context_words)
        ):
            return  # no context word anywhere in the text: nothing can be reported
        if matches is None:
            if recognizer.keyword_regex is not None and len(text) >= KEYWORD_JUMP_MIN_CHARS:
                # Every match has a keyword near its start (the e-mail pattern its `@`):
                # the search jumps from keyword to keyword instead of trying the pattern
                # at every position (the same matches; 23 -> ~3 us for e-mail on 1 KB).
                matches = _windowed_matches(recognizer, text, [(0, len(text))], 0)
            else:
                matches = recognizer.regex.finditer(text)
        if isinstance(group, tuple):  # several parts of each match, each a finding
            parts = [_Part(m, g) for m in matches for g in group if m.start(g) < m.end(g)]
            self._candidates(out, recognizer, text, lowered, parts, 0)
            return
        for match in matches:
            if group == "first":
                index = next((i for i, g in enumerate(match.groups(), 1) if g is not None), 0)
                start, end = match.span(index)
            else:
                start, end = match.span(group)
            if start >= end:
                continue
            score, validated = base_score, False
            if validator is not None:
                verdict = validator(text[start:end], options)
                if verdict is Verdict.REJECT:
                    continue
                if verdict is Verdict.VALID:
                    validated, score = True, max(score, VALIDATED_SCORE)
                elif verdict is Verdict.WEAK:
                    score -= WEAK_PENALTY
            if context is not None:
                if _context_near(context, lowered.text, match.start(), end):
                    score = min(1.0, score + CONTEXT_BOOST)
                elif context_required:
                    continue
            if score < min_score:
                continue
            if public and text[start:end] in public:
                continue  # a published sample key (SDK tests, vendor docs): not a secret
            finding = Finding(start, end, kind, score, level, source, validated)
            out.append(_Candidate(finding, specificity))

    def find_many(
        self, texts: Sequence[str], *, workers: int = 1, batch_size: int = 256
    ) -> list[list[Finding]]:
        """Findings for each text; ``workers > 1`` spreads batches over processes (each
        loads the engine, and the NER model when one is configured, once)."""
        if workers > 1 and len(texts) > batch_size:
            batches = [list(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = pool.map(_find_batch, [self] * len(batches), batches)
                return [findings for batch in results for findings in batch]
        if self._ner is not None:
            # spaCy batches documents itself (nlp.pipe), which is where NER time goes.
            entities = self._ner.find_many(texts)
            return [
                self._blocks(
                    text,
                    resolve_overlaps(
                        [*self._pattern_candidates(text), *self._ner_candidates(found)]
                    ),
                )
                if text
                else []
                for text, found in zip(texts, entities, strict=True)
            ]
        return [self.find(text) for text in texts]

    def scan_stream(
        self,
        stream: BinaryIO | TextIO | io.IOBase,
        *,
        chunk_chars: int = 1 << 20,
        overlap: int = 16 << 10,
        encoding: str = "utf-8",
    ) -> Iterator[Finding]:
        """Findings in a text or binary stream, in constant memory.

        The input is read in chunks; each window overlaps the next by ``overlap``
        characters, so a value split across a chunk boundary is found, and found once
        (a finding belongs to the window in which it starts). Values longer than
        ``overlap`` may be cut. Offsets count characters from the start of the stream.
        """
        if overlap * 2 >= chunk_chars:
            raise InputError("scan_stream: overlap must be less than half of chunk_chars.")
        margin = CONTEXT_BEFORE + 64  # look-behind and context words before a value
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        buffer = ""
        buffer_start = 0  # stream offset of buffer[0]
        report_from = 0  # findings starting before this were reported already
        eof = False
        while not eof:
            raw = stream.read(chunk_chars)
            if not raw:
                eof = True
                buffer += decoder.decode(b"", final=True)
            elif isinstance(raw, bytes):
                buffer += decoder.decode(raw)
            elif isinstance(raw, str):
                buffer += raw
            else:
                raise InputError("scan_stream needs a text or binary file object.")
            if not eof and len(buffer) < chunk_chars + overlap:
                continue
            cut = buffer_start + len(buffer) if eof else buffer_start + len(buffer) - overlap
            for finding in self.find(buffer):
                absolute = finding.shifted(buffer_start)
                if report_from <= absolute.start < cut:
                    yield absolute
            report_from = cut
            keep_from = max(0, cut - margin - buffer_start)
            buffer = buffer[keep_from:]
            buffer_start += keep_from


def _byte_to_char_offsets(text: str, data: bytes) -> Callable[[int], int]:
    """Map UTF-8 byte offsets (at character boundaries) to ``str`` offsets."""
    if len(data) == len(text):
        return int
    starts: list[int] = []  # byte offset of each non-ASCII character
    extras: list[int] = []  # extra bytes of all non-ASCII characters up to and including it
    extra = 0
    for match in _NON_ASCII.finditer(text):
        starts.append(match.start() + extra)
        extra += len(match.group().encode("utf-8")) - 1
        extras.append(extra)

    def convert(byte_offset: int) -> int:
        before = bisect.bisect_left(starts, byte_offset)
        return byte_offset - (extras[before - 1] if before else 0)

    return convert


class _Part:
    """One group of a match, read by the candidate loop as a match of its own (its
    context window still starts where the whole match starts)."""

    __slots__ = ("_span", "_start")

    def __init__(self, match: re.Match[str] | _Part, group: int) -> None:
        self._span = match.span(group)
        self._start = match.start()

    def span(self, _group: int | str = 0) -> tuple[int, int]:
        return self._span

    def start(self, _group: int | str = 0) -> int:
        return self._start

    def end(self, _group: int | str = 0) -> int:
        return self._span[1]

    def groups(self) -> tuple[str | None, ...]:
        return ()


class _Lowered:
    """A text in lower case, computed on first use and shared by the recognizers that
    look for context words; always as long as the text, so positions carry over."""

    __slots__ = ("_lowered", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._lowered: str | None = None

    @property
    def text(self) -> str:
        if self._lowered is None:
            lowered = self._text.lower()
            if len(lowered) != len(self._text):  # "İ" lowers to two characters
                lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in self._text)
            self._lowered = lowered
        return self._lowered


_WORD_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def _has_whole_word(lowered: str, words: Iterable[str]) -> bool:
    """Whether any of ``words`` occurs in ``lowered`` with no letter or digit on either
    side: what a context pattern would find, by substring search."""
    size = len(lowered)
    for word in words:
        at = lowered.find(word)
        while at >= 0:
            after = at + len(word)
            if (at == 0 or lowered[at - 1] not in _WORD_CHARACTERS) and (
                after == size or lowered[after] not in _WORD_CHARACTERS
            ):
                return True
            at = lowered.find(word, at + 1)
    return False


def _context_near(context: re.Pattern[str], lowered: str, start: int, end: int) -> bool:
    """Whether a context word lies within the ``CONTEXT_BEFORE`` characters before
    ``start`` or the ``CONTEXT_AFTER`` after ``end``, as a whole word of the (lowercased)
    text: each search sees one character past its range and the characters before it,
    so a word cut by a range's edge (``hotel`` cut to ``tel``) does not count. Every hit
    is therefore one that a search of the whole text finds too, which lets a
    ``context_required`` recognizer skip a text that has no context word at all."""
    for low, high in ((max(0, start - CONTEXT_BEFORE), start), (end, end + CONTEXT_AFTER)):
        hit = context.search(lowered, low, high + 1)
        # A hit running past the range may hide a shorter one inside it ("date of
        # birth" and "birth"): look again from the next character.
        while hit is not None and hit.end() > high:
            hit = context.search(lowered, hit.start() + 1, high + 1)
        if hit is not None:
            return True
    return False


def _merge_windows(ends: list[int], width: int) -> list[tuple[int, int]]:
    """Ranges ``[end - width, end]`` around every possible match end, merged."""
    ranges: list[tuple[int, int]] = []
    for end in sorted(ends):
        start = max(0, end - width)
        if ranges and start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], end))
        else:
            ranges.append((start, end))
    return ranges


def _windowed_matches(
    recognizer: CompiledRecognizer, text: str, ranges: list[tuple[int, int]], width: int
) -> Iterator[re.Match[str]]:
    """The matches ``regex.finditer(text)`` would give, searching only in ``ranges``.

    Every full-scan match starts inside the range around its own end, so searching each
    range from ``max(range start, previous match end)`` and keeping matches that start
    inside the range reproduces the leftmost, non-overlapping sequence. The search may
    look ``width + LOOKAROUND_MARGIN`` past a range so matches and look-aheads are whole.

    With ``keywords_within`` (every match has a keyword at most that far after its
    start), each search starts that far before the next keyword instead: no match can
    start earlier, and the positions skipped are those the search would have tried in
    vain (on long key-value values, most of a 600-character window).
    """
    regex, keyword, reach = recognizer.regex, recognizer.keyword_regex, recognizer.keywords_within
    # A keyword of a match that starts by a range's end begins by ``stop + reach``.
    reach_end = reach + max(map(len, recognizer.spec.keywords), default=0)
    last_end = 0
    length = len(text)
    for start, stop in ranges:
        position = max(start, last_end)
        endpos = min(length, stop + width + LOOKAROUND_MARGIN)
        while position <= stop:
            if keyword is not None:
                hit = keyword.search(text, position, min(length, stop + reach_end))
                if hit is None or hit.start() > stop + reach:
                    break
                position = max(position, hit.start() - reach)
            match = regex.search(text, position, endpos)
            if match is None or match.start() > stop:
                break
            yield match
            last_end = match.end()
            position = last_end if match.end() > match.start() else last_end + 1


def _rebuild(
    specs: tuple[RecognizerSpec, ...],
    min_score: float,
    region: str,
    engine: Literal["auto", "python"],
    ner: NerRecognizer | None,
    address_blocks: bool,
    public_values: frozenset[str],
) -> Detector:
    return Detector(
        list(specs),
        min_score=min_score,
        phone_region=region,
        engine=engine,
        ner=ner,
        address_blocks=address_blocks,
        public_values=public_values,
    )


def _find_batch(detector: Detector, texts: list[str]) -> list[list[Finding]]:
    return detector.find_many(texts)
