"""Every failure a user can cause is a :class:`VeilError` subclass.

Each class carries the CLI exit code of DESIGN.md (0 ok, 1 findings/blocked, 2 usage,
3 integrity failure, 4 other error). Messages say what is wrong and what to do; they
never contain secret values or raw user content, so they are safe to log and print.
"""

from __future__ import annotations

import traceback

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTEGRITY = 3
EXIT_ERROR = 4


def failure_place(exc: BaseException) -> str:
    """``RuntimeError at _app.py:512``: what an unexpected failure was and where it was
    raised, for logs and messages. Never the exception's message, which could quote the
    input (a prompt, a file's content)."""
    frames = traceback.extract_tb(exc.__traceback__)
    place = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{place}"


class VeilError(Exception):
    """Base class of every error Veil raises on purpose."""

    exit_code: int = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} {hint}")


class ConfigError(VeilError):
    """A setting is missing, malformed or unsafe (for example a world-readable .env)."""

    exit_code = EXIT_USAGE


class InputError(VeilError):
    """Input given on the command line, in a file or in a request is malformed."""

    exit_code = EXIT_USAGE


class KeyMaterialError(VeilError):
    """A key is missing, wrong (bad passphrase) or cannot unwrap the data it should."""

    exit_code = EXIT_ERROR


class KeyShreddedError(KeyMaterialError):
    """The data key was destroyed on purpose (a data subject's erasure): what it sealed
    can no longer be read, by design."""


class IntegrityError(VeilError):
    """Stored data was altered: a tampered ledger, a corrupted or truncated ciphertext."""

    exit_code = EXIT_INTEGRITY


class PolicyViolationError(VeilError):
    """A policy blocked the operation (for example a prompt that carries a secret).

    ``kinds`` names what was found (never the values), for callers that report it.
    """

    exit_code = EXIT_FINDINGS

    def __init__(
        self, message: str, *, hint: str | None = None, kinds: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, hint=hint)
        self.kinds = kinds


class ProviderError(VeilError):
    """An upstream model provider or external service failed or is unreachable."""

    exit_code = EXIT_ERROR


class StorageError(VeilError):
    """The database is unreachable, not migrated, or a write failed."""

    exit_code = EXIT_ERROR


__all__ = [
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "EXIT_INTEGRITY",
    "EXIT_OK",
    "EXIT_USAGE",
    "ConfigError",
    "InputError",
    "IntegrityError",
    "KeyMaterialError",
    "PolicyViolationError",
    "ProviderError",
    "StorageError",
    "VeilError",
    "failure_place",
]
