"""String literals through the engine: each value found becomes a pseudonym token that
only the code map can turn back (secrets included: the model sees ``<GITHUB_TOKEN_1>``)."""

from __future__ import annotations

from veil.detect import Detector
from veil.transform._literals_index import PLAIN_QUERIES, LiteralIndex
from veil.transform._pseudonymizer import Pseudonymizer


class LiteralTransformer:
    def __init__(
        self,
        detector: Detector,
        min_score: float = 0.5,
        pseudonymizer: Pseudonymizer | None = None,
    ) -> None:
        self._detector = detector
        self._min_score = min_score
        # The gateway passes its request's scope, so tokens never collide with the prompt's.
        self.pseudonymizer = pseudonymizer or Pseudonymizer(scope="code")

    def __repr__(self) -> str:
        return f"LiteralTransformer(tokens={len(self.pseudonymizer)})"

    def __call__(self, body: str) -> tuple[str, dict[str, str]]:
        findings = [f for f in self._detector.find(body) if f.score >= self._min_score]
        if not findings:
            return body, {}
        self.pseudonymizer.reserve_literals(body)
        parts, introduced, cursor = [], {}, 0
        avoid = LiteralIndex(body) if len(findings) > PLAIN_QUERIES else body
        for finding in sorted(findings, key=lambda f: f.start):
            value = body[finding.start : finding.end]
            token = self.pseudonymizer.token_for(value, finding.kind, avoid=avoid)
            introduced[token] = value
            parts += [body[cursor : finding.start], token]
            cursor = finding.end
        parts.append(body[cursor:])
        return "".join(parts), introduced
