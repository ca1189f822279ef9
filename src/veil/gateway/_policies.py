"""The policies the gateway applies: per name, the redactors of its current version.

A virtual key names a policy (``veil keys create --policy NAME``). Its file is read on
first use and again within :data:`CHECK_SECONDS` of being replaced or edited (``veil
policy install`` or by hand), so a change reaches a running gateway without a restart.
Every version a gateway process starts applying is an entry in the audit ledger
(``policy.load``, with the SHA-256 of the file), so each call's entry, which names its
policy, can be matched to the exact policy text in force. A file that stops parsing or
disappears leaves the last good version in force; that is logged and recorded too.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from veil.audit import Ledger
from veil.detect import Detector, Finding, kind_info
from veil.errors import VeilError
from veil.gateway._protect import without_pseudonyms
from veil.keys import KeyStore
from veil.transform import Policy, PolicyStore, Redactor, StoredPolicy

log = logging.getLogger("veil.gateway")

CHECK_SECONDS = 1.0
ACTOR = "gateway"

# The kinds only a NER model finds well: when the answer policy changes any of them,
# whole answers are read by the model too.
_NAME_KINDS = ("PERSON", "LOCATION", "ORGANIZATION")


def _answer_changes_names(policy: Policy) -> bool:
    for kind in _NAME_KINDS:
        info = kind_info(kind)
        assert info is not None
        probe = Finding(0, 1, kind, 1.0, info.level, "ner")
        if policy.rule_for(probe, "answer").operator != "keep":
            return True
    return False


@dataclass(frozen=True, slots=True)
class PolicyRedactors:
    """One policy's redactors: prompts, embeddings inputs, answers streamed in pieces,
    and whole answers (the prompts' detector, NER included, when the answer policy
    changes names, places or organizations; else the same as ``answer``)."""

    prompt: Redactor
    embed: Redactor
    answer: Redactor
    whole_answer: Redactor


@dataclass(slots=True)
class _Version:
    sha256: str
    signature: tuple[int, int, int] | None
    redactors: PolicyRedactors
    checked: float


class Policies:
    """Per policy name, the redactors of the version in force. Used from the event
    loop's thread only."""

    def __init__(
        self,
        store: PolicyStore,
        detector: Detector,
        answer_detector: Detector,
        keys: KeyStore,
        ledger: Ledger,
    ) -> None:
        self._store = store
        self._detector = detector
        self._answer_detector = answer_detector
        self._keys = keys
        self._ledger = ledger
        self._versions: dict[str, _Version] = {}

    def __repr__(self) -> str:
        return f"Policies({sorted(self._versions)})"

    def get(self, name: str) -> PolicyRedactors:
        """The redactors of ``name`` (an :class:`InputError` when it has never loaded)."""
        now = time.monotonic()
        version = self._versions.get(name)
        if version is None:
            # The file's signature before its text: a replacement in between is then
            # seen as a change on the next check, never missed.
            signature = self._store.signature(name)
            stored = self._store.get(name)
            version = self._versions[name] = _Version(
                stored.sha256, signature, self._build(stored), now
            )
            self._record(name, "ok", {"sha256": stored.sha256})
            return version.redactors
        if now - version.checked >= CHECK_SECONDS:
            version.checked = now
            signature = self._store.signature(name)
            if signature != version.signature:
                version.signature = signature
                self._reload(name, version)
        return version.redactors

    def _reload(self, name: str, version: _Version) -> None:
        try:
            stored = self._store.get(name)
            if stored.sha256 == version.sha256:
                return  # touched, same text
            redactors = self._build(stored)  # refuses kinds no recognizer reports
        except VeilError as exc:
            log.error(
                "Policy %s changed but cannot be applied (%s); the previous version stays "
                "in force.",
                name,
                exc.message,
            )
            self._record(name, "error", {"sha256": version.sha256, "reason": "unreadable"})
            return
        previous, version.sha256 = version.sha256, stored.sha256
        version.redactors = redactors
        log.info("Policy %s reloaded.", name)
        self._record(name, "ok", {"sha256": stored.sha256, "previous_sha256": previous})

    def _build(self, stored: StoredPolicy) -> PolicyRedactors:
        policy, keys, detector = stored.policy, self._keys, self._detector
        answer = Redactor(
            detector=self._answer_detector, policy=policy, surface="answer", keys=keys
        )
        whole_answer = answer
        if detector.ner is not None and _answer_changes_names(policy):
            whole_answer = Redactor(detector=detector, policy=policy, surface="answer", keys=keys)
        return PolicyRedactors(
            Redactor(detector=detector, policy=policy, surface="gateway", keys=keys),
            Redactor(
                detector=detector,
                policy=without_pseudonyms(policy),
                surface="gateway",
                keys=keys,
            ),
            answer,
            whole_answer,
        )

    def _record(self, name: str, outcome: str, details: dict[str, Any]) -> None:
        try:
            future = self._ledger.submit(
                ACTOR, "policy.load", outcome, resource=f"policy:{name}", details=details
            )
        except VeilError as exc:
            log.error("writing the policy.load audit entry failed: %s", exc.message)
            return
        future.add_done_callback(_log_failure)


def _log_failure(future: Future[Any]) -> None:
    error = future.exception()
    if error is not None:
        log.error("writing the policy.load audit entry failed: %s", error)
