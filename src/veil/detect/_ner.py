"""Optional NER recognizer (``veil[ner]``): PERSON, LOCATION, ORGANIZATION with spaCy.

It loads a spaCy pipeline that is installed locally and named in the configuration
(``VEIL_NER_MODEL``, for example ``en_core_web_sm``). spaCy's ``load`` never downloads;
a missing model is a clear :class:`ConfigError` that says how to install one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import threading
import timeit
from collections.abc import Iterator, Sequence
from typing import Any

from veil.detect._catalog import kind_info
from veil.detect._finding import Finding, Level
from veil.detect._spans import DisjointSpans, Spans
from veil.detect._speakers import with_speakers
from veil.errors import ConfigError

# spaCy's OntoNotes labels → Veil kinds.
LABELS = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
    "DATE": "DATE",
    "TIME": "DATE",
}
NER_SCORE = 0.85
# Below every pattern recognizer: a validated or structured match wins an overlap.
NER_SPECIFICITY = 0
# spaCy tags relative times ("next week", "8+ years") as DATE; only calendar dates are PII.
# Words the small models take for organizations or people but that name kinds of data,
# forms or phrases ("verify my SSN", "IBAN", "the ATM", "ASAP"): never an entity, and
# pseudonymizing them in a prompt would only confuse the model.
# fmt: off
_NOT_ENTITIES = frozenset((
    "iban", "ssn", "atm", "asap", "pin", "cvv", "cvc", "dob", "otp", "faq", "eta", "fyi",
    "tbd", "pdf", "csv", "json", "xml", "api", "url", "sms", "kyc", "aml", "vat", "ein",
    "tin", "itin", "swift", "bic", "id", "ok",
))
# fmt: on
_CALENDAR_DATE = re.compile(
    r"\b(?:1[89]|20)\d\d\b|\d{1,2}[/.-]\d{1,2}|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d",
    re.IGNORECASE,
)


# A name right after a phrase that only places take ("flew to", "returned to", "arrived
# at", "grew up in", "originally from") is a place, whatever the model called it: the
# small models often label unfamiliar city names ORG or PERSON ("flew to LEPPEN").
_PLACE_BEFORE = re.compile(
    r"(?:\b(?:flew|flown|moved|relocated|travell?ed|emigrated|immigrated|returned|went|drove)"
    r"(?: back)? to"
    r"|\b(?:grew up|born|raised|based|lives|living|resides|residing|stationed) in"
    r"|\b(?:originally|moved here|came here|comes) from|\barrived (?:at|in)"
    r"|\bi(?:'|’| a)m (?:currently |now )?in)[ \t]{1,2}$",
    re.IGNORECASE,
)
# Likewise a name before or after words only people take ("Sandra lives on …", "Hakuba
# had given …", "her maiden name is Vida", "directed by Brad L Key"), which the small
# models often call ORG or GPE.
_PERSON_AFTER = re.compile(
    r"(?:[ \t]{1,2}(?:(?:lives|lived|living|resides)[ \t]+(?:at|on|in)|(?:had|has)[ \t]+given"
    r"|was[ \t]+born|is[ \t]+an?[ \t]+\d{1,3}[ \t]+years?[ \t]+old)"
    # a relative or someone close: only people have them ("Maite Lemmens's killers")
    r"|['’]s?[ \t]+(?:daughter|son|wife|husband|mother|father|brother|sister|kids?|children"
    r"|parents|grandmother|grandfather|granddaughter|grandson|cousin|aunt|uncle|niece|nephew"
    r"|widow|widower|fianc[ée]e?|boyfriend|girlfriend|killers?|murderers?|funeral|birthday))\b"
)
_PERSON_BEFORE = re.compile(
    r"(?:\bmaiden[ \t]+name[ \t]+is|\bdirected[ \t]+by|\bstarring|\bwritten[ \t]+by"
    r"|\bmarried[ \t]+to|\b(?:co-?)?founders?(?:[ \t]+(?:are|were))?[ \t]*:)[ \t]{1,3}$",
    re.IGNORECASE,
)
_LEADING_ROLE = re.compile(
    r"(?:The|Producer|Director|Manager|President|Professor|Senator|Captain|Doctor|Judge"
    r"|Officer|Agent|Coach|Chef|Editor|Author|Singer|Actor|Actress)[ \t]+(?=[^\W\d_])"
)
_ABBREVIATION_END = re.compile(r"\b(?:Inc|Ltd|Corp|Co|Bros|Jr|Sr)\.$")
_ORGANIZATION_WORD = re.compile(
    r"\b(?:inc|corp|corporation|llc|ltd|gmbh|plc|group|bank|university|college|institute"
    r"|company|co|hospital|school|foundation|sons|brothers|bros|partners|associates|holdings"
    r"|technologies|systems|solutions|labs)\b\.?",
    re.IGNORECASE,
)


# The other names of a list that holds a person's name ("Efimiya, Mary, Ariana and Jodi",
# "Monjeau, Graves and Reed"): the model often tags one or two of them only. Names of one
# to three words, each capitalized and not in capitals (or all lowercase in a lowercase
# list); pronouns are not names ("Hi Freddy, I'm …").
_NAME_WORD = (
    r"(?!(?i:and|or|nor|the|i|me|you|he|him|she|her|it|we|us|they|them)\b)[^\W\d_][^\W\d_'’-]*"
)
_NAME = rf"{_NAME_WORD}(?:[ \t]{_NAME_WORD}){{0,2}}"
_LIST_SEPARATOR = r"(?:,[ \t]+(?:(?:and|or|&)[ \t]+)?|[ \t]+(?:and|or|&)[ \t]+)"
_NEXT_IN_LIST = re.compile(
    rf"{_LIST_SEPARATOR}({_NAME})(?=[ \t]*(?:[,.;:!?)]|$|\n)|[ \t]+(?:and|or|&)\b)"
)
_ONE_WORD_NEXT = re.compile(rf"{_LIST_SEPARATOR}({_NAME_WORD})\b")
_PREVIOUS_IN_LIST = re.compile(rf"(?<![^\W\d_])({_NAME}){_LIST_SEPARATOR}$")
_MAX_LISTED = 12


def _listed_name_ok(name: str, capitalized: bool) -> bool:
    words = name.split()
    if capitalized:  # "Mary", not "QC" or "ΣΤΡΟΒΟΛΟΣ" (regions and places in capitals)
        return all(word[0].isupper() and not word[1:].isupper() for word in words)
    return name.islower()


def _with_listed_names(text: str, found: list[Finding]) -> list[Finding]:
    """``found`` with the unreported names of every list a PERSON finding is part of."""
    # Overlap questions by bisection: a scan of every finding per listed name made long
    # texts with many names quadratic.
    made = Spans([(f.start, f.end) for f in sorted(found, key=lambda f: f.start)])
    taken = DisjointSpans()
    added: list[Finding] = []
    info = kind_info("PERSON")
    level = info.level if info is not None else Level.CRITICAL
    exact = {(f.start, f.end): f for f in found}
    relabelled: set[tuple[int, int]] = set()

    def take(start: int, end: int) -> None:  # unless a finding covers it already
        other = exact.get((start, end))
        if other is not None and other.kind == "ORGANIZATION" and " " not in text[start:end]:
            # a one-word item the model called a firm ("founders: Kónya, Becker and
            # Vasquez" with Becker an ORG): a name like its neighbours, unless it is an
            # organization word ("… and Sons"). A place stays one ("Efimiya, Paris").
            if not _ORGANIZATION_WORD.search(text, start, end):
                relabelled.add((start, end))
            return
        if not made.any(start, end) and not taken.any(start, end):
            taken.add(start, end)
            added.append(Finding(start, end, "PERSON", NER_SCORE, level, "ner"))

    for person in [f for f in found if f.kind == "PERSON"]:
        capitalized = text[person.start].isupper()
        position = person.end
        for _ in range(_MAX_LISTED):  # rightwards: ", Mary", " and Jodi"
            match = _NEXT_IN_LIST.match(text, position) or _ONE_WORD_NEXT.match(text, position)
            if match is None or not _listed_name_ok(match.group(1), capitalized):
                break
            take(*match.span(1))
            position = match.end(1)
        position = person.start
        for _ in range(_MAX_LISTED):  # leftwards: "Efimiya, " before "Mary"
            match = _PREVIOUS_IN_LIST.search(text, max(0, position - 120), position)
            if match is None or not _listed_name_ok(match.group(1), capitalized):
                break
            take(*match.span(1))
            position = match.start(1)
    if relabelled:
        found = [
            Finding(f.start, f.end, "PERSON", f.score, level, f.source)
            if (f.start, f.end) in relabelled
            else f
            for f in found
        ]
    return sorted([*found, *added], key=lambda f: f.start) if added or relabelled else found


# "last Sunday", "next friday": a weekday named relative to now is no calendar date.
_RELATIVE_DAY = re.compile(
    r"(?i:last|next|this|every|each|that)[ \t]+(?i:mon|tues|wednes|thurs|fri|satur|sun)day$"
)


def spacy_available() -> bool:
    return importlib.util.find_spec("spacy") is not None


def model_available(name: str) -> bool:
    if not spacy_available():
        return False
    import spacy.util

    return bool(spacy.util.is_package(name))


class NerRecognizer:
    """Named entities from a local spaCy model, as :class:`Finding` objects."""

    source = "ner"

    def __init__(self, model: str) -> None:
        if not spacy_available():
            raise ConfigError(
                f"NER model {model!r} is configured but spaCy is not installed.",
                hint="Install it with `pip install 'veil[ner]'`, or unset VEIL_NER_MODEL.",
            )
        if not model_available(model):
            raise ConfigError(
                f"The spaCy model {model!r} is not installed (Veil never downloads models).",
                hint=f"Install it with `python -m spacy download {model}` on a machine with "
                "network access, or unset VEIL_NER_MODEL.",
            )
        import spacy
        from thinc.api import use_ops

        self.model = model
        # One model call at a time; callers that arrive meanwhile wait in `_waiting` and
        # are read together by the next call (see `find_many`).
        self._model_lock = threading.Lock()
        self._waiting_lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        # thinc multiplies matrices with BLIS by default, whose CPU detection falls back
        # to slow generic kernels on CPUs its wheel has no configuration for (AMD Zen 3
        # and later, many VMs): 2.5-4x slower than numpy's BLAS there. The model takes
        # the faster of the two on this CPU; both give the same entities (tested).
        self._blas: Any = _numpy_blas_if_faster()
        with use_ops("numpy", use_blis=self._blas is None):
            # Only the entity recognizer is needed: tagger/parser/lemmatizer cost time.
            self._nlp: Any = spacy.load(
                model, exclude=["tagger", "parser", "lemmatizer", "attribute_ruler", "senter"]
            )
        # The shared token-to-vector layer feeds only the components that listen to it;
        # in the small English models the entity recognizer carries its own, so with the
        # tagger and parser gone nobody listens and it is pure cost (~30% of the time).
        if "tok2vec" in self._nlp.pipe_names:
            shared = self._nlp.get_pipe("tok2vec")
            if not getattr(shared, "listening_components", ["?"]):
                self._nlp.remove_pipe("tok2vec")

    def __repr__(self) -> str:
        return f"NerRecognizer(model={self.model!r})"

    def __reduce__(self) -> tuple[object, ...]:
        return (NerRecognizer, (self.model,))

    def _findings(self, doc: Any) -> list[Finding]:
        # Doc.text joins every token's text anew on each access: once per document.
        text = doc.text
        found = list(self._entities(doc, text))
        if any(f.kind == "PERSON" for f in found):
            found = _with_listed_names(text, found)
            found = with_speakers(text, found, NER_SCORE)
        return found

    def _entities(self, doc: Any, text: str) -> Iterator[Finding]:
        for entity in doc.ents:
            kind = LABELS.get(entity.label_)
            if kind is None:
                continue
            start, end = entity.start_char, entity.end_char
            if text[start:end].strip().lower() in _NOT_ENTITIES:
                continue
            # spaCy may include a trailing possessive or punctuation: trim it, but not the
            # period of an abbreviation that ends a name ("Pixia Corp.", "John Smith Jr.").
            while end > start and text[end - 1] in " \t\n.,;:'’>":
                if text[end - 1] == "." and _ABBREVIATION_END.search(text, start, end):
                    break
                end -= 1
            if text.startswith("the ", start) and end - start > 4:
                start += 4  # a lowercase article is not part of a name ("the Acme Inc.")
            if kind == "PERSON":
                # Nor an article or a role in front of a person's name ("The Gunnhildur F.
                # Helgadóttir version", "Producer Liviana Palerma explained").
                role = _LEADING_ROLE.match(text, start, end)
                if role is not None:
                    start = role.end()
            if text[end - 2 : end] in ("'s", "’s"):
                end -= 2
            if end <= start:
                continue
            if kind == "DATE" and (
                not _CALENDAR_DATE.search(text[start:end]) or _RELATIVE_DAY.match(text, start, end)
            ):
                continue
            if kind != "DATE" and not _ORGANIZATION_WORD.search(text, start, end):
                if kind != "LOCATION" and _PLACE_BEFORE.search(text, max(0, start - 40), start):
                    kind = "LOCATION"
                elif kind != "PERSON" and (
                    _PERSON_AFTER.match(text, end)
                    or _PERSON_BEFORE.search(text, max(0, start - 40), start)
                ):
                    kind = "PERSON"
            info = kind_info(kind)
            level = info.level if info is not None else Level.HIGH
            yield Finding(start, end, kind, NER_SCORE, level, self.source)

    def _one_thread(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext() if self._blas is None else _one_blas_thread(self._blas)

    def find(self, text: str) -> list[Finding]:
        return self.find_many([text])[0]

    def find_many(self, texts: Sequence[str], batch_size: int = 64) -> list[list[Finding]]:
        """Entities of each text. Calls from several threads at once (gateway requests)
        are combined: the thread that gets the model next reads every text waiting, in
        one batch, which spaCy runs 2-3x faster per text than one call each; a caller
        alone waits for nobody."""
        request = _Waiting(texts)
        with self._waiting_lock:
            self._waiting.append(request)
        with self._model_lock:
            if request.result is None and request.error is None:
                with self._waiting_lock:
                    batch, self._waiting = self._waiting, []
                self._run(batch, batch_size)
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _run(self, batch: list[_Waiting], batch_size: int) -> None:
        texts = [text for request in batch for text in request.texts]
        try:
            with self._one_thread():
                docs = self._nlp.pipe(texts, batch_size=batch_size)
                found = [self._findings(doc) for doc in docs]
        except Exception as exc:  # every caller of the batch gets the failure
            for request in batch:
                request.error = exc
            return
        start = 0
        for request in batch:
            request.result = found[start : start + len(request.texts)]
            start += len(request.texts)


class _Waiting:
    """One caller's texts, waiting for the model; its result or error once read."""

    __slots__ = ("error", "result", "texts")

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = texts
        self.result: list[list[Finding]] | None = None
        self.error: BaseException | None = None


def _numpy_blas_if_faster() -> Any:
    """A controller of numpy's BLAS threads when numpy multiplies matrices of the entity
    recognizer's size faster than BLIS on this CPU (~10 ms to time); else None."""
    try:
        import blis.py
        import numpy
        from threadpoolctl import ThreadpoolController
    except ImportError:  # spaCy installed without veil[ner]: thinc's default
        return None
    controller = ThreadpoolController()
    a = numpy.ones((512, 96), dtype="float32")
    b = numpy.ones((96, 288), dtype="float32")
    with controller.limit(limits=1, user_api="blas"):
        with_numpy = min(timeit.repeat(lambda: a @ b, number=5, repeat=3))
    with_blis = min(timeit.repeat(lambda: blis.py.gemm(a, b), number=5, repeat=3))
    return controller if with_numpy < with_blis else None


_BLAS_LOCK = threading.Lock()


@contextlib.contextmanager
def _one_blas_thread(controller: Any) -> Iterator[None]:
    # OpenBLAS would spread each product over every core and spin its threads between
    # calls: twice the CPU for no gain in wall time here. Its thread count is per
    # process, so one call at a time sets it and puts it back.
    with _BLAS_LOCK, controller.limit(limits=1, user_api="blas"):
        yield
