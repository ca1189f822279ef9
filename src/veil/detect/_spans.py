"""Span look-ups by bisection, for rules that ask many times which findings overlap a
range: a scan per question made them quadratic on long texts."""

from __future__ import annotations

import bisect
import itertools


class Spans:
    """Spans sorted by start (they may overlap), asked which overlap a range: a bisection
    instead of a scan, so a long text with thousands of findings stays linear-ish."""

    __slots__ = ("_ends", "_reach", "_starts")

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self._starts = [start for start, _ in spans]
        self._ends = [end for _, end in spans]
        # the largest end so far: non-decreasing, so it can be bisected
        self._reach = list(itertools.accumulate(self._ends, max))

    def hits(self, start: int, end: int) -> range:
        """Indices of the spans that may overlap [start, end) (check ``overlaps``)."""
        return range(bisect.bisect_right(self._reach, start), bisect.bisect_left(self._starts, end))

    def overlaps(self, index: int, start: int, end: int) -> bool:
        return self._starts[index] < end and start < self._ends[index]

    def any(self, start: int, end: int) -> bool:
        """Whether any span overlaps [start, end)."""
        return any(self.overlaps(i, start, end) for i in self.hits(start, end))

    def contains(self, start: int, end: int) -> bool:
        """Whether one span holds all of [start, end)."""
        return any(self._starts[i] <= start and end <= self._ends[i] for i in self.hits(start, end))


class DisjointSpans:
    """Spans added one by one, never overlapping each other: whether a new one would
    overlap any, in O(log n)."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def any(self, start: int, end: int) -> bool:
        index = bisect.bisect_left(self._starts, end) - 1  # the last one starting before end
        return index >= 0 and self._ends[index] > start

    def add(self, start: int, end: int) -> None:
        index = bisect.bisect_left(self._starts, start)
        self._starts.insert(index, start)
        self._ends.insert(index, end)
