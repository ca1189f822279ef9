"""Settings from the environment and a ``.env`` file, validated at start-up.

Precedence, highest first: process environment, ``.env`` (read with python-dotenv),
defaults; names are matched case-insensitively. A ``.env`` readable by group or others
is refused before it is read, because it usually holds provider keys. Every invalid
value fails with the variable's name and the reason, never with the value itself.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from veil.errors import ConfigError

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_LOG_LEVELS: tuple[LogLevel, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

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


class Secret:
    """A secret setting: its repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('•••')"

    __str__ = __repr__


# Each parser turns a variable's text into the setting's value or raises ValueError with
# the reason (never with the value: it may be a secret). Typed values (overrides passed
# by code) are checked the same way.


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """An unset setting: absent, or set to an empty or blank value."""

    def optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return parse(value)

    return optional


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


def _secret(value: Any) -> Secret:
    return value if isinstance(value, Secret) else Secret(_text(value))


def _home(value: Any) -> Path:
    return Path(value).expanduser().absolute()


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = _text(value).strip().lower()
    if word in ("1", "true", "yes", "on", "y", "t"):
        return True
    if word in ("0", "false", "no", "off", "n", "f"):
        return False
    raise ValueError("must be true or false (also 1/0, yes/no, on/off)")


def _integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def integer(value: Any) -> int:
        try:
            number = value if isinstance(value, int) else int(_text(value).strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
        if number < low or (high is not None and number > high):
            raise ValueError(
                f"must be between {low} and {high}" if high else f"must be at least {low}"
            )
        return number

    return integer


def _seconds(value: Any) -> float:
    try:
        number = float(value if isinstance(value, int | float) else _text(value).strip())
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not number > 0:
        raise ValueError("must be more than 0 seconds")
    return number


def _log_level(value: Any) -> str:
    level = _text(value).strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
    return level


def _region(value: Any) -> str:
    if not re.fullmatch(r"[A-Za-z]{2}", _text(value)):
        raise ValueError("must be a two-letter region code such as US, GB or DE")
    region = str(value).upper()
    problem = phone_region_problem(region) if region != "US" else None
    if problem is not None:
        raise ValueError(problem)
    return region


def phone_region_problem(region: str) -> str | None:
    """Why ``region`` cannot be a phone region hint, or None. With one phonenumbers does
    not know (``UK``), no national number would ever validate and none be reported."""
    import phonenumbers  # loaded only when a region is checked

    if region in phonenumbers.SUPPORTED_REGIONS:
        return None
    guess = " (the United Kingdom is GB)" if region.upper() == "UK" else ""
    return f"is not a region code phone numbers are known in{guess}"


def _redis_url(value: Any) -> str:
    if urlsplit(_text(value)).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return str(value)


def _http_url(value: Any) -> str:
    parts = urlsplit(_text(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host name")
    return str(value).rstrip("/")


def _setting(default: Any, parse: Callable[[Any], Any], description: str, *names: str) -> Any:
    """A field of :class:`Settings`: its default, parser, description and the variables
    it is read from, the one that wins first (default: ``VEIL_`` + the field's name)."""
    return field(
        default=default, metadata={"parse": parse, "description": description, "names": names}
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Veil's process-wide settings. Build them with :func:`load_settings`."""

    home: Path = _setting(Path(".veil"), _home, "Where Veil keeps its state")
    database_url: str | None = _setting(
        None,
        _optional(lambda value: normalize_database_url(_text(value))),
        "SQLAlchemy URL; default SQLite in VEIL_HOME",
    )
    log_level: LogLevel = _setting("INFO", _log_level, "Log level of Veil's own logs")
    redis_url: str | None = _setting(
        None, _optional(_redis_url), "Redis shared by gateway replicas"
    )
    ner_model: str | None = _setting(
        None, _optional(_text), "Installed spaCy model for PERSON/LOCATION/ORG (veil[ner])"
    )
    phone_region: str = _setting("US", _region, "Region hint for national phone numbers (ISO 3166)")
    address_blocks: bool | None = _setting(
        None,
        _optional(_flag),
        "Cover multi-line postal addresses whole (default: on with NER)",
    )
    recognizers: Path | None = _setting(
        None,
        _optional(_home),
        "YAML file of your own recognizers and public values, for every surface",
    )
    master_key: Secret | None = _setting(
        None, _optional(_secret), "Root key, base64 of 32 bytes (else keyring or passphrase)"
    )
    passphrase: Secret | None = _setting(
        None,
        _optional(_secret),
        "Unlocks a passphrase-protected root key (veil init --passphrase)",
    )
    kms_url: str | None = _setting(
        None,
        _optional(_text),
        "Key-management service holding the root key (local:/path or a plugin)",
    )
    openai_base_url: str | None = _setting(
        None,
        _optional(_http_url),
        "OpenAI-compatible upstream",
        "VEIL_OPENAI_BASE_URL",
        "OPENAI_BASE_URL",
    )
    anthropic_base_url: str | None = _setting(
        None,
        _optional(_http_url),
        "Anthropic upstream",
        "VEIL_ANTHROPIC_BASE_URL",
        "ANTHROPIC_BASE_URL",
    )
    scan_key: Secret | None = _setting(
        None, _optional(_secret), "Key of veil scan's fingerprints (share it with CI)"
    )
    gateway_host: str = _setting("127.0.0.1", _text, "Address veil serve listens on")
    gateway_port: int = _setting(8787, _integer(1, 65535), "Port of veil serve")
    max_body_bytes: int = _setting(
        4 * 1024 * 1024, _integer(1024), "Largest request body the gateway accepts"
    )
    upstream_timeout: float = _setting(
        120.0, _seconds, "Seconds to wait for an upstream's answer (then 504)"
    )
    upstream_connect_timeout: float = _setting(
        5.0, _seconds, "Seconds to connect to an upstream (retried, then 502)"
    )
    analytics: bool = _setting(
        True, _flag, "Record an analytics event per gateway call (no content)"
    )
    models: str | None = _setting(
        None,
        _optional(_text),
        "Model routing: glob=upstream,... (default claude-*=anthropic, *=openai)",
    )
    openai_api_key: Secret | None = _setting(
        None, _optional(_secret), "Provider key (overrides the vault)", "OPENAI_API_KEY"
    )
    anthropic_api_key: Secret | None = _setting(
        None, _optional(_secret), "Provider key (overrides the vault)", "ANTHROPIC_API_KEY"
    )

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or SQLite inside ``home``."""
        return self.database_url or f"sqlite:///{self.home / 'veil.db'}"

    def provider_endpoints(self) -> dict[str, str]:
        """Configured upstream base URLs by provider name."""
        endpoints = {"openai": self.openai_base_url, "anthropic": self.anthropic_base_url}
        return {name: url for name, url in endpoints.items() if url}


_FIELDS = {item.name: item for item in fields(Settings)}


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


def _variable_names(field: str) -> tuple[str, ...]:
    """The variables a setting is read from, the one that wins first."""
    names: tuple[str, ...] = _FIELDS[field].metadata["names"]
    return names or (f"VEIL_{field.upper()}",)


def _from_variables(*layers: Mapping[str, str | None]) -> dict[str, str]:
    """Each setting's raw value from ``layers`` (a later layer wins), by field name."""
    values: dict[str, str] = {}
    for layer in layers:
        upper = {name.upper(): value for name, value in layer.items() if value is not None}
        for field_name in _FIELDS:
            for name in _variable_names(field_name):
                if name in upper:
                    values[field_name] = upper[name]
                    break
    return values


# VEIL_ variables that are read outside Settings: the .env location, a rotation's new
# key, the gateway workers' metrics, and the test and benchmark tooling.
_OTHER_VARIABLES = frozenset(
    {
        ENV_FILE_VARIABLE,
        "VEIL_MASTER_KEY_NEXT",
        "VEIL_WORKERS_METRICS_DIR",
        "VEIL_TEST_POSTGRES_URL",
        "VEIL_TEST_REDIS_URL",
        "VEIL_REQUIRE_SERVICES",
        "VEIL_TEST_WORKERS",
        "VEIL_BENCH_REDIS_URL",
    }
)


def unknown_variables(env_file: Path | None = None) -> list[tuple[str, str, str | None]]:
    """``VEIL_`` variables in the environment or the ``.env`` file that nothing reads (a
    misspelt ``VEIL_REDIS_ULR`` is otherwise ignored without a word): ``(name, where,
    the known name it is closest to or None)``."""
    known = {name for field in _FIELDS for name in _variable_names(field)} | _OTHER_VARIABLES
    known_veil = sorted(name for name in known if name.startswith("VEIL_"))
    path = env_file if env_file is not None else env_file_path()
    from_file = dotenv_values(path) if path.is_file() else {}
    found: list[tuple[str, str, str | None]] = []
    for where, names in (("environment", os.environ), (str(path), from_file)):
        for name in sorted(names):
            upper = name.upper()
            if upper.startswith("VEIL_") and upper not in known:
                close = difflib.get_close_matches(upper, known_veil, n=1, cutoff=0.8)
                found.append((name, where, close[0] if close else None))
    return found


def load_settings(*, env_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from the environment and the ``.env`` file, or fail with a clear error.

    ``overrides`` (by field name) take precedence over both (used by tests and embedding
    applications). Every invalid value is named by its variable, never echoed.
    """
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"Unknown settings: {', '.join(unknown)}.")
    path = env_file if env_file is not None else env_file_path()
    if path.is_file():
        check_private_file(path, ".env file")
    from_file = dotenv_values(path) if path.is_file() else {}
    return _parsed({**_from_variables(from_file, os.environ), **overrides})


def _parsed(raw: Mapping[str, Any]) -> Settings:
    """Settings from raw values by field name (defaults for the rest), every bad value
    named by its variable."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, item in _FIELDS.items():
        try:
            values[name] = item.metadata["parse"](raw.get(name, item.default))
        except (ValueError, TypeError) as exc:
            problems.append(f"{_variable_names(name)[0]} {exc}")
    if problems:
        raise ConfigError(
            "Invalid configuration: " + "; ".join(problems) + ".",
            hint="Fix the variable in the environment or in the .env file and try again.",
        )
    return Settings(**values)


def settings_from_environment(*fields: str) -> Settings:
    """Defaults, with only ``fields`` read from the process environment (never the
    ``.env`` file): for library code such as ``veil.redact`` or the logging filter,
    which must not fail on a setting it does not use or on an application's own
    ``.env``. A bad value of one of ``fields`` fails like :func:`load_settings`."""
    raw = _from_variables(os.environ)
    return _parsed({name: raw[name] for name in fields if name in raw})


def ensure_home(settings: Settings) -> Path:
    """Create ``VEIL_HOME`` private to the user (0700) if it does not exist yet."""
    home = settings.home
    if not home.exists():
        try:
            home.mkdir(mode=0o700, parents=True)
            home.chmod(0o700)  # mkdir's mode is filtered by the umask
        except FileExistsError:
            pass  # another Veil process starting at the same moment made it first
        except OSError as exc:
            raise ConfigError(
                f"Cannot create VEIL_HOME at {home}: {exc.strerror}.",
                hint="Point VEIL_HOME at a directory you can write.",
            ) from None
    if not home.is_dir():
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
    for setting, info in _FIELDS.items():
        names = _variable_names(setting)
        variable = names[0]
        if any(name in from_env for name in names):
            source = "environment"
        elif any(name in from_file for name in names):
            source = ".env"
        else:
            source = "default"
        raw = getattr(settings, setting)
        secret = isinstance(raw, Secret)
        configured = raw is not None
        if isinstance(raw, Secret):
            hidden = setting in ("master_key", "passphrase", "scan_key")
            shown = ("•••" if hidden else mask_secret(raw.get_secret_value())) + " (configured)"
        elif raw is None:
            if setting == "database_url":
                shown = _mask_database_url(settings.effective_database_url) + " (default)"
                configured = True
            else:
                shown = "✗ not configured"
        elif setting == "database_url":
            shown = _mask_database_url(str(raw))
        elif setting in ("redis_url", "openai_base_url", "anthropic_base_url"):
            shown = mask_url(str(raw))
        else:
            shown = str(raw)
        rows.append(
            SettingStatus(variable, shown, source, secret, configured, info.metadata["description"])
        )
    return rows


__all__ = [
    "ENV_FILE_VARIABLE",
    "LogLevel",
    "Secret",
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
