"""Speakers of a dialogue written as ``Name: what they said``, one line each.

The small English models tag most speaker names but miss some ("Ubul: What a wife."),
call others a place ("Danielle:" as a LOCATION), and join a label to what follows when no
space separates them ('Heather:"I'm Daniel's daughter"' as one PERSON). When the model
has tagged at least one line-start label of a text as a PERSON — so the labels are names
of people, not form fields such as "Phone:" or "Note:" — every other such label is a
PERSON too, and a joined entity is cut at its colon (the name introduced after it, "I'm
Daniel", stays a PERSON of its own).
"""

from __future__ import annotations

import re

from veil.detect._catalog import kind_info
from veil.detect._finding import Finding, Level
from veil.detect._spans import Spans

# A speaker label: a one-word name at a line's start, a colon, then what was said (after
# a space or an opening quote). Names in capitals ("NOTE:") are labels, not speakers.
_LABEL = re.compile(r"^[ \t]*([^\W\d_][^\W\d_'’-]{0,30}):(?=[ \t]*[\"“'‘]|[ \t]+\S)", re.MULTILINE)
# Words used as line labels that are no one's name.
_NOT_NAMES = frozenset(
    {
        "a", "address", "ai", "answer", "assistant", "author", "bcc", "bot", "cc",
        "date", "e-mail", "edit", "email", "error", "example", "fax", "from", "human",
        "id", "info", "input", "mobile", "name", "nb", "note", "notes", "output", "phone",
        "ps", "q", "question", "re", "result", "source", "status", "step", "subject",
        "summary", "system", "tel", "time", "tip", "title", "to", "update", "url", "user",
        "warning", "web", "website",
    }
)  # fmt: skip
# After a joined label's colon: quotes, then "I'm" / "I am" and the name introduced.
_INTRODUCED = re.compile(r"[ \t]*[\"“'‘]?(?:(?i:i['’]m|i am)[ \t]+)?([^\W\d_][^\W\d_-]*)")


def with_speakers(text: str, found: list[Finding], score: float) -> list[Finding]:
    """``found`` (the model's findings, sorted) with the dialogue's speakers as PERSONs."""
    if ":" not in text:
        return found
    labels = [
        match.span(1)
        for match in _LABEL.finditer(text)
        if match.group(1).lower() not in _NOT_NAMES and not match.group(1).isupper()
    ]
    if len(labels) < 2:
        return found
    starts = {f.start: f for f in found}
    if not any(
        (f := starts.get(start)) is not None and f.kind == "PERSON" and f.end >= end
        for start, end in labels
    ):
        return found  # no label is a person's name as far as the model can tell
    info = kind_info("PERSON")
    level = info.level if info is not None else Level.CRITICAL
    # Look-ups by position, not scans of every finding: a long transcript has thousands
    # of labels.
    spans = Spans([(f.start, f.end) for f in found])
    replaced: set[int] = set()  # starts of the model's findings given up
    added: list[Finding] = []
    for start, end in labels:
        entity = starts.get(start)
        if entity is not None and entity.end > end + 1 and entity.kind == "PERSON":
            # 'Heather:"I'm Daniel' → "Heather" and, when one follows, the name after it
            # (Finding's own __len__ keeps NamedTuple._replace from working: build anew.)
            replaced.add(start)
            added.append(Finding(start, end, "PERSON", entity.score, entity.level, "ner"))
            name = _INTRODUCED.match(text, end + 1, entity.end)
            if name is not None and name.end(1) == entity.end:
                added.append(
                    Finding(name.start(1), entity.end, "PERSON", entity.score, level, "ner")
                )
        elif entity is not None and entity.end == end:
            if entity.kind != "PERSON":  # "Danielle" as a LOCATION
                replaced.add(start)
                added.append(Finding(start, end, "PERSON", entity.score, level, "ner"))
        elif not spans.any(start, end):  # labels start lines: they never overlap each other
            added.append(Finding(start, end, "PERSON", score, level, "ner"))
    kept = [f for f in found if f.start not in replaced]
    return sorted([*kept, *added], key=lambda f: f.start)
