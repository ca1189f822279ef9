"""``veil doctor``: checks the installation and says how to fix each problem."""

from __future__ import annotations

import shutil
import stat
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

import typer
from rich.markup import escape

from veil.cli._app import app, out, print_json
from veil.config import (
    Settings,
    env_file_path,
    is_loopback_host,
    load_settings,
    mask_url,
    private_file_problem,
    unknown_variables,
)
from veil.errors import EXIT_FINDINGS, VeilError
from veil.store import create_engine_for, migration_status, safe_url

if TYPE_CHECKING:
    from veil.detect import RecognizerSpec

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def _gitignore_covers(env_file: Path) -> tuple[bool | None, str]:
    """Whether git would ignore ``env_file``; ``None`` when no repository decides."""
    git = shutil.which("git")
    if git is not None:
        result = subprocess.run(
            [git, "-C", str(env_file.parent), "check-ignore", "-q", env_file.name],
            capture_output=True,
            check=False,
            timeout=10,
        )
        if result.returncode in (0, 1):
            return result.returncode == 0, "git check-ignore"
    gitignore = env_file.parent / ".gitignore"
    if not gitignore.is_file():
        return None, "no git repository and no .gitignore"
    patterns = {line.strip().lstrip("/") for line in gitignore.read_text().splitlines()}
    return bool(patterns & {env_file.name, ".env*", "*.env"}), str(gitignore)


def check_env_file(env_file: Path) -> list[Check]:
    if not env_file.is_file():
        return [Check(".env file", "ok", f"none at {env_file}; settings come from the environment")]
    checks: list[Check] = []
    problem = private_file_problem(env_file)
    if problem is None:
        checks.append(Check(".env mode", "ok", f"{env_file} is private (0600)"))
    else:
        checks.append(Check(".env mode", "fail", problem, f"chmod 600 {env_file}"))
    ignored, how = _gitignore_covers(env_file)
    if ignored is True:
        checks.append(Check(".env ignored by git", "ok", f"covered ({how})"))
    elif ignored is False:
        checks.append(
            Check(
                ".env ignored by git",
                "fail",
                f"{env_file.name} is not in .gitignore: it could be committed with its keys",
                f"echo '{env_file.name}' >> {env_file.parent / '.gitignore'}",
            )
        )
    else:
        checks.append(
            Check(
                ".env ignored by git",
                "warn",
                f"cannot tell ({how})",
                f"add '{env_file.name}' to .gitignore before putting this directory under git",
            )
        )
    return checks


def check_home(settings: Settings) -> Check:
    home = settings.home
    if not home.exists():
        return Check("VEIL_HOME", "warn", f"{home} does not exist yet", "veil db upgrade")
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        return Check(
            "VEIL_HOME",
            "fail",
            f"{home} has mode {mode:04o}; others can read Veil's state",
            f"chmod 700 {home}",
        )
    return Check("VEIL_HOME", "ok", f"{home} (mode {mode:04o})")


def check_database(settings: Settings) -> list[Check]:
    url = settings.effective_database_url
    if settings.database_url is None and not settings.home.exists():
        return [Check("database", "fail", f"{safe_url(url)} does not exist yet", "veil db upgrade")]
    try:
        engine = create_engine_for(url)
    except VeilError as exc:
        return [Check("database", "fail", exc.message, exc.hint)]
    try:
        status = migration_status(engine)
    except VeilError as exc:
        return [Check("database", "fail", exc.message, exc.hint)]
    finally:
        engine.dispose()
    shown = safe_url(engine.url)
    checks = [Check("database reachable", "ok", shown)]
    if status.up_to_date:
        checks.append(Check("database migrated", "ok", f"revision {status.current}"))
    else:
        checks.append(
            Check(
                "database migrated",
                "fail",
                f"revision {status.current or 'none'}, newest is {status.head}",
                "veil db upgrade",
            )
        )
    return checks


def check_providers(settings: Settings) -> list[Check]:
    from veil.gateway._upstreams import base_url_problem

    endpoints = settings.provider_endpoints()
    if not endpoints:
        return [Check("provider endpoints", "ok", "none configured (the echo upstream is used)")]
    checks: list[Check] = []
    for name, url in endpoints.items():
        parts = urlsplit(url)
        problem = base_url_problem(name, url)
        if parts.scheme == "https" or is_loopback_host(parts.hostname):
            checks.append(
                Check(f"{name} endpoint", "ok", mask_url(url))
                if problem is None
                else Check(
                    f"{name} endpoint",
                    "warn",
                    f"{mask_url(url)} {problem}",
                    f"check {name.upper()}_BASE_URL",
                )
            )
        else:
            checks.append(
                Check(
                    f"{name} endpoint",
                    "fail",
                    f"{mask_url(url)} is plain HTTP to a remote host: prompts would travel "
                    "unencrypted",
                    f"use https:// for the {name} base URL",
                )
            )
    return checks


def check_ner(settings: Settings) -> Check:
    from veil.detect import model_available, spacy_available

    if settings.ner_model is None:
        return Check(
            "NER (names, places, organizations)",
            "warn",
            "not configured: PERSON, LOCATION and ORGANIZATION are not detected",
            "pip install 'veil[ner]', install a spaCy model (python -m spacy download "
            "en_core_web_sm), then set VEIL_NER_MODEL=en_core_web_sm",
        )
    if not spacy_available():
        return Check(
            "NER (names, places, organizations)",
            "fail",
            f"VEIL_NER_MODEL={settings.ner_model} but spaCy is not installed",
            "pip install 'veil[ner]'",
        )
    if not model_available(settings.ner_model):
        return Check(
            "NER (names, places, organizations)",
            "fail",
            f"the spaCy model {settings.ner_model} is not installed (Veil never downloads)",
            f"python -m spacy download {settings.ner_model}",
        )
    return Check("NER (names, places, organizations)", "ok", f"model {settings.ner_model}")


def check_policies(settings: Settings) -> Check:
    """Installed policies must load: a key naming a broken one fails its requests in any
    gateway process that has not loaded it yet."""
    from veil.detect import configured_kinds
    from veil.transform import DEFAULT_POLICY, PolicyStore

    store = PolicyStore(settings.home)
    try:
        kinds = configured_kinds(settings)
    except VeilError:  # a broken recognizers file: its own check reports it
        kinds = configured_kinds(replace(settings, recognizers=None))
    names = [name for name in store.names() if name != DEFAULT_POLICY]
    broken = []
    for name in names:
        try:
            store.get(name).policy.check_kinds(kinds)
        except VeilError as exc:
            broken.append(f"{name} ({exc.message})")
    if broken:
        return Check(
            "policies",
            "fail",
            f"{len(broken)} of {len(names)} cannot load: {'; '.join(broken)}",
            "fix the file, then veil policy check FILE && veil policy install FILE",
        )
    detail = f"{len(names)} installed, all valid" if names else "only the shipped default"
    return Check("policies", "ok", detail)


# The score a finding needs (the detector's and the policies' default).
MIN_SCORE = 0.5


def check_recognizers(settings: Settings) -> Check | None:
    """The user's recognizers file (VEIL_RECOGNIZERS) must load: every surface reads it
    when a process starts, and a broken one stops `veil serve`."""
    if settings.recognizers is None:
        return None
    from veil.detect import load_recognizer_file
    from veil.detect._detector import CONTEXT_BOOST
    from veil.detect._registry import load_public_values

    try:
        specs = load_recognizer_file(settings.recognizers)
        values = load_public_values(settings.recognizers)
    except VeilError as exc:
        return Check(
            "your recognizers", "fail", exc.message, "fix the file or unset VEIL_RECOGNIZERS"
        )
    detail = (
        f"{len(specs)} recognizer(s), {len(values)} public value(s) from {settings.recognizers}"
    )
    mute = _mute_recognizers(specs)
    if mute:
        return Check(
            "your recognizers",
            "warn",
            f"{detail}; {', '.join(mute)} can never report: the score is below the "
            f"{MIN_SCORE} a finding needs, with no validator or context words to raise it",
            "raise its score, or add context words (found nearby, they add "
            f"{CONTEXT_BOOST}) or a validator",
        )
    return Check("your recognizers", "ok", detail)


def _mute_recognizers(specs: list[RecognizerSpec]) -> list[str]:
    """Recognizers whose best possible score stays below MIN_SCORE."""
    from veil.detect._detector import CONTEXT_BOOST, VALIDATED_SCORE

    mute = []
    for spec in specs:
        best = max(spec.score, VALIDATED_SCORE if spec.validator else 0.0)
        if spec.context:
            best += CONTEXT_BOOST
        if spec.enabled and best < MIN_SCORE:
            mute.append(spec.id)
    return mute


def check_unknown_variables(env_file: Path) -> Check | None:
    """VEIL_ variables nothing reads: a misspelt name leaves its setting at the default."""
    unknown = unknown_variables(env_file)
    if not unknown:
        return None
    named = "; ".join(
        f"{name} ({where})" + (f", did you mean {close}?" if close else "")
        for name, where, close in unknown
    )
    return Check(
        "unknown variables",
        "warn",
        f"not Veil settings, so ignored: {named}",
        "rename or remove them (`veil config status` lists every setting)",
    )


def run_checks() -> list[Check]:
    env_file = env_file_path()
    checks = check_env_file(env_file)
    if any(check.status == "fail" and check.name == ".env mode" for check in checks):
        checks.append(Check("settings", "skip", "not read: fix the .env mode first"))
        return checks
    try:
        settings = load_settings(env_file=env_file)
    except VeilError as exc:
        checks.append(Check("settings", "fail", exc.message, exc.hint))
        return checks
    checks.append(Check("settings", "ok", "valid"))
    unknown = check_unknown_variables(env_file)
    if unknown is not None:
        checks.append(unknown)
    checks.append(check_home(settings))
    checks.extend(check_database(settings))
    checks.extend(check_providers(settings))
    checks.append(check_ner(settings))
    recognizers = check_recognizers(settings)
    if recognizers is not None:
        checks.append(recognizers)
    checks.append(check_policies(settings))
    return checks


_MARKS = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]", "skip": "[dim]-[/]"}


@app.command("doctor")
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the installation: file modes, .gitignore, database, provider endpoints,
    the NER model, installed policies.

    Each problem comes with the command that fixes it. Exits 1 when a check fails.
    """
    checks = run_checks()
    failed = any(check.status == "fail" for check in checks)
    if as_json:
        print_json({"ok": not failed, "checks": [asdict(check) for check in checks]})
    else:
        from rich.table import Table  # loaded by the commands that print one

        table = Table(title="veil doctor", title_justify="left", show_lines=False)
        table.add_column("", width=1)
        table.add_column("check", style="bold")
        table.add_column("detail")
        table.add_column("fix", style="cyan")
        for check in checks:
            table.add_row(
                _MARKS[check.status],
                escape(check.name),
                escape(check.detail),
                escape(check.fix or ""),
            )
        out.print(table)
        out.print("[red]Some checks failed.[/]" if failed else "[green]All checks passed.[/]")
    if failed:
        raise typer.Exit(EXIT_FINDINGS)
