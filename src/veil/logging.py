"""Privacy-aware logging: secrets and personal data never reach a log line.

Three lines for any application::

    import logging, veil.logging
    logging.basicConfig(level=logging.INFO)
    veil.logging.install()

:func:`install` adds a :class:`SanitizingFilter` to the root logger (or a named one) and to
its handlers. The filter passes the message and its arguments, ``extra`` fields, formatted
exceptions and stack traces through the one detection engine and applies the policy's
``logging`` surface (by default: secrets masked ``sk-…a1f``, phone numbers
``XXX-XXX-4567``, e-mail addresses ``[EMAIL]``, other personal data redacted). Fields
named like credentials or message content (``password``, ``api_key``, ``authorization``,
``cookie``, ``message_text``, ``body``...) are masked whatever their value.

:func:`structlog_processor` does the same for structlog event dicts.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from veil.transform import Policy, Redactor

__all__ = [
    "SanitizingFilter",
    "VeilLogger",
    "get_logger",
    "install",
    "log_performance",
    "sanitize_fields",
    "structlog_processor",
]

# Structured keys whose values are masked whatever they contain.
SENSITIVE_FIELD = re.compile(
    r"(?i)(?:^|[_.-])(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|"
    r"access[_-]?key|private[_-]?key|auth(?:orization)?|cookie|set[_-]?cookie|session|"
    r"credentials?|message[_-]?text|message|content|body|prompt|completion)(?:$|[_.-])"
)
FIELD_MASK = "[REDACTED]"

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "veil_sanitized"}

_NO_CONTEXT: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "veil_log_context", default=_NO_CONTEXT
)
_install_lock = threading.Lock()


def _is_sensitive_field(name: str) -> bool:
    return bool(SENSITIVE_FIELD.search(name))


class SanitizingFilter(logging.Filter):
    """Rewrites a record in place so that no detected value survives; never drops it."""

    def __init__(self, policy: Policy | None = None) -> None:
        super().__init__()
        self._policy = policy
        # Built on the first record: a program that installs the filter and never logs
        # (most CLI commands) does not pay for loading the detection engine.
        self._redactor: Redactor | None = None
        self._redactor_lock = threading.Lock()
        if policy is not None:
            # A policy given here is checked now (its kinds against the recognizers):
            # an error at install time, never in the middle of logging a record.
            from veil.transform import Redactor

            self._redactor = Redactor(policy=policy, surface="logging")

    def _get_redactor(self) -> Redactor:
        redactor = self._redactor
        if redactor is None:
            with self._redactor_lock:
                if self._redactor is None:
                    from veil.transform import Redactor

                    self._redactor = Redactor(policy=self._policy, surface="logging")
                redactor = self._redactor
        return redactor

    def sanitize(self, text: str) -> str:
        if not text:
            return text
        return self._get_redactor().redact(text).text

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "veil_sanitized", False):
            return True  # a record passes the logger's filter and then the handler's
        # The message with its arguments, formatted once: arguments are where values hide.
        message = record.getMessage()
        cleaned = self.sanitize(message)
        if cleaned is not message or record.args:
            record.msg, record.args = cleaned, None
        fields = record.__dict__
        context = _context.get()
        if context:
            for key, value in context.items():
                fields.setdefault(key, value)
        for key in fields.keys() - _RECORD_ATTRIBUTES:  # the ``extra`` fields
            fields[key] = self._field(key, fields[key])
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = self.sanitize(_FORMATTER.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.sanitize(record.exc_text)
        if record.stack_info:
            record.stack_info = self.sanitize(record.stack_info)
        record.veil_sanitized = True
        return True

    def _field(self, key: str, value: Any) -> Any:
        if _is_sensitive_field(key):
            return FIELD_MASK
        if isinstance(value, str):
            return self.sanitize(value)
        if isinstance(value, Mapping):
            return sanitize_fields(value, self.sanitize)
        return value


_FORMATTER = logging.Formatter()


def sanitize_fields(fields: Mapping[str, Any], sanitize: Callable[[str], str]) -> dict[str, Any]:
    """A copy of ``fields`` with sensitive keys masked and string values sanitized."""
    cleaned: dict[str, Any] = {}
    for key, value in fields.items():
        if _is_sensitive_field(str(key)):
            cleaned[key] = FIELD_MASK
        elif isinstance(value, str):
            cleaned[key] = sanitize(value)
        elif isinstance(value, Mapping):
            cleaned[key] = sanitize_fields(value, sanitize)
        elif isinstance(value, list | tuple):
            cleaned[key] = type(value)(
                sanitize(item) if isinstance(item, str) else item for item in value
            )
        else:
            cleaned[key] = value
    return cleaned


def install(
    policy: Policy | None = None, *, logger: str | logging.Logger | None = None
) -> SanitizingFilter:
    """Sanitize every record of ``logger`` (default: the root logger) and its handlers.

    Idempotent: a second call returns the filter already installed (and adds it to
    handlers attached since). Records that reach a handler attached later to another
    logger are not covered; call ``install`` for that logger too.
    """
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    with _install_lock:
        existing = next((f for f in target.filters if isinstance(f, SanitizingFilter)), None)
        installed = existing or SanitizingFilter(policy)
        if existing is None:
            target.addFilter(installed)
        for handler in target.handlers:
            if not any(isinstance(f, SanitizingFilter) for f in handler.filters):
                handler.addFilter(installed)
        return installed


def configure_process(level: str) -> None:
    """Veil's own processes (the CLI, gateway workers): stderr logging at ``level``, every
    record through the sanitizing filter, Alembic's migration narration at debug only."""
    logging.basicConfig(level=level, stream=sys.stderr)
    install()
    logging.getLogger("alembic").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


def structlog_processor(
    policy: Policy | None = None,
) -> Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]:
    """A structlog processor with the same behaviour as :class:`SanitizingFilter`."""
    sanitizer = SanitizingFilter(policy)

    def processor(
        _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        cleaned = sanitize_fields(event_dict, sanitizer.sanitize)
        event = event_dict.get("event")
        if isinstance(event, str):
            cleaned["event"] = sanitizer.sanitize(event)
        event_dict.clear()
        event_dict.update(cleaned)
        return event_dict

    return processor


class VeilLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger with :meth:`add_context`: fields added to every record in a block."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})

    @contextlib.contextmanager
    def add_context(self, **fields: Any) -> Iterator[None]:
        token = _context.set({**_context.get(), **fields})
        try:
            yield
        finally:
            _context.reset(token)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        # The context reaches records through SanitizingFilter, for every logger alike;
        # the caller's own ``extra`` is passed through untouched.
        return msg, kwargs


def get_logger(name: str) -> VeilLogger:
    return VeilLogger(logging.getLogger(name))


P = ParamSpec("P")
R = TypeVar("R")


def _size(value: Any) -> int | None:
    try:
        return len(value)
    except TypeError:
        return None


def log_performance(
    name: str, *, logger: logging.Logger | None = None, level: int = logging.DEBUG
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Log how long ``name`` took and the sizes of its arguments and result — never
    their contents."""
    target = logger or logging.getLogger("veil.performance")

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            outcome = "error"
            result_size: int | None = None
            try:
                result = function(*args, **kwargs)
                outcome, result_size = "ok", _size(result)
                return result
            finally:
                if target.isEnabledFor(level):
                    target.log(
                        level,
                        "%s %s in %.3f ms",
                        name,
                        outcome,
                        (time.perf_counter() - started) * 1e3,
                        extra={
                            "perf_name": name,
                            "perf_arg_sizes": [_size(arg) for arg in args],
                            "perf_result_size": result_size,
                        },
                    )

        return wrapper

    return decorate
