"""Names of a package loaded on first use (PEP 562 module ``__getattr__``)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any


def lazy_attribute(
    namespace: MutableMapping[str, Any], homes: Mapping[str, str], package: str, name: str
) -> Any:
    """Import ``name`` from the module ``homes`` names for it and keep it in
    ``namespace`` (the package's globals), so the next access costs nothing."""
    home = homes.get(name)
    if home is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    namespace[name] = value
    return value
