"""Settings from the environment and a ``.env`` file, validated at start-up.

Precedence, highest first: process environment, ``.env`` (python-dotenv, through
pydantic-settings), defaults. A ``.env`` readable by group or others is refused before it
is read, because it usually holds provider keys. Every invalid value fails with the
variable's name and the reason, never with the value itself.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from veil.errors import ConfigError

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

ENV_FILE_VARIABLE = "VEIL_ENV_FILE"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def env_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the ``.env`` file is looked for: ``$VEIL_ENV_FILE`` or ``./.env``."""
    env = os.environ if environ is None else environ
    return Path(env.get(ENV_FILE_VARIABLE) or ".env").expanduser().absolute()


def private_file_problem(path: Path) -> str | None:
    """Why ``path`` is not private to its owner, or ``None`` when it is (or is absent)."""
    if os.name != "posix":
        return None
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & 0o077:
        return f"{path} has mode {stat.S_IMODE(mode):04o}: group or others can access it"
    return None


def check_private_file(path: Path, what: str) -> None:
    """Refuse a secret-bearing file (``.env``, key file) that others can read."""
    problem = private_file_problem(path)
    if problem is not None:
        raise ConfigError(
            f"Refusing to read the {what}: {problem}.",
            hint=f"Make it private to your user: chmod 600 {path}",
        )


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mask_secret(value: str) -> str:
    """Partial reveal for an API key or token: a short vendor prefix and the last 3 chars.

    ``sk-proj-abc…xyz`` becomes ``sk-…xyz``. Short values reveal nothing, since three
    characters of an eight-character secret is too much of it.
    """
    if len(value) < 16:
        return "•••"
    prefix_match = re.match(r"[A-Za-z]{1,5}[-_]", value)
    prefix = prefix_match.group(0) if prefix_match else ""
    return f"{prefix}…{value[-3:]}"


def mask_url(url: str) -> str:
    """The URL with any password and query values hidden, safe to print and log."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if sep else f"{user}@{hostport}"
    query = "&".join(
        f"{pair.partition('=')[0]}=***" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, ""))


def _http_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host name")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Veil's process-wide settings. Build them with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="VEIL_", extra="ignore", case_sensitive=False, hide_input_in_errors=True
    )

    home: Path = Field(default=Path(".veil"), description="Where Veil keeps its state")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in VEIL_HOME"
    )
    log_level: LogLevel = Field(default="INFO", description="Log level of Veil's own logs")
    redis_url: str | None = Field(default=None, description="Redis shared by gateway replicas")
    ner_model: str | None = Field(
        default=None, description="Installed spaCy model for PERSON/LOCATION/ORG (veil[ner])"
    )
    phone_region: str = Field(
        default="US", description="Region hint for national phone numbers (ISO 3166)"
    )
    address_blocks: bool | None = Field(
        default=None,
        description="Cover multi-line postal addresses whole (default: on with NER)",
    )
    master_key: SecretStr | None = Field(
        default=None, description="Root key, base64 of 32 bytes (else keyring or passphrase)"
    )
    passphrase: SecretStr | None = Field(
        default=None,
        description="Unlocks a passphrase-protected root key (veil init --passphrase)",
    )
    kms_url: str | None = Field(
        default=None,
        description="Key-management service holding the root key (local:/path or a plugin)",
    )
    openai_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VEIL_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="OpenAI-compatible upstream",
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VEIL_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL"),
        description="Anthropic upstream",
    )
    scan_key: SecretStr | None = Field(
        default=None, description="Key of veil scan's fingerprints (share it with CI)"
    )
    gateway_host: str = Field(default="127.0.0.1", description="Address veil serve listens on")
    gateway_port: int = Field(default=8787, ge=1, le=65535, description="Port of veil serve")
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest request body the gateway accepts"
    )
    upstream_timeout: float = Field(
        default=120.0, gt=0, description="Seconds to wait for an upstream's answer (then 504)"
    )
    upstream_connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to connect to an upstream (retried, then 502)"
    )
    analytics: bool = Field(
        default=True, description="Record an analytics event per gateway call (no content)"
    )
    models: str | None = Field(
        default=None,
        description="Model routing: glob=upstream,... (default claude-*=anthropic, *=openai)",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENAI_API_KEY"),
        description="Provider key (overrides the vault)",
    )
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY"),
        description="Provider key (overrides the vault)",
    )

    @field_validator(
        "master_key",
        "scan_key",
        "openai_api_key",
        "anthropic_api_key",
        "database_url",
        "ner_model",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("phone_region", mode="after")
    @classmethod
    def _region(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError("must be a two-letter region code such as US, GB or DE")
        return value.upper()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return normalize_database_url(value)

    @field_validator("redis_url", mode="after")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("openai_base_url", "anthropic_base_url", mode="after")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or SQLite inside ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'veil.db'}"

    def provider_endpoints(self) -> dict[str, str]:
        """Configured upstream base URLs by provider name."""
        endpoints = {"openai": self.openai_base_url, "anthropic": self.anthropic_base_url}
        return {name: url for name, url in endpoints.items() if url}


def normalize_database_url(value: str) -> str:
    """Accept SQLite and PostgreSQL URLs; PostgreSQL always goes through psycopg 3."""
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(
            "is not a database URL; use sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite":
        return value
    if backend in ("postgresql", "postgres"):
        if "+" in url.drivername and driver != "psycopg":
            raise ValueError(f"uses the {driver} driver; use postgresql+psycopg:// (psycopg 3)")
        if not url.host and not url.query.get("host"):
            raise ValueError("has no host; use postgresql://USER@HOST:PORT/DB")
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"uses the unsupported backend {backend!r}; use sqlite or postgresql")


def _mask_database_url(value: str) -> str:
    return make_url(value).render_as_string(hide_password=True)


def _variable_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        return str(first)
    return f"VEIL_{field.upper()}"


def load_settings(*, env_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from the environment and the ``.env`` file, or fail with a clear error.

    ``overrides`` take precedence over both (used by tests and embedding applications).
    """
    path = env_file if env_file is not None else env_file_path()
    if path.is_file():
        check_private_file(path, ".env file")
    try:
        return Settings(_env_file=path if path.is_file() else None, **overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            reason = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{_variable_name(field)} {reason}")
        raise ConfigError(
            "Invalid configuration: " + "; ".join(problems) + ".",
            hint="Fix the variable in the environment or in the .env file and try again.",
        ) from None


def ensure_home(settings: Settings) -> Path:
    """Create ``VEIL_HOME`` private to the user (0700) if it does not exist yet."""
    home = settings.home
    if not home.exists():
        try:
            home.mkdir(mode=0o700, parents=True)
            home.chmod(0o700)  # mkdir's mode is filtered by the umask
        except OSError as exc:
            raise ConfigError(
                f"Cannot create VEIL_HOME at {home}: {exc.strerror}.",
                hint="Point VEIL_HOME at a directory you can write.",
            ) from None
    elif not home.is_dir():
        raise ConfigError(
            f"VEIL_HOME {home} exists and is not a directory.",
            hint="Point VEIL_HOME at a directory.",
        )
    return home


@dataclass(frozen=True, slots=True)
class SettingStatus:
    """One row of ``veil config status``: never holds a secret value unmasked."""

    variable: str
    value: str
    source: str
    secret: bool
    configured: bool
    description: str


def settings_status(settings: Settings, *, env_file: Path | None = None) -> list[SettingStatus]:
    """Every setting with its displayed (masked) value and where it came from."""
    path = env_file if env_file is not None else env_file_path()
    from_file = {k.upper() for k in dotenv_values(path)} if path.is_file() else set()
    from_env = {k.upper() for k in os.environ}
    rows: list[SettingStatus] = []
    for field, info in Settings.model_fields.items():
        variable = _variable_name(field)
        names = [variable]
        if isinstance(info.validation_alias, AliasChoices):
            names = [str(choice) for choice in info.validation_alias.choices]
        if any(name in from_env for name in names):
            source = "environment"
        elif any(name in from_file for name in names):
            source = ".env"
        else:
            source = "default"
        raw = getattr(settings, field)
        secret = isinstance(raw, SecretStr)
        configured = raw is not None
        if isinstance(raw, SecretStr):
            hidden = field in ("master_key", "passphrase", "scan_key")
            shown = ("•••" if hidden else mask_secret(raw.get_secret_value())) + " (configured)"
        elif raw is None:
            if field == "database_url":
                shown = _mask_database_url(settings.effective_database_url) + " (default)"
                configured = True
            else:
                shown = "✗ not configured"
        elif field == "database_url":
            shown = _mask_database_url(str(raw))
        elif field in ("redis_url", "openai_base_url", "anthropic_base_url"):
            shown = mask_url(str(raw))
        else:
            shown = str(raw)
        rows.append(
            SettingStatus(variable, shown, source, secret, configured, info.description or "")
        )
    return rows


__all__ = [
    "ENV_FILE_VARIABLE",
    "LogLevel",
    "SettingStatus",
    "Settings",
    "check_private_file",
    "ensure_home",
    "env_file_path",
    "is_loopback_host",
    "load_settings",
    "mask_secret",
    "mask_url",
    "normalize_database_url",
    "private_file_problem",
    "settings_status",
]
