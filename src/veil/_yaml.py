"""YAML loading that remembers where each item came from, for errors that name the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from veil.errors import InputError


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records the 1-based line of every mapping as ``__line__``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def load_yaml(text: str, *, origin: str) -> Any:
    """Parse ``text`` safely; mappings carry ``__line__``. Syntax errors name the line."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506  veil: allow=VEIL005 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        raise InputError(
            f"{where}: invalid YAML ({exc.problem}).", hint="Fix the syntax at that line."
        ) from None
    except yaml.YAMLError:
        raise InputError(f"{origin}: invalid YAML.", hint="Check the file's syntax.") from None


def read_text(path: Path, what: str = "file") -> str:
    """A UTF-8 file's text, or an :class:`InputError` naming it and the reason."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot read the {what} {path}: {exc.strerror}.") from None


def read_yaml_file(path: Path) -> Any:
    return load_yaml(read_text(path), origin=str(path))


def strip_lines(value: Any) -> Any:
    """A copy of a loaded document without the ``__line__`` bookkeeping keys."""
    if isinstance(value, dict):
        return {k: strip_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [strip_lines(v) for v in value]
    return value
