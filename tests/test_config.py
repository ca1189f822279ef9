"""Configuration: defaults, .env loading, validation errors and masking."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from veil.config import (
    ensure_home,
    load_settings,
    mask_secret,
    mask_url,
    settings_status,
)
from veil.errors import EXIT_USAGE, ConfigError

OPENAI_KEY = "sk-proj-Zq3v9XbT7LmN2pQr8sUvWx4yZa1f"


def write_env(path: Path, body: str, mode: int = 0o600) -> Path:
    path.write_text(body)
    path.chmod(mode)
    return path


def test_defaults_put_the_database_in_veil_home(veil_home: Path) -> None:
    settings = load_settings()
    assert settings.home == veil_home
    assert settings.effective_database_url == f"sqlite:///{veil_home / 'veil.db'}"
    assert settings.log_level == "INFO"


def test_relative_home_is_resolved_against_the_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VEIL_HOME")
    assert load_settings().home == Path.cwd() / ".veil"


def test_env_file_values_are_loaded() -> None:
    write_env(Path(".env"), "VEIL_LOG_LEVEL=debug\nOPENAI_API_KEY=" + OPENAI_KEY + "\n")
    settings = load_settings()
    assert settings.log_level == "DEBUG"
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == OPENAI_KEY


def test_process_environment_overrides_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(Path(".env"), "VEIL_LOG_LEVEL=DEBUG\n")
    monkeypatch.setenv("VEIL_LOG_LEVEL", "ERROR")
    assert load_settings().log_level == "ERROR"


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("veil_log_level", "error")
    assert load_settings().log_level == "ERROR"


def test_the_environment_wins_over_the_env_file_whichever_name_each_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_env(Path(".env"), "VEIL_OPENAI_BASE_URL=http://127.0.0.1:1/from-file\n")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:2/from-env")
    assert load_settings().openai_base_url == "http://127.0.0.1:2/from-env"


def test_the_veil_name_wins_over_the_provider_name_in_one_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:2/plain")
    monkeypatch.setenv("VEIL_OPENAI_BASE_URL", "http://127.0.0.1:3/veil")
    assert load_settings().openai_base_url == "http://127.0.0.1:3/veil"


def test_overrides_win_over_every_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_GATEWAY_PORT", "9000")
    assert load_settings(gateway_port=9100).gateway_port == 9100


def test_env_file_readable_by_others_is_refused_with_the_chmod_fix() -> None:
    path = write_env(Path(".env"), "OPENAI_API_KEY=" + OPENAI_KEY + "\n", mode=0o644)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert f"chmod 600 {path.absolute()}" in str(raised.value)
    assert OPENAI_KEY not in str(raised.value)
    assert raised.value.exit_code == EXIT_USAGE


def test_env_file_location_can_be_chosen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_env(tmp_path / "custom.env", "VEIL_LOG_LEVEL=WARNING\n")
    monkeypatch.setenv("VEIL_ENV_FILE", str(path))
    assert load_settings().log_level == "WARNING"


def test_invalid_log_level_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_LOG_LEVEL", "chatty")
    with pytest.raises(ConfigError, match="VEIL_LOG_LEVEL"):
        load_settings()


def test_a_phone_region_phone_numbers_are_unknown_in_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # UK was accepted, and then no national phone number was ever reported.
    monkeypatch.setenv("VEIL_PHONE_REGION", "UK")
    with pytest.raises(ConfigError, match=r"VEIL_PHONE_REGION .*the United Kingdom is GB"):
        load_settings()
    monkeypatch.setenv("VEIL_PHONE_REGION", "gb")
    assert load_settings().phone_region == "GB"


def test_malformed_database_url_names_the_variable_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VEIL_DATABASE_URL", "not a url with hunter2")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "VEIL_DATABASE_URL" in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://root:hunter2@db/veil", "unsupported backend"),
        ("postgresql+psycopg2://u:hunter2@db/veil", "psycopg2"),
        ("postgresql://u:hunter2@/veil", "no host"),
    ],
)
def test_unsupported_database_urls_are_refused(
    monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    monkeypatch.setenv("VEIL_DATABASE_URL", url)
    with pytest.raises(ConfigError, match=reason) as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)


def test_postgresql_urls_are_routed_through_psycopg3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_DATABASE_URL", "postgresql://veil@db.internal:5432/veil")
    settings = load_settings()
    assert settings.effective_database_url == "postgresql+psycopg://veil@db.internal:5432/veil"


def test_provider_base_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "ftp://example.com/v1")
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL must be an http"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "text", "reason"),
    [
        ("VEIL_GATEWAY_PORT", "70000", "must be between 1 and 65535"),
        ("VEIL_ADDRESS_BLOCKS", "maybe", "must be true or false"),
    ],
)
def test_an_invalid_value_names_the_variable_and_what_it_must_be(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str, reason: str
) -> None:
    monkeypatch.setenv(variable, text)
    with pytest.raises(ConfigError, match=f"{variable} {reason}"):
        load_settings()


def test_every_invalid_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_MAX_BODY_BYTES", "lots")
    monkeypatch.setenv("VEIL_UPSTREAM_TIMEOUT", "0")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert "VEIL_MAX_BODY_BYTES must be a whole number" in message
    assert "VEIL_UPSTREAM_TIMEOUT must be more than 0 seconds" in message


@pytest.mark.parametrize(("text", "value"), [("off", False), ("0", False), ("Yes", True)])
def test_switches_read_the_usual_words(
    monkeypatch: pytest.MonkeyPatch, text: str, value: bool
) -> None:
    monkeypatch.setenv("VEIL_ANALYTICS", text)
    assert load_settings().analytics is value


def test_blank_optional_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_NER_MODEL", "  ")
    monkeypatch.setenv("OPENAI_API_KEY", "")
    settings = load_settings()
    assert settings.ner_model is None
    assert settings.openai_api_key is None


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="gateway_prot"):
        load_settings(gateway_prot=9100)


def test_invalid_redis_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_REDIS_URL", "http://127.0.0.1:6379")
    with pytest.raises(ConfigError, match="VEIL_REDIS_URL"):
        load_settings()


def test_home_is_created_private(veil_home: Path) -> None:
    ensure_home(load_settings())
    assert stat.S_IMODE(veil_home.stat().st_mode) == 0o700


def test_home_that_is_a_file_is_refused(veil_home: Path) -> None:
    veil_home.write_text("not a directory")
    with pytest.raises(ConfigError, match="not a directory"):
        ensure_home(load_settings())


def test_mask_secret_reveals_only_a_prefix_and_three_characters() -> None:
    assert mask_secret(OPENAI_KEY) == "sk-…a1f"
    assert mask_secret("short") == "•••"


def test_mask_url_hides_password_and_query_values() -> None:
    masked = mask_url("redis://:hunter2@cache:6379/0?token=abc")
    assert masked == "redis://:***@cache:6379/0?token=***"


def test_status_masks_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    master = "q5Yk2b8vX0cJ3m4nR6tW9zA1sD7fG2hK4lP8oI3uE5w="
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("VEIL_MASTER_KEY", master)
    monkeypatch.setenv("VEIL_DATABASE_URL", "postgresql://veil:hunter2@db/veil")
    rows = {row.variable: row for row in settings_status(load_settings())}
    assert rows["OPENAI_API_KEY"].value == "sk-…a1f (configured)"
    assert rows["OPENAI_API_KEY"].source == "environment"
    assert rows["VEIL_MASTER_KEY"].value == "••• (configured)"
    assert rows["ANTHROPIC_API_KEY"].value == "✗ not configured"
    assert "hunter2" not in rows["VEIL_DATABASE_URL"].value
    dump = repr(rows)
    for secret in (OPENAI_KEY, master, "hunter2"):
        assert secret not in dump


def test_status_reports_values_from_the_env_file() -> None:
    write_env(Path(".env"), "VEIL_LOG_LEVEL=ERROR\n")
    rows = {row.variable: row for row in settings_status(load_settings())}
    assert rows["VEIL_LOG_LEVEL"].source == ".env"
    assert rows["VEIL_HOME"].source == "environment"
    assert rows["VEIL_REDIS_URL"].source == "default"


def test_settings_repr_does_not_leak_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    settings = load_settings()
    assert OPENAI_KEY not in repr(settings)
    assert OPENAI_KEY not in str(settings.openai_api_key)


def test_the_package_exposes_the_one_engine() -> None:
    import veil

    assert veil.redact("mail bob@example.com") == "mail [EMAIL]"
    assert veil.Detector is veil.detect.Detector


def test_the_recognizers_file_is_an_absolute_path(
    veil_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEIL_RECOGNIZERS", "rules/ours.yaml")
    assert load_settings().recognizers == Path.cwd() / "rules/ours.yaml"
    monkeypatch.setenv("VEIL_RECOGNIZERS", " ")
    assert load_settings().recognizers is None


def test_library_settings_read_only_the_named_variables_and_no_env_file(
    veil_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from veil.config import settings_from_environment

    monkeypatch.setenv("VEIL_PHONE_REGION", "de")
    monkeypatch.setenv("VEIL_LOG_LEVEL", "LOUD")  # not asked for: never read
    write_env(tmp_path / ".env", "VEIL_PHONE_REGION=GB\n", mode=0o644)  # an app's own file
    monkeypatch.setenv("VEIL_ENV_FILE", str(tmp_path / ".env"))
    settings = settings_from_environment("phone_region", "recognizers")
    assert (settings.phone_region, settings.log_level, settings.recognizers) == ("DE", "INFO", None)
    monkeypatch.setenv("VEIL_PHONE_REGION", "Germany")
    with pytest.raises(ConfigError, match="VEIL_PHONE_REGION"):
        settings_from_environment("phone_region")


def test_a_home_another_process_creates_at_the_same_moment_is_used(
    veil_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes starting on a fresh machine (`veil serve --workers 2`, two CLI runs)
    # both saw no VEIL_HOME; the second mkdir failed and so did that process.
    veil_home.mkdir(mode=0o700)
    monkeypatch.setattr(Path, "exists", lambda self: False)
    assert ensure_home(load_settings()) == veil_home
