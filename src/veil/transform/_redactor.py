"""The Redactor: detect, then apply the policy's operator to each finding."""

from __future__ import annotations

import copy
import functools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from veil.config import Settings, settings_from_environment
from veil.detect import Detector, Finding, Level, configured_detector, detection_key
from veil.errors import InputError, PolicyViolationError
from veil.transform import _operators as op
from veil.transform._literals_index import PLAIN_QUERIES, LiteralIndex
from veil.transform._policy import SURFACES, Policy, default_policy
from veil.transform._pseudonymizer import Pseudonymizer, stands_alone

if TYPE_CHECKING:
    from veil.keys import KeyStore


@dataclass(frozen=True, slots=True)
class Redaction:
    """The transformed text and what was found (offsets into the original text)."""

    text: str
    findings: list[Finding] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Redaction(findings={len(self.findings)}, actions={self.actions})"


class Redactor:
    """Applies a :class:`Policy` to text.

    ``surface`` selects the policy's per-surface override (``gateway``, ``logging``...).
    ``pseudonymizer`` is the scope for the pseudonymize operator; ``keys`` (a KeyStore)
    supplies the keys of the hash and encrypt operators.
    """

    def __init__(
        self,
        *,
        detector: Detector | None = None,
        policy: Policy | None = None,
        surface: str | None = None,
        pseudonymizer: Pseudonymizer | None = None,
        keys: KeyStore | None = None,
    ) -> None:
        if policy is not None and not isinstance(policy, Policy):
            raise InputError(
                f"policy must be a Policy, not {type(policy).__name__}.",
                hint="Load one with veil.load_policy(path) or parse_policy(yaml_text); "
                "None is the default policy.",
            )
        self.policy = policy if policy is not None else default_policy()
        self.detector = detector if detector is not None else shared_detector()
        self.policy.check_kinds(self.detector.kinds)
        if surface is not None and surface not in SURFACES:
            raise InputError(
                f"Unknown surface {surface!r}.", hint=f"Choose one of {', '.join(SURFACES)}."
            )
        self.surface = surface
        self.pseudonymizer = pseudonymizer if pseudonymizer is not None else Pseudonymizer()
        self._rules: dict[tuple[str, Level], op.Rule] = {}
        self._hash_key: bytes | None = None
        self._encrypt_key: bytes | None = None
        if keys is not None:
            self._hash_key = keys.material("hash")
            self._encrypt_key = keys.material("encrypt-siv", length=64)

    def __repr__(self) -> str:
        return f"Redactor(policy={self.policy.name!r}, surface={self.surface!r})"

    def with_pseudonymizer(self, pseudonymizer: Pseudonymizer) -> Redactor:
        """A twin sharing policy, detector, keys and resolved rules, in another pseudonym
        scope (one per gateway request, say) — cheap, unlike building a Redactor."""
        twin = copy.copy(self)
        twin.pseudonymizer = pseudonymizer
        return twin

    def redact(self, text: str) -> Redaction:
        findings = [f for f in self.detector.find(text) if f.score >= self.policy.min_score]
        return self.apply(text, findings)

    def apply(self, text: str, findings: list[Finding]) -> Redaction:
        """Apply the policy to ``findings`` already made on ``text``."""
        parts: list[str] = []
        actions: dict[str, int] = {}
        cursor = 0
        blocked = sorted({f.kind for f in findings if self._rule(f).operator == "block"})
        if blocked:
            raise PolicyViolationError(
                f"Blocked by policy {self.policy.name!r}: the text contains {', '.join(blocked)}.",
                hint="Remove the value, or change the policy's operator for that kind.",
                kinds=tuple(blocked),
            )
        if findings:
            self.pseudonymizer.reserve_literals(text)
        ordered = sorted(findings, key=lambda f: f.start)
        # New fakes are checked against the text; an index answers that for many values
        # of a long text without reading the whole text per value.
        avoid = LiteralIndex(text) if len(findings) > PLAIN_QUERIES else text
        for index, finding in enumerate(ordered):
            rule = self._rule(finding)
            value = text[finding.start : finding.end]
            parts.append(text[cursor : finding.start])
            whole = rule.operator != "pseudonymize" or stands_alone(text, ordered, index)
            parts.append(self._replacement(value, finding, rule, avoid, whole))
            actions[rule.operator] = actions.get(rule.operator, 0) + 1
            cursor = finding.end
        parts.append(text[cursor:])
        return Redaction("".join(parts), findings, actions)

    def _rule(self, finding: Finding) -> op.Rule:
        # The rule depends only on kind and level: resolve each pair once.
        key = (finding.kind, finding.level)
        rule = self._rules.get(key)
        if rule is None:
            rule = self._rules[key] = self.policy.rule_for(finding, self.surface)
        return rule

    def _replacement(
        self,
        value: str,
        finding: Finding,
        rule: op.Rule,
        avoid: str | LiteralIndex,
        whole_word: bool,
    ) -> str:
        kind = finding.kind
        match rule.operator:
            case "redact":
                return op.redact(kind, rule)
            case "mask":
                return op.mask(value, kind, rule)
            case "hash":
                return op.keyed_hash(value, kind, self._hash_key)
            case "pseudonymize":
                return self.pseudonymizer.token_for(value, kind, avoid=avoid, whole_word=whole_word)
            case "encrypt":
                return op.encrypt(value, kind, self._encrypt_key)
            case "drop":
                return ""
            case "keep" | "block":
                return value

    def restore(self, text: str) -> str:
        """Pseudonym tokens and encrypted tokens in ``text`` back to the original values."""
        restored = self.pseudonymizer.restore(text)
        if self._encrypt_key is not None and "<ENC:" in restored:
            restored = op.decrypt_tokens(restored, self._encrypt_key)
        return restored


_SHARED: dict[tuple[object, ...], Detector] = {}
_SHARED_LOCK = threading.Lock()


def shared_detector(settings: Settings | None = None) -> Detector:
    """One detector per detection configuration, compiled once per process: the built-in
    recognizers plus ``VEIL_RECOGNIZERS``, with ``VEIL_PHONE_REGION`` and
    ``VEIL_ADDRESS_BLOCKS`` (no NER). ``settings`` default to the environment's, read
    once per process."""
    if settings is None:
        settings = _environment_settings()
    key = detection_key(settings)
    detector = _SHARED.get(key)
    if detector is None:
        with _SHARED_LOCK:
            detector = _SHARED.get(key)
            if detector is None:
                detector = _SHARED[key] = configured_detector(settings)
    return detector


@functools.lru_cache(maxsize=1)
def _environment_settings() -> Settings:
    # Only the detection variables, from the process environment: library callers
    # (veil.redact, the logging filter, datasets) must not fail on an application's
    # own .env file or on settings they do not use.
    return settings_from_environment("phone_region", "recognizers", "address_blocks")


def redact(text: str, policy: Policy | None = None) -> str:
    """``text`` with secrets and personal data transformed by ``policy`` (default policy)."""
    return Redactor(policy=policy).redact(text).text
