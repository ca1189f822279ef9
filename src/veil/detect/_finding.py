"""The :class:`Finding` contract shared by every surface (DESIGN.md: Contracts)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple


class Level(StrEnum):
    """Data classification: secrets and content are CRITICAL, metadata LOW."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Finding(NamedTuple):
    """One detected value: half-open ``[start, end)`` offsets into the original ``str``.

    A finding never holds the value itself, so its ``repr`` is safe to log. Immutable; a
    named tuple rather than a frozen dataclass because the engine makes one per candidate
    and a tuple is built in a third of the time (frozen dataclasses set each field through
    ``object.__setattr__``). ``len(finding)`` is the length of the span, not of the tuple.
    """

    start: int
    end: int
    kind: str
    score: float
    level: Level
    source: str
    validated: bool = False

    def __len__(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "kind": self.kind,
            "score": round(self.score, 3),
            "level": self.level.value,
            "source": self.source,
        }

    def shifted(self, offset: int) -> Finding:
        return Finding(
            self.start + offset,
            self.end + offset,
            self.kind,
            self.score,
            self.level,
            self.source,
            self.validated,
        )
