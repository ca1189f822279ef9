"""veil.logging: nothing sensitive reaches a log line, whatever the handler or formatter."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

import veil.logging as veil_logging

EMAIL = "bob.secret@example.com"
PHONE = "212-555-0147"
KEY = "sk-proj-Q7mZ2vX9pL4tR8wK1nB6cY3hJ5dF0gS2aE7uI9oP4lM8kN3"
PLANTED = (EMAIL, PHONE, KEY)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger(f"test.{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(note)s"))
    logger.addHandler(handler)
    veil_logging.install(logger=logger)
    yield logger, stream
    logger.removeHandler(handler)


def test_message_arguments_are_sanitized_by_the_default_policy(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("user %s phone %s key %s", EMAIL, PHONE, KEY, extra={"note": "-"})
    assert stream.getvalue() == "INFO user [EMAIL] phone XXX-XXX-0147 key sk-…kN3 -\n"


def test_a_policy_naming_an_unknown_kind_is_refused_at_install_not_while_logging() -> None:
    from veil.errors import InputError
    from veil.transform import parse_policy

    policy = parse_policy("version: 1\nkinds:\n  EMIAL: {operator: keep}\n")
    logger = logging.getLogger("test.unknown-kind")
    with pytest.raises(InputError, match=r"kinds\.EMIAL"):
        veil_logging.install(policy, logger=logger)
    assert not logger.filters


def test_extra_fields_are_sanitized_and_sensitive_names_masked(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("login", extra={"note": f"from {EMAIL}", "password": "hunter2", "api_key": "x"})
    assert stream.getvalue() == "INFO login from [EMAIL]\n"
    record = logging.LogRecord("x", logging.INFO, "x", 1, "m", None, None)
    record.__dict__.update({"Authorization": "Basic abc", "user_id": 7})
    veil_logging.SanitizingFilter().filter(record)
    assert record.__dict__["Authorization"] == veil_logging.FIELD_MASK
    assert record.__dict__["user_id"] == 7


def test_tracebacks_and_stack_traces_are_sanitized(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise ValueError(f"cannot reach {EMAIL} with key {KEY}")
    except ValueError:
        logger.exception("failed", extra={"note": "-"}, stack_info=True)
    output = stream.getvalue()
    assert "Traceback" in output
    assert "ValueError: cannot reach [EMAIL] with key sk-…kN3" in output
    assert all(value not in output for value in PLANTED)


def test_install_is_idempotent(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, _ = captured
    first = veil_logging.install(logger=logger)
    second = veil_logging.install(logger=logger)
    assert first is second
    assert len([f for f in logger.filters if isinstance(f, veil_logging.SanitizingFilter)]) == 1
    assert len(logger.handlers[0].filters) == 1


def test_records_from_child_loggers_are_sanitized_at_the_handler() -> None:
    stream = io.StringIO()
    parent = logging.getLogger("test.parent")
    parent.propagate = False
    handler = logging.StreamHandler(stream)
    parent.addHandler(handler)
    veil_logging.install(logger=parent)
    logging.getLogger("test.parent.child").warning("mail %s", EMAIL)
    assert stream.getvalue() == "mail [EMAIL]\n"
    parent.removeHandler(handler)


def test_logging_from_many_threads_stays_sanitized(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    def work(n: int) -> None:
        for i in range(50):
            logger.info("t%d %s %s", n, f"user{i}@example.com", KEY, extra={"note": PHONE})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 400
    assert all(
        "@example.com" not in line and KEY not in line and PHONE not in line for line in lines
    )


def test_context_fields_are_added_and_sanitized(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    veil_logger = veil_logging.VeilLogger(logger)
    with veil_logger.add_context(note=f"request for {EMAIL}"):
        veil_logger.info("handled")
    veil_logger.info("outside", extra={"note": "-"})
    assert stream.getvalue() == "INFO handled request for [EMAIL]\nINFO outside -\n"


def test_log_performance_logs_sizes_not_contents(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured

    @veil_logging.log_performance("lookup", logger=logger, level=logging.INFO)
    def lookup(query: str) -> list[str]:
        return [query, query]

    assert lookup(EMAIL) == [EMAIL, EMAIL]
    records: list[logging.LogRecord] = []
    logger.addFilter(lambda record: records.append(record) or True)
    lookup("x" * 10)
    assert records[0].__dict__["perf_arg_sizes"] == [10]
    assert records[0].__dict__["perf_result_size"] == 2
    assert EMAIL not in stream.getvalue()


def test_structlog_processor_sanitizes_the_event_dict() -> None:
    output = io.StringIO()
    structlog.configure(
        processors=[veil_logging.structlog_processor(), structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.PrintLoggerFactory(output),
        cache_logger_on_first_use=False,
    )
    try:
        structlog.get_logger().info(
            f"mail {EMAIL}", phone=PHONE, token=KEY, nested={"cookie": "c", "note": EMAIL}
        )
    finally:
        structlog.reset_defaults()
    line = output.getvalue()
    assert all(value not in line for value in PLANTED)
    assert "event='mail [EMAIL]'" in line
    assert "token='[REDACTED]'" in line
    assert "'cookie': '[REDACTED]'" in line


def test_cli_at_debug_level_never_logs_or_echoes_planted_values(tmp_path: Path) -> None:
    """Veil's own commands, at DEBUG, with secrets and PII in their inputs."""
    planted = f"contact {EMAIL} or {PHONE}; key {KEY}\n"
    source = tmp_path / "in.txt"
    source.write_text(planted)
    bad_policy = tmp_path / "policy.yaml"
    bad_policy.write_text(f"version: 1\ndefault: {{operator: {KEY}}}\n")
    env = {"VEIL_LOG_LEVEL": "DEBUG", "VEIL_HOME": str(tmp_path / "home"), "PATH": "/usr/bin"}
    commands = [
        ["detect", str(source)],
        ["detect", str(source), "--json"],
        ["redact", str(source)],
        ["redact", str(source), "--policy", str(bad_policy)],
        ["pseudonymize", str(source), "--map", str(tmp_path / "m.map")],
        ["doctor"],
        ["config", "status"],
    ]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "veil", *command],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=tmp_path,
        )
        for value in PLANTED:
            assert value not in result.stdout, (command, "stdout")
            assert value not in result.stderr, (command, "stderr")
