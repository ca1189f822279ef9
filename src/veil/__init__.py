"""Veil: a local-first privacy and security layer for applications that use AI models."""

from __future__ import annotations

__version__ = "0.1.0"

from veil.config import Settings, load_settings
from veil.errors import VeilError

__all__ = ["Settings", "VeilError", "__version__", "load_settings"]
