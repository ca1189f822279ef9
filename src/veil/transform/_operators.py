"""Operators: what replaces a detected value. One implementation per operator, used by
every surface (gateway, logging, scan, datasets)."""

from __future__ import annotations

import base64
import functools
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from veil._hmac import KeyedHmac
from veil.config import mask_secret
from veil.detect import kind_info
from veil.errors import ConfigError, IntegrityError
from veil.transform._policy import Rule

__all__ = ["Rule", "decrypt_tokens", "encrypt", "keyed_hash", "mask", "mask_value", "redact"]

ENCRYPTED_TOKEN = re.compile(r"<ENC:([A-Z][A-Z0-9_]*):([A-Za-z0-9_-]{22,})>")


def redact(kind: str, rule: Rule) -> str:
    return rule.label if rule.label is not None else f"[{kind}]"


def mask(value: str, kind: str, rule: Rule) -> str:
    """Partial reveal: secrets show a vendor prefix and 3 characters (``sk-…a1f``);
    e-mail addresses keep the domain; everything else keeps its last ``reveal``
    alphanumerics and its punctuation (``XXX-XXX-4567``)."""
    info = kind_info(kind)
    if info is not None and info.secret:
        return mask_secret(value)
    if kind == "EMAIL" and "@" in value:
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}{rule.mask_char * 3}@{domain}"
    # Walk from the end: the last ``reveal`` letters/digits stay, punctuation stays.
    keep = rule.reveal
    out = list(value)
    for index in range(len(out) - 1, -1, -1):
        if out[index].isalnum():
            if keep:
                keep -= 1
            else:
                out[index] = rule.mask_char
    return "".join(out)


def mask_value(value: str, kind: str) -> str:
    """The default partial reveal for ``kind``, for reports that must not print values."""
    return mask(value, kind, Rule(operator="mask"))


def keyed_hash(value: str, kind: str, key: bytes | None) -> str:
    """``<KIND:hex>``: HMAC-SHA-256 under a secret key, so short values (phone numbers,
    ids) cannot be recovered by hashing every candidate. There is no unkeyed variant."""
    if key is None:
        raise ConfigError(
            "The policy uses the hash operator but no hash key is available.",
            hint="Configure a root key (VEIL_MASTER_KEY); Veil derives the hash key from it.",
        )
    digest = _hmac_under(key).hexdigest(f"{kind}\0{value}".encode())
    return f"<{kind}:{digest[:16]}>"


@functools.lru_cache(maxsize=16)
def _hmac_under(key: bytes) -> KeyedHmac:
    """One keyed object per key (a policy run hashes every value under the same one)."""
    return KeyedHmac(key)


def encrypt(value: str, kind: str, key: bytes | None) -> str:
    """Deterministic AES-SIV (equal values give equal tokens), reversible by key holders."""
    if key is None:
        raise ConfigError(
            "The policy uses the encrypt operator but no encryption key is available.",
            hint="Configure a root key (VEIL_MASTER_KEY); Veil derives the key from it.",
        )
    sealed = AESSIV(key).encrypt(value.encode(), [kind.encode()])
    return f"<ENC:{kind}:{base64.urlsafe_b64encode(sealed).decode().rstrip('=')}>"


def decrypt_tokens(text: str, key: bytes) -> str:
    """Every ``<ENC:KIND:…>`` token in ``text`` replaced by its plaintext."""
    cipher = AESSIV(key)

    def replace(match: re.Match[str]) -> str:
        raw = match.group(2)
        try:
            blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            return cipher.decrypt(blob, [match.group(1).encode()]).decode()
        except (InvalidTag, ValueError):
            raise IntegrityError(
                "An encrypted token does not decrypt under this key: it was altered or "
                "encrypted under another key.",
                hint="Use the root key that encrypted it.",
            ) from None

    return ENCRYPTED_TOKEN.sub(replace, text)
