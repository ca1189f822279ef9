"""Recognizers are data: loaded from YAML (built-ins and user files), validated, compiled."""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from veil._yaml import load_yaml, read_yaml_file, strip_lines
from veil.detect._catalog import kind_info
from veil.detect._finding import Level
from veil.detect._first_chars import with_first_chars
from veil.detect._validators import VALIDATORS, Validator
from veil.errors import InputError

_KIND = re.compile(r"^[A-Z][A-Z0-9_]*$")


class RecognizerSpec(BaseModel):
    """One recognizer as written in YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=80)
    kind: str
    pattern: str
    # Which group is the value: a number, "first" (the first group that matched), or a list
    # of groups, each reported as a finding of its own when it matched (the parts of one
    # address: the building number and the street line).
    group: int | Literal["first"] | tuple[int, ...] = 0
    validator: str | None = None
    keywords: tuple[str, ...] = ()
    # Every match has one of the keywords starting at most this many characters after
    # the match's own start: long texts are then searched only near keywords.
    keywords_within: int | None = Field(default=None, ge=0, le=1000)
    context: tuple[str, ...] = ()
    context_required: bool = False
    score: float = Field(default=0.6, ge=0.0, le=1.0)
    specificity: int = Field(default=1, ge=0, le=9)
    level: Level | None = None
    enabled: bool = True

    @field_validator("kind")
    @classmethod
    def _kind_is_upper_snake(cls, value: str) -> str:
        if not _KIND.match(value):
            raise ValueError("must be UPPER_SNAKE_CASE, for example EMPLOYEE_ID")
        return value

    @field_validator("validator")
    @classmethod
    def _known_validator(cls, value: str | None) -> str | None:
        if value is not None and value not in VALIDATORS:
            raise ValueError(f"unknown validator; choose one of {', '.join(sorted(VALIDATORS))}")
        return value

    @field_validator("keywords", "context")
    @classmethod
    def _lowercase(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(word.lower() for word in value if word)

    @model_validator(mode="after")
    def _reach_needs_keywords(self) -> RecognizerSpec:
        if self.keywords_within is not None and not self.keywords:
            raise ValueError("keywords_within needs keywords")
        return self

    def resolved_level(self) -> Level:
        if self.level is not None:
            return self.level
        info = kind_info(self.kind)
        return info.level if info is not None else Level.HIGH


# Longest match the windowed engine will bound a pattern by; longer ones scan in full.
MAX_WINDOW = 20_000


class CandidateLoop(NamedTuple):
    """A compiled recognizer's settings as the detector's candidate loop reads them."""

    group: int | str | tuple[int, ...]
    validator: Validator | None
    context_regex: re.Pattern[str] | None
    context_required: bool
    context: tuple[str, ...]
    score: float
    kind: str
    level: Level
    source: str
    specificity: int


@dataclass(frozen=True, slots=True)
class CompiledRecognizer:
    spec: RecognizerSpec
    regex: re.Pattern[str]
    max_width: int | None  # longest possible match, None when unbounded or empty-capable
    # The validator, context pattern, level and the spec's fields that the detector's
    # candidate loop reads, in one tuple: it runs for every selected recognizer of every
    # text, and one unpacking costs less than a dozen attribute reads.
    loop: CandidateLoop
    # Where ``keywords_within`` is set: any of the keywords, case-insensitive, and how far
    # after a match's start one begins at most.
    keyword_regex: re.Pattern[str] | None = None
    keywords_within: int = 0

    @property
    def id(self) -> str:
        return self.spec.id


def compile_recognizer(spec: RecognizerSpec, *, origin: str = "recognizer") -> CompiledRecognizer:
    try:
        # ASCII semantics for \w \d \b, the same as the Hyperscan prefilter's.
        regex = re.compile(spec.pattern, re.ASCII)
        # The same matches, found faster (see _first_chars).
        regex = re.compile(with_first_chars(spec.pattern, re.ASCII), re.ASCII)
    except re.error as exc:
        raise InputError(
            f"{origin}: recognizer {spec.id!r} has an invalid pattern ({exc.msg} at {exc.pos}).",
            hint="Patterns use Python `re` syntax.",
        ) from None
    if spec.group == "first":
        groups: tuple[int, ...] = (1,)
    else:
        groups = (spec.group,) if isinstance(spec.group, int) else spec.group
    if not groups or max(groups) > regex.groups:
        raise InputError(
            f"{origin}: recognizer {spec.id!r} uses group {spec.group} but the pattern has "
            f"only {regex.groups}.",
        )
    context = None
    if spec.context:
        # Whole words of the lowercased text (see veil.detect._detector._context_near).
        words = "|".join(re.escape(word) for word in sorted(spec.context, key=len, reverse=True))
        context = re.compile(rf"(?<![a-z0-9])(?:{words})(?![a-z0-9])")
    validator = VALIDATORS[spec.validator] if spec.validator else None
    keyword_regex = None
    if spec.keywords_within is not None:
        words = "|".join(re.escape(word) for word in sorted(spec.keywords, key=len, reverse=True))
        keyword_regex = re.compile(words, re.IGNORECASE | re.ASCII)
    level = spec.resolved_level()
    loop = CandidateLoop(
        spec.group,
        validator,
        context,
        spec.context_required,
        spec.context,
        spec.score,
        spec.kind,
        level,
        spec.id,
        spec.specificity,
    )
    return CompiledRecognizer(
        spec, regex, _max_width(spec.pattern), loop, keyword_regex, spec.keywords_within or 0
    )


def _max_width(pattern: str) -> int | None:
    """The longest possible match of ``pattern`` (from CPython's own regex parser)."""
    try:
        parser = importlib.import_module("re._parser")
        low, high = parser.parse(pattern, re.ASCII).getwidth()
    except Exception:  # the private parser changed: fall back to full scans
        return None
    return int(high) if low > 0 and high <= MAX_WINDOW else None


_FILE_KEYS = ("version", "recognizers", "public_values", "__line__")


def _specs_from_document(document: Any, origin: str) -> list[RecognizerSpec]:
    if not isinstance(document, dict) or not isinstance(document.get("recognizers"), list):
        raise InputError(
            f"{origin}: expected a mapping with `version: 1` and a `recognizers:` list.",
            hint="See docs/detection.md for the recognizer file format.",
        )
    if document.get("version") != 1:
        raise InputError(f"{origin}: unsupported or missing `version` (expected 1).")
    for key in document:
        if key not in _FILE_KEYS:
            # `public_value:` would be ignored: those values would then be reported.
            close = difflib.get_close_matches(str(key), _FILE_KEYS[:3], n=1, cutoff=0.6)
            guess = f" (did you mean {close[0]}?)" if close else ""
            raise InputError(
                f"{origin}:{document.get('__line__', 1)}: `{key}` is not a key of a "
                f"recognizer file{guess}.",
                hint="A recognizer file has version, recognizers and public_values.",
            )
    specs: list[RecognizerSpec] = []
    for item in document["recognizers"]:
        line = item.get("__line__", "?") if isinstance(item, dict) else "?"
        if not isinstance(item, dict):
            raise InputError(f"{origin}: each recognizer must be a mapping.")
        data = strip_lines(item)
        try:
            spec = RecognizerSpec.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "recognizer"
            name = data.get("id", "?")
            raise InputError(
                f"{origin}:{line}: recognizer {name!r}: {field}: "
                f"{str(error['msg']).removeprefix('Value error, ')}.",
            ) from None
        compile_recognizer(spec, origin=f"{origin}:{line}")
        specs.append(spec)
    return specs


def _public_values_from_document(document: Any, origin: str) -> frozenset[str]:
    """The file's ``public_values``: published sample credentials (SDK test keys,
    documentation examples) that are never reported, whatever recognizer matches them."""
    values = document.get("public_values", []) if isinstance(document, dict) else []
    if not isinstance(values, list) or not all(
        isinstance(value, str) and value.strip() for value in values
    ):
        raise InputError(
            f"{origin}: `public_values` must be a list of non-empty strings.",
            hint="List exact published sample values, one per item; never a real secret.",
        )
    return frozenset(values)


def _builtin_document() -> Any:
    text = resources.files("veil.detect").joinpath("builtin_recognizers.yaml").read_text("utf-8")
    return load_yaml(text, origin="builtin_recognizers.yaml")


def builtin_specs() -> list[RecognizerSpec]:
    return _specs_from_document(_builtin_document(), "builtin")


def builtin_public_values() -> frozenset[str]:
    """Published sample credentials the built-in set never reports (see the YAML file)."""
    return _public_values_from_document(_builtin_document(), "builtin")


def load_recognizer_file(path: Path) -> list[RecognizerSpec]:
    """User recognizers from a YAML file (same format as the built-ins)."""
    return _specs_from_document(read_yaml_file(path), str(path))


def load_public_values(path: Path) -> frozenset[str]:
    """The ``public_values`` of a user recognizer file (empty when it lists none)."""
    return _public_values_from_document(read_yaml_file(path), str(path))


def merge_specs(
    base: Sequence[RecognizerSpec], extra: Iterable[RecognizerSpec]
) -> list[RecognizerSpec]:
    """``extra`` adds recognizers; one with the id of a built-in replaces it."""
    merged = {spec.id: spec for spec in base}
    for spec in extra:
        merged[spec.id] = spec
    return [spec for spec in merged.values() if spec.enabled]
