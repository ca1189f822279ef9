"""Named policies: the shipped ``default`` and the files in ``$VEIL_HOME/policies``.

The gateway's virtual keys name a policy; ``veil policy`` installs, lists and removes
them. Every policy is identified by the SHA-256 of its file, which is what the audit
ledger records when a policy is installed, removed or loaded by a gateway.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from veil._files import write_atomically
from veil._yaml import read_text
from veil.errors import InputError
from veil.transform._policy import Policy, default_policy_text, parse_policy

DEFAULT_POLICY = "default"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class StoredPolicy:
    """One named policy: where it lives (None: shipped with Veil) and its digest."""

    name: str
    path: Path | None
    sha256: str
    policy: Policy


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PolicyStore:
    """The named policies of one ``VEIL_HOME``."""

    def __init__(self, home: Path) -> None:
        self.directory = home / "policies"

    def __repr__(self) -> str:
        return f"PolicyStore({str(self.directory)!r})"

    def path(self, name: str) -> Path:
        if not NAME.match(name):
            raise InputError(
                f"Invalid policy name {name!r}.",
                hint="Use lower case letters, digits, '_' or '-' (the file name without .yaml).",
            )
        return self.directory / f"{name}.yaml"

    def names(self) -> list[str]:
        """``default`` and every installed name, sorted."""
        files = self.directory.glob("*.yaml") if self.directory.is_dir() else []
        return [
            DEFAULT_POLICY,
            *sorted(p.stem for p in files if NAME.match(p.stem) and p.stem != DEFAULT_POLICY),
        ]

    def get(self, name: str) -> StoredPolicy:
        """The policy ``name``, validated (an :class:`InputError` naming the line)."""
        text = self.text(name)
        if name == DEFAULT_POLICY:
            return StoredPolicy(
                DEFAULT_POLICY, None, _digest(text), parse_policy(text, origin=DEFAULT_POLICY)
            )
        path = self.path(name)
        return StoredPolicy(name, path, _digest(text), parse_policy(text, origin=str(path)))

    def text(self, name: str) -> str:
        """The YAML of ``name`` as stored, valid or not."""
        if name == DEFAULT_POLICY:
            return default_policy_text()
        path = self.path(name)
        if not path.is_file():
            raise InputError(
                f"No policy named {name!r}: {path} does not exist.",
                hint=f"Install one with `veil policy install FILE --name {name}` "
                "(see docs/policies.md), or use the policy `default`.",
            )
        return read_text(path, "policy")

    def signature(self, name: str) -> tuple[int, int, int] | None:
        """What changes when the policy's file is replaced or edited (None: no file)."""
        if name == DEFAULT_POLICY:
            return (0, 0, 0)
        try:
            stat = os.stat(self.path(name))
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def install(self, name: str, text: str, *, origin: str) -> tuple[StoredPolicy, str | None]:
        """Validate ``text`` and store it as ``name`` (atomically: a running gateway
        reads the old file or the new one, never a mix); returns the stored policy and
        the digest of the one it replaced, if any."""
        if name == DEFAULT_POLICY:
            raise InputError(
                "The policy `default` is the one shipped with Veil and cannot be replaced.",
                hint="Install yours under another name and give it to the virtual keys "
                "(`veil keys create --policy NAME`).",
            )
        path = self.path(name)
        policy = parse_policy(text, origin=origin)
        previous = _digest(read_text(path, "policy")) if path.is_file() else None
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomically(path, text.encode("utf-8"))
        return StoredPolicy(name, path, _digest(text), policy), previous

    def remove(self, name: str) -> str:
        """Delete an installed policy (valid or not); returns its digest."""
        if name == DEFAULT_POLICY:
            raise InputError("The policy `default` is shipped with Veil and cannot be removed.")
        text = self.text(name)
        self.path(name).unlink()
        return _digest(text)
