"""The :class:`Finding` contract shared by every surface (DESIGN.md: Contracts)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    """Data classification: secrets and content are CRITICAL, metadata LOW."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value: half-open ``[start, end)`` offsets into the original ``str``.

    A finding never holds the value itself, so its ``repr`` is safe to log.
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
