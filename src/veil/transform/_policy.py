"""Policy: which operator applies to which kind or level, validated from YAML."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from veil._yaml import load_yaml, read_text, strip_lines
from veil.detect import CATALOG, Finding, Level, kind_info
from veil.errors import InputError

OperatorName = Literal["redact", "mask", "hash", "pseudonymize", "encrypt", "drop", "keep", "block"]
# The places Veil applies a policy with an override: what is forwarded to a model, model
# answers, and the sanitizing log filter. A misspelt surface would otherwise be ignored.
Surface = Literal["gateway", "answer", "logging"]
SURFACES: tuple[str, ...] = get_args(Surface)


class Rule(BaseModel):
    """One operator and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operator: OperatorName
    reveal: int = Field(default=4, ge=0, le=16, description="mask: characters left visible")
    mask_char: str = Field(default="X", min_length=1, max_length=1)
    label: str | None = Field(default=None, description="redact: text instead of [KIND]")


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Rule | None = None
    secrets: Rule | None = None
    levels: dict[Level, Rule] = Field(default_factory=dict)
    kinds: dict[str, Rule] = Field(default_factory=dict)


class Policy(BaseModel):
    """``version: 1`` policy. Resolution for a finding: ``kinds`` → ``secrets`` (for secret
    kinds) → ``levels`` → ``default``; a surface override is tried before the base."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    name: str = "custom"
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    default: Rule = Rule(operator="redact")
    secrets: Rule | None = None
    levels: dict[Level, Rule] = Field(default_factory=dict)
    kinds: dict[str, Rule] = Field(default_factory=dict)
    surfaces: dict[Surface, RuleSet] = Field(default_factory=dict)
    code_blocks: Literal["keep", "anonymize"] = Field(
        default="keep",
        description="gateway: anonymize fenced Python code blocks in prompts (veil code)",
    )

    # Where each kind rule was written ("policy.yaml:7"), for errors about its kind.
    _places: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _kinds_are_upper_snake(self) -> Policy:
        for kind in self.kinds:
            if not kind.isupper() or " " in kind:
                raise ValueError(f"kind {kind!r} must be UPPER_SNAKE_CASE")
        return self

    def kind_rules(self) -> Iterator[tuple[str, str]]:
        """``(field, kind)`` for every kind rule, surface overrides included."""
        for kind in self.kinds:
            yield f"kinds.{kind}", kind
        for surface, rules in self.surfaces.items():
            for kind in rules.kinds:
                yield f"surfaces.{surface}.kinds.{kind}", kind

    def check_kinds(self, known: Collection[str]) -> None:
        """Refuse a rule for a kind that no recognizer reports (``EMIAL``): it would never
        apply, and the values it meant would get the default operator instead."""
        for field, kind in self.kind_rules():
            if kind in known or kind in CATALOG:
                continue
            close = difflib.get_close_matches(kind, [*CATALOG, *known], n=1, cutoff=0.6)
            guess = f" Did you mean {close[0]}?" if close else ""
            where = self._places.get(field, self.name)
            raise InputError(
                f"{where}: {field}: no recognizer reports the kind {kind}, so this rule "
                f"would never apply.{guess}",
                hint="`veil detect --list-kinds` lists the kinds; a kind of your own needs "
                "its recognizer in the recognizers file (--recognizers or VEIL_RECOGNIZERS).",
            )

    def rule_for(self, finding: Finding, surface: str | None = None) -> Rule:
        layers: list[RuleSet | Policy] = []
        if surface is not None and surface in self.surfaces:
            layers.append(self.surfaces[surface])
        layers.append(self)
        info = kind_info(finding.kind)
        is_secret = info is not None and info.secret
        for layer in layers:
            if finding.kind in layer.kinds:
                return layer.kinds[finding.kind]
            if is_secret and layer.secrets is not None:
                return layer.secrets
            if finding.level in layer.levels:
                return layer.levels[finding.level]
            if layer.default is not None:
                return layer.default
        return self.default

    def uses(self, operator: OperatorName) -> bool:
        rules: list[Rule] = [self.default, *self.levels.values(), *self.kinds.values()]
        if self.secrets is not None:
            rules.append(self.secrets)
        for surface in self.surfaces.values():
            rules += [*surface.levels.values(), *surface.kinds.values()]
            rules += [rule for rule in (surface.default, surface.secrets) if rule is not None]
        return any(rule.operator == operator for rule in rules)


def _line_of(document: Any, location: tuple[int | str, ...]) -> Any:
    """The line of the innermost mapping on ``location`` (for error messages)."""
    node, line = document, document.get("__line__") if isinstance(document, dict) else None
    for part in location:
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_mapping or in_list):
            break
        node = node[part]
        if isinstance(node, dict) and "__line__" in node:
            line = node["__line__"]
    return line


def parse_policy(text: str, *, origin: str = "policy") -> Policy:
    """A policy from YAML text; errors name the file, line and field."""
    document = load_yaml(text, origin=origin)
    if not isinstance(document, dict):
        raise InputError(f"{origin}: a policy is a mapping starting with `version: 1`.")
    try:
        policy = Policy.model_validate(strip_lines(document))
    except ValidationError as exc:
        error = exc.errors()[0]
        location = tuple(error["loc"])
        line = _line_of(document, location)
        where = f"{origin}:{line}" if line else origin
        field = ".".join(str(part) for part in location if part != "[key]") or "policy"
        reason = str(error["msg"]).removeprefix("Value error, ")
        raise InputError(
            f"{where}: {field}: {reason}.",
            hint="See docs/policies.md for the policy format.",
        ) from None
    for field, _kind in policy.kind_rules():
        line = _line_of(document, tuple(field.split(".")))
        policy._places[field] = f"{origin}:{line}" if line else origin
    return policy


def load_policy(path: Path) -> Policy:
    return parse_policy(read_text(path, "policy"), origin=str(path))


def default_policy_text() -> str:
    """The YAML of the policy shipped with Veil."""
    return resources.files("veil.transform").joinpath("default_policy.yaml").read_text("utf-8")


def default_policy() -> Policy:
    return parse_policy(default_policy_text(), origin="default_policy.yaml")
