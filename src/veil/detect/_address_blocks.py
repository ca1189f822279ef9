"""Postal addresses written over several lines, covered line by line.

Recognizers find the pieces of an address that have a shape of their own (the street line,
"Apt. 391", a country), but a letter, an e-mail signature or a shipping label writes the
address as a block, and the city line ("SANDEFJORD"), the postcode line ("Norway 66455")
or the building number above a street line would be left in clear. When a LOCATION
finding sits in such a block, the block's lines are covered — only lines shaped like
address lines, at most a few of them, stopping at a blank line or at a line with a finding
of another kind: the LOCATION pieces found in them stay, and the rest of each line becomes
a LOCATION finding of its own. An address on one line with commas (street parts, a place, a country)
becomes one LOCATION (:func:`join_address_lines`), and so does an address a sentence or an
"Address:" label leads into and that goes on over the following lines
(:func:`join_inline_addresses`).
"""

from __future__ import annotations

import bisect
import re

from veil.detect._finding import Finding
from veil.detect._spans import Spans as _Spans

_MAX_LINES_BELOW = 4
_MAX_LINES_ABOVE = 2
_MAX_LINE = 60
# The found piece must be most of its line: ", Klirou" or " Suite 838" may follow it, a
# sentence may not.
_MAX_REST = 12
# Leading indentation, e-mail quote marks, and list bullets ("- ", "• ", "??? ": a bullet
# that lost its encoding).
_QUOTE = re.compile(r"(?:[ \t>]|[?•·*-]+(?=[ \t]))*")
_BETWEEN = frozenset(" \t\r>,;")  # around the pieces of an address line

_LETTER = r"[^\W\d_]"
_PARTICLES = r"de|del|de la|la|le|les|van|von|der|den|da|di|du|do|dos|das|y|u|am|an|im|upon|on"
_WORD = rf"{_LETTER}[^\W\d_'’.-]*(?:[.'’-]{_LETTER}+)*\.?"
# unit: "Apt. 391", "Suite 343", "PO Box 12"
_UNIT = re.compile(
    r"(?i:apt|apartment|suite|ste|unit|flat|floor|fl|p\.?\s?o\.?\s?box|box)\.?\s{0,2}#?\s?\d{1,5}"
)
# a city or country with a postcode: "Norway 66455", "Dusino San Michele, AT 31295"
_PLACE_AND_POSTCODE = re.compile(
    rf"{_WORD}(?:[ -]{_WORD}){{0,4}},?\s{{1,3}}(?:[A-Z]{{2,3}}\s{{1,3}})?"
    r"\d{3,6}(?:-\d{3,4})?"
)
# a city or country alone: capitalized words, with the particles of place names
# ("Pärnu", "BASHALL TOWN", "Chiclana de la Frontera")
_PLACE = re.compile(
    rf"(?=[^\W\d_a-z]){_WORD}(?:[ -](?:(?:{_PARTICLES})[ -])*(?=[^\W\d_a-z]){_WORD}){{0,3}}"
)
_LINE_SHAPES = (
    _UNIT,
    _PLACE_AND_POSTCODE,
    re.compile(rf"\d{{4,6}}\s{{1,3}}{_WORD}(?:[ -]{_WORD}){{0,3}}"),  # "75001 Paris"
    _PLACE,
    re.compile(r",?\s?[A-Z]{2,3}"),  # a region: ", VIC", "ON"
    re.compile(r"\d{4,6}(?:-\d{3,4})?"),  # a postcode alone
)
# A street line above the found piece: a number and a name ("077 Mellemstræde 74").
_STREET_LINE = re.compile(
    rf"\d{{1,6}}\s{{1,3}}{_WORD}(?:\s{{1,3}}(?:{_WORD}|\d{{1,5}}\w?)){{0,5}}[.,]?"
)


# An address written on one line, its parts separated by commas: the street (with units
# and a house number after the street pattern's match), a place, then a country and its
# postcode ("760 Passauer Strasse 33, Cite Guedouala, Tunisia"; "3911 Fourth Avenue Suite
# 697, Mora de Rubielos, Spain 16200").
_PLACE_BEFORE_COUNTRY = re.compile(rf"(?:,[ \t]*|[ \t]+){_PLACE.pattern}(?:,[ \t]*|[ \t]+)$")
_HOUSE_NUMBER = re.compile(r"[ \t]+\d{1,5}[A-Za-z]?")
_POSTCODE_AFTER = re.compile(r"[ \t]+\d{3,6}(?:-\d{3,4})?\b")
_STREETS = frozenset({"street-address", "residence-street"})
# How far back the place before a country, or a street line before a street part, can
# start: longer than any place name or street line.
_REACH = 200
_STREET_PARTS = _STREETS | {"unit-designator"}
_STREET_BEFORE = re.compile(
    rf"(?<![\w-])\d{{1,6}}[ \t]+(?:(?:\d{{1,6}}[ \t]+)?(?:(?=[^\W\d_a-z]){_WORD}[ \t]+){{1,4}}"
    r"\d{1,5}[A-Za-z]?[ \t]+)?$"
)
_CITY_AFTER = re.compile(rf",[ \t]*({_PLACE.pattern})(?=[ \t]*(?:[.;!?]|$|\n))")
_POSTCODE_LINE_END = re.compile(r"[ \t]+(\d{3,6}(?:-\d{3,4})?)[ \t]*(?:\n|$)")
# A block line of two parts: a building number before a street that has its own house
# number ("28030 Edeby 55"), or a place and its postcode ("Greenlander 07609").
_PARTS = re.compile(
    rf"(\d{{1,6}})[ \t]+((?=[^\W\d_]){_WORD}(?:[ \t]+{_WORD}){{0,4}}[ \t]+\d{{1,5}}[A-Za-z]?\.?)"
    rf"|({_PLACE.pattern})[ \t]+(\d{{3,6}}(?:-\d{{3,4}})?)"
)


class _Lines:
    """Where the line around a position starts and ends, by bisection in the text's line
    breaks (``rfind``/``find`` per finding read a long line again and again)."""

    __slots__ = ("_breaks", "_size")

    def __init__(self, text: str) -> None:
        self._breaks = [match.start() for match in _NEWLINE.finditer(text)]
        self._size = len(text)

    def start(self, position: int) -> int:
        """``text.rfind("\\n", 0, position) + 1``."""
        index = bisect.bisect_left(self._breaks, position)
        return self._breaks[index - 1] + 1 if index else 0

    def end(self, position: int) -> int:
        """``text.find("\\n", position)``, or the text's length when there is none."""
        index = bisect.bisect_left(self._breaks, position)
        return self._breaks[index] if index < len(self._breaks) else self._size


_NEWLINE = re.compile("\n")


def join_address_lines(text: str, findings: list[Finding]) -> list[Finding]:
    """``findings`` with each one-line address (street parts, a place, a country) made one
    LOCATION from its first street part to the country and its postcode; the place after a
    street line that ends a sentence or line ("Dunajska 56, Studenec") and the postcode
    after a country that ends a line ("Spain 61709") LOCATIONs of their own."""
    joined: list[tuple[int, int, Finding]] = []
    postcodes: list[tuple[int, int, Finding]] = []
    rows = _Lines(text)
    for index, country in enumerate(findings):
        if country.source != "country":
            continue
        line_start = rows.start(country.start)
        # A search ending at the country, started at most _REACH characters before it:
        # from the line's start it was quadratic on a long line with many countries.
        reach = max(line_start, country.start - _REACH)
        place = _PLACE_BEFORE_COUNTRY.search(text, reach, country.start)
        if place is None:
            # An address's last line, "Spain 61709": its postcode is a part of its own.
            postcode = _POSTCODE_LINE_END.match(text, country.end)
            if postcode is not None:
                postcodes.append((*postcode.span(1), country))
            continue
        cursor = place.start()
        first = None
        for back in range(index - 1, -1, -1):
            part = findings[back]
            if part.start >= cursor and first is None:
                continue  # a finding in the place name (the model's): covered below
            gap = text[part.end : cursor]
            if not (
                line_start <= part.start
                and part.end <= cursor
                and part.kind == "LOCATION"
                and part.source in _STREET_PARTS
                # blanks, or the house number after the last part ("Strasse 33")
                and (not gap.strip(" \t") or (first is None and _HOUSE_NUMBER.fullmatch(gap)))
            ):
                break
            first, cursor = part, part.start
        if first is None:
            continue
        # What precedes the first recognized part on the line, when it is the building
        # number or a street line the patterns did not know ("213 Pilekrogen 53", "0912"
        # before "P.O. Box 287"): part of the same address.
        lead = _STREET_BEFORE.search(text, max(line_start, first.start - _REACH), first.start)
        start = lead.start() if lead is not None else first.start
        end = country.end
        postcode = _POSTCODE_AFTER.match(text, end)
        if postcode is not None:
            end = postcode.end()
        joined.append((start, end, country))
    # "Dunajska 56, Studenec": a street line and its place, ending the sentence or line.
    cities: list[tuple[int, int, Finding]] = []
    for street in findings:
        if street.source in _STREETS:
            city = _CITY_AFTER.match(text, street.end)
            if city is not None:
                start, end = city.span(1)
                end -= text[end - 1] == "."  # the sentence's period, not the place's
                cities.append((start, end, street))
    if not joined and not postcodes and not cities:
        return findings
    whole = _Spans([(a, b) for a, b, _ in joined])
    kept = [f for f in findings if not whole.contains(f.start, f.end)]
    for start, end, country in joined:
        kept.append(Finding(start, end, "LOCATION", country.score, country.level, "address-line"))
    kept.sort(key=lambda f: f.start)
    spans = _Spans([(f.start, f.end) for f in kept])
    dropped: set[int] = set()
    added: list[Finding] = []  # in text order: the streets are
    for start, end, street in cities:
        near = [i for i in spans.hits(start, end) if spans.overlaps(i, start, end)]
        near = [i for i in near if i not in dropped]
        # the place's own finding (a LOCATION) stays; a model's other guess gives way
        if any(kept[i].kind == "LOCATION" for i in near) or (added and added[-1].end > start):
            continue
        dropped.update(i for i in near if kept[i].source == "ner")
        if all(i in dropped for i in near):
            added.append(
                Finding(start, end, "LOCATION", street.score, street.level, "address-line")
            )
    kept = [f for i, f in enumerate(kept) if i not in dropped]
    taken = _Spans([(f.start, f.end) for f in sorted([*kept, *added], key=lambda f: f.start)])
    for start, end, country in postcodes:
        if not taken.any(start, end):
            added.append(
                Finding(start, end, "LOCATION", country.score, country.level, "address-line")
            )
    return sorted([*kept, *added], key=lambda f: f.start)


def _parts(text: str, begin: int, end: int) -> list[tuple[int, int]]:
    """The parts of the block line ``text[begin:end]`` (see ``_PARTS``)."""
    parts = _PARTS.fullmatch(text, begin, end)
    if parts is None:
        return [(begin, end)]
    first = 1 if parts.start(1) != -1 else 3
    return [parts.span(first), parts.span(first + 1)]


def _content(text: str, start: int, end: int) -> tuple[int, int]:
    """The line ``text[start:end]`` without its indentation, quote marks and trailing space."""
    lead = _QUOTE.match(text, start, end)
    begin = lead.end() if lead else start
    while end > begin and text[end - 1] in " \t\r":
        end -= 1
    return begin, end


# All the shapes in one pattern: one match per line instead of one per shape.
_ANY_SHAPE = re.compile("|".join(f"(?:{shape.pattern})" for shape in _LINE_SHAPES))


def _address_line(text: str, begin: int, end: int) -> bool:
    return 0 < end - begin <= _MAX_LINE and _ANY_SHAPE.fullmatch(text, begin, end) is not None


def extend_address_blocks(text: str, findings: list[Finding]) -> list[Finding]:
    """``findings`` with the lines of each multi-line address around a LOCATION covered."""
    if "\n" not in text:
        return findings
    rows = _Lines(text)
    # Seeds: LOCATION findings alone on a short line, or on the short lines they cover (a
    # military address: "PSC 3117, Box 0609\nAPO AA 44332"). Most sit inside sentences:
    # skipped with two string searches, before any pattern runs.
    seeds: list[tuple[Finding, int, int]] = []
    for finding in findings:
        if finding.kind != "LOCATION":
            continue
        line_start = rows.start(finding.start)
        line_end = rows.end(finding.end)
        if line_end - line_start <= _MAX_LINE + 16:
            seeds.append((finding, line_start, line_end))
    if not seeds:
        return findings
    # Values of other kinds end a block; a named entity the language model put on a line
    # shaped like a street ("Søndergade 52" as a PERSON) does not, and becomes part of it.
    others = _Spans([(f.start, f.end) for f in findings if f.kind != "LOCATION"])
    hard = _Spans(
        [(f.start, f.end) for f in findings if f.kind != "LOCATION" and f.source != "ner"]
    )

    def free(begin: int, end: int, *, street: bool = False) -> bool:
        return not (hard if street else others).any(begin, end)

    blocks: list[tuple[int, int, Finding]] = []
    for finding, line_start, line_end in seeds:
        if blocks and finding.start < blocks[-1][1]:
            continue  # inside the block an earlier piece of the same address grew into
        first, last = _content(text, line_start, line_end)
        rest_of_line = (last - first) - (finding.end - finding.start)
        if last - first > _MAX_LINE or rest_of_line > _MAX_REST or not free(first, last):
            continue  # an address inside a sentence: the finding stays as it is
        lines = 1
        # Down: the lines after it, while they look like the rest of an address (one blank
        # line may separate the country line: "OULU\n\n Finland 80896").
        cursor = line_end
        blank_used = False
        while cursor < len(text) and lines <= _MAX_LINES_BELOW:
            following = rows.end(cursor + 1)
            begin, end = _content(text, cursor + 1, following)
            if begin == end and not blank_used and following < len(text):
                after = rows.end(following + 1)
                next_begin, next_end = _content(text, following + 1, after)
                if _PLACE_AND_POSTCODE.fullmatch(text, next_begin, next_end) and free(
                    next_begin, next_end
                ):
                    blank_used = True
                    last, cursor, lines = next_end, after, lines + 1
                    continue
            if not (_address_line(text, begin, end) and free(begin, end)):
                break
            last, cursor, lines = end, following, lines + 1
        # Up: a street line (or a unit line) just above it.
        above = 0
        cursor = line_start - 1
        while cursor > 0 and above < _MAX_LINES_ABOVE:
            previous = rows.start(cursor)
            begin, end = _content(text, previous, cursor)
            street = bool(
                _STREET_LINE.fullmatch(text, begin, end) or _UNIT.fullmatch(text, begin, end)
            )
            city = bool(_PLACE.fullmatch(text, begin, end))
            if not (
                (street or city) and end - begin <= _MAX_LINE and free(begin, end, street=street)
            ):
                break
            first, cursor, above = begin, previous - 1, above + 1
        if lines + above > 1:
            blocks.append((first, last, finding))
    if not blocks:
        return findings
    # A LOCATION finding reaching past a block (a street pattern over two lines), or a
    # language-model entity on one of its street lines, joins it; then blocks that touch
    # become one.
    grown: list[tuple[int, int, Finding]] = []
    everything = _Spans([(f.start, f.end) for f in findings])
    for start, end, finding in blocks:
        index = everything.hits(start, end).start
        while index < len(findings) and findings[index].start < end:
            f = findings[index]  # a finding reaching past the block grows it (in order)
            if (f.kind == "LOCATION" or f.source == "ner") and start < f.end:
                start, end = min(start, f.start), max(end, f.end)
            index += 1
        grown.append((start, end, finding))
    merged: list[tuple[int, int, Finding]] = []
    for start, end, finding in sorted(grown, key=lambda block: block[0]):
        if merged and start <= merged[-1][1]:
            earlier_start, earlier_end, earlier = merged[-1]
            best = earlier if earlier.score >= finding.score else finding
            merged[-1] = (earlier_start, max(earlier_end, end), best)
        else:
            merged.append((start, end, finding))
    # Inside a block, the pieces recognizers found stay (a street, a unit, a country); the
    # rest of each line becomes a LOCATION of its own, so the whole block is covered.
    in_blocks = _Spans([(start, end) for start, end, _ in merged])
    kept = [f for f in findings if f.kind == "LOCATION" or not in_blocks.contains(f.start, f.end)]
    inside = sorted((f for f in kept if f.kind == "LOCATION"), key=lambda f: f.start)
    ends = [f.end for f in inside]  # sorted too: findings are disjoint
    for start, end, finding in merged:
        cursor = start
        while cursor < end:
            stop = min(rows.end(cursor), end)
            pieces = []
            # an index, not islice(): islice walks the list from its start every time
            for position in range(bisect.bisect_right(ends, cursor), len(inside)):
                f = inside[position]
                if f.start >= stop:
                    break
                pieces.append((max(f.start, cursor), min(f.end, stop)))
            at = _content(text, cursor, stop)[0]  # not the bullet or quote mark
            for gap_start, gap_end in [*pieces, (stop, stop)]:
                begin, last = at, gap_start
                while begin < last and text[begin] in _BETWEEN:
                    begin += 1
                while last > begin and text[last - 1] in _BETWEEN:
                    last -= 1
                if last > begin:
                    # (An addressee's line, "Ella H. Snider", is the initialed-name
                    # recognizer's PERSON, which a block stops at.)
                    for part_start, part_end in _parts(text, begin, last):
                        kept.append(
                            Finding(
                                part_start,
                                part_end,
                                "LOCATION",
                                finding.score,
                                finding.level,
                                "address-block",
                            )
                        )
                at = max(at, gap_end)
            cursor = stop + 1
    return sorted(kept, key=lambda f: f.start)


# An address a sentence leads into and that goes on over the next lines ("Please send it
# to 1987 74 Diakou Street\n Suite 680\n Kissousa\n Cyprus 36903?"), or one under an
# "Address:" label: one mention, so one LOCATION from its first word to its postcode.
# The words that end the sentence's part of the lead line, read backwards from its end:
_LEAD_STOPS = frozenset(
    {"at", "to", "in", "is", "with", "on", "from", "of", "me", "for", "and", "are", "was"}
    | {"be", "by", "its", "it's", "here", "there", "as", "into", "near", "inside"}
)
_LEAD_MAX_WORDS = 9
_TWO_LETTERS = re.compile(r"[^\W\d_]{2}")
_WORD_RUN = re.compile(r"\S+")
_MAX_LEAD = 100  # characters of the address on its lead line
_REGION_LINE = re.compile(r",?[ \t]*[^\W_]{1,3}")  # ", CO", ", nan", ", 32"
_POSTCODE = r"\d{3,6}(?:-\d{3,4})?"
# The last line may go on with the sentence ("Cyprus 36903? I am in …").
_TAIL = re.compile(
    rf"{_PLACE.pattern}(?:,?[ \t]*[^\W_]{{1,3}})?[ \t]+{_POSTCODE}(?=[.?!,;]?(?:[ \t]|$))"
    rf"|{_POSTCODE}(?=[.?!,;]?(?:[ \t]|$))"
    rf"|{_PLACE.pattern}(?=[.?!](?:[ \t]|$))"
)
_LABEL = re.compile(r"(?i)\baddress[ \t]*:[ \t]*$")


def _lead_start(text: str, line_start: int, line_end: int) -> int | None:
    """Where the address on the lead line ``text[line_start:line_end]`` begins: after the
    last word of the sentence before it, or at the line's start under an "Address:" label;
    None when the line holds no address-shaped end."""
    # Only the line's end can hold an address of at most _MAX_LEAD characters and the word
    # before it: a long line is not read whole for every finding on it.
    window = max(line_start, line_end - 2 * _MAX_LEAD)
    words = list(_WORD_RUN.finditer(text, window, line_end))
    if words and window > line_start and not text[window - 1].isspace():
        words = words[1:]  # a word the window cut ("c|at" is no "at")
    start = None
    for count, word in enumerate(reversed(words)):
        token = word.group().rstrip(",").lower()
        if not any(c.isalnum() for c in token):
            break  # marks before the line's text ("???", "--"): the line is the address
        if token in _LEAD_STOPS or token.endswith((":", "?", "!")):
            if count > _LEAD_MAX_WORDS:
                return None  # a sentence that ends in a number, not a led address
            start = word.end()
            break
    if start is None:
        if window > line_start:
            return None  # no sentence word near the end of a long line
        # The whole line: only under a label line ("Address:", one blank line between).
        if not _LABEL.search(text[max(0, line_start - 60) : line_start].rstrip()):
            return None
        start = line_start
    while start < line_end and text[start] in " \t>":
        start += 1
    rest = text[start:line_end]
    if not rest or not (rest[0].isdigit() or rest[0].isupper()):
        return None
    # A number and a name: a street line or a unit, not a count ending a sentence.
    if not any(c.isdigit() for c in rest) or _TWO_LETTERS.search(rest) is None:
        return None
    return start


def join_inline_addresses(text: str, findings: list[Finding]) -> list[Finding]:
    """``findings`` with each address that a sentence (or an "Address:" label) leads into
    and that goes on over the following address-shaped lines made one LOCATION."""
    if "\n" not in text:
        return findings
    rows = _Lines(text)
    joined: list[tuple[int, int, Finding]] = []
    seen: set[int] = set()
    hard = _Spans(
        [(f.start, f.end) for f in findings if f.kind != "LOCATION" and f.source != "ner"]
    )
    everything = _Spans([(f.start, f.end) for f in findings])
    for finding in findings:
        if finding.kind != "LOCATION" or (joined and finding.start < joined[-1][1]):
            continue
        line_start = rows.start(finding.start)
        # The lead line is the finding's line, or the line above (the finding is below).
        for lead in (line_start, rows.start(max(line_start - 1, 0))):
            if lead in seen:
                continue
            seen.add(lead)
            lead_end = rows.end(lead)
            if lead_end > finding.end + 200:
                continue
            content_end = _content(text, lead, lead_end)[1]
            start = _lead_start(text, lead, content_end)
            if start is None or content_end - start > _MAX_LEAD:
                continue
            end, cursor, lines = content_end, lead_end, 0
            while end > start and text[end - 1] in ".?!;,":
                end -= 1  # the sentence's end, when no line follows
            while cursor < len(text) and lines < _MAX_LINES_BELOW:
                following = rows.end(cursor + 1)
                begin, stop = _content(text, cursor + 1, following)
                if begin == stop or hard.any(begin, stop):
                    break
                bare = stop
                while bare > begin and text[bare - 1] in ".?!;,":
                    bare -= 1
                if _REGION_LINE.fullmatch(text, begin, bare) or _address_line(text, begin, bare):
                    end, cursor, lines = bare, following, lines + 1
                    if bare < stop:
                        break  # the sentence ends with it
                    continue
                tail = _TAIL.match(text, begin, stop)
                if tail is not None:
                    end, lines = tail.end(), lines + 1
                break
            before = text[lead:start]
            label = not any(c.isalnum() for c in before) or _LABEL.search(before) is not None
            if (lines == 0 and not label) or hard.any(start, end):
                continue
            inside = [
                f
                for f in (findings[i] for i in everything.hits(start - 1, end))
                if f.kind == "LOCATION" and start <= f.end and f.start < end
            ]
            if not inside:
                continue
            start = min(start, inside[0].start)
            joined.append((start, end, max(inside, key=lambda f: f.score)))
            break
    if not joined:
        return findings
    joined_spans = _Spans([(start, end) for start, end, _ in joined])
    kept = [
        f
        for f in findings
        if not any(
            (start <= f.start < end and (f.kind == "LOCATION" or f.end <= end))
            or (f.source == "ner" and f.start < end and start < f.end)
            for start, end, _ in (
                joined[i] for i in joined_spans.hits(f.start, max(f.end, f.start + 1))
            )
        )
    ]
    for start, end, best in joined:
        kept.append(Finding(start, end, "LOCATION", best.score, best.level, "address-line"))
    return sorted(kept, key=lambda f: f.start)
