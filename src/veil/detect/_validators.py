"""Validators run on candidate matches only: checksums and structure, never guesses.

Each returns a :class:`Verdict`: ``REJECT`` drops the candidate, ``WEAK`` keeps it only
when context words are near, ``PLAUSIBLE`` keeps it at the recognizer's score, ``VALID``
marks it validated (which wins overlaps and raises the score). Validators are looked up
by name from recognizer data.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from enum import Enum

import phonenumbers


class Verdict(Enum):
    REJECT = 0
    WEAK = 1  # kept only with context words nearby
    PLAUSIBLE = 2
    VALID = 3


Validator = Callable[[str, "ValidatorOptions"], Verdict]


class ValidatorOptions:
    """Settings validators may consult (region hint for phone numbers)."""

    __slots__ = ("phone_region",)

    def __init__(self, phone_region: str = "US") -> None:
        self.phone_region = phone_region


_NOT_DIGIT = re.compile(r"\D")


def _digits(value: str) -> str:
    return _NOT_DIGIT.sub("", value)


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


_CARD_RANGES: tuple[tuple[str, tuple[int, ...]], ...] = (
    # (prefix, allowed lengths): Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay,
    # Maestro. Issuer ranges keep a Luhn-valid order number from passing as a card.
    ("4", (13, 16, 19)),
    *((str(p), (16,)) for p in range(51, 56)),
    *((str(p), (16,)) for p in range(2221, 2721)),
    ("34", (15,)),
    ("37", (15,)),
    ("6011", (16, 19)),
    ("65", (16, 19)),
    *((str(p), (16, 19)) for p in range(644, 650)),
    *((str(p), (16, 17, 18, 19)) for p in range(3528, 3590)),
    ("2131", (15,)),
    ("1800", (15,)),
    ("36", (14, 16, 19)),
    ("38", (14, 16)),
    ("39", (14, 16)),
    *((str(p), (14, 16)) for p in range(300, 306)),
    ("62", (16, 17, 18, 19)),
    ("50", (12, 13, 14, 15, 16, 17, 18, 19)),
    *((str(p), (12, 13, 14, 15, 16, 17, 18, 19)) for p in range(56, 59)),
    ("6", (12, 13, 14, 15, 16, 17, 18, 19)),
    ("35", (16, 17, 18, 19)),
    ("0604", (12, 13, 14, 15, 16, 17, 18, 19)),
)


_CARD_LENGTHS: dict[str, frozenset[int]] = {}
for _prefix, _lengths in _CARD_RANGES:
    _CARD_LENGTHS[_prefix] = _CARD_LENGTHS.get(_prefix, frozenset()) | frozenset(_lengths)


def credit_card(value: str, _options: ValidatorOptions) -> Verdict:
    digits = _digits(value)
    if not 12 <= len(digits) <= 19 or len(set(digits)) < 2 or not luhn_ok(digits):
        return Verdict.REJECT
    for size in (4, 3, 2, 1):
        if len(digits) in _CARD_LENGTHS.get(digits[:size], ()):
            return Verdict.VALID
    return Verdict.REJECT


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban(value: str, _options: ValidatorOptions) -> Verdict:
    compact = re.sub(r"[\s-]", "", value).upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return Verdict.REJECT
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return Verdict.VALID if int(numeric) % 97 == 1 else Verdict.REJECT


def us_ssn(value: str, _options: ValidatorOptions) -> Verdict:
    digits = _digits(value)
    if len(digits) != 9:
        return Verdict.REJECT
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return Verdict.REJECT
    if len(set(digits)) == 1:
        return Verdict.REJECT
    if digits in ("123456789", "078051120", "219099999"):
        # Never issued (a counting sample, the Woolworth wallet card, an advertisement),
        # but what people type for an SSN: one next to SSN words is reported as one
        # (else the phone pattern took it as a phone number).
        return Verdict.WEAK
    separators = {ch for ch in value if not ch.isdigit()}
    return Verdict.VALID if len(separators) == 1 else Verdict.PLAUSIBLE


def ip_address(value: str, _options: ValidatorOptions) -> Verdict:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return Verdict.REJECT
    return Verdict.VALID


_EXTENSION = re.compile(r"x|ext")
# How a US Social Security number is written, which no numbering plan groups a phone
# number as: a number so written that is no phone number of the region hint is one only
# next to phone words (a sample SSN such as 123-45-6789 is not a phone number).
_SSN_SHAPE = re.compile(r"\d{3}([- ])\d{2}\1\d{4}")
_GROUP_SEPARATORS = re.compile(r"[\s().-]+")


def phone(value: str, options: ValidatorOptions) -> Verdict:
    """Valid for the region hint (or its own country code): VALID. A grouped national
    number of another country: PLAUSIBLE when long, WEAK (needs context) when short."""
    digits = _digits(_EXTENSION.split(value, maxsplit=1)[0])
    groups = [g for g in _GROUP_SEPARATORS.split(value) if g]
    if not 7 <= len(digits) <= 15 or len(set(digits)) < 3 or _counting(groups):
        return Verdict.REJECT
    formatted = value.startswith(("+", "(")) or "(0)" in value
    international = value.startswith("+") or digits.startswith(("00", "011"))
    if international or _fits_region(digits, options.phone_region):
        region = "" if value.startswith("+") else options.phone_region
        status = _phonenumbers_status(value, region)
        if status == "invalid-syntax":
            return Verdict.REJECT
        if status == "valid":
            return Verdict.VALID
        if status == "possible" and formatted:
            return Verdict.PLAUSIBLE
    if len(groups) < 2 or _SSN_SHAPE.fullmatch(value):
        return Verdict.WEAK
    return Verdict.PLAUSIBLE if len(digits) >= 9 or formatted else Verdict.WEAK


def _counting(groups: list[str]) -> bool:
    """Short numbers counting up by one ("12 13 14 15 16": a calendar row, page numbers,
    a table's index), which no numbering plan writes a phone number as."""
    if len(groups) < 4 or any(len(g) > 2 or not g.isdigit() for g in groups):
        return False
    numbers = [int(g) for g in groups]
    return all(b == a + 1 for a, b in itertools.pairwise(numbers))


@functools.lru_cache(maxsize=8192)
def _phonenumbers_status(value: str, region: str) -> str:
    """``phonenumbers``' verdict, cached: parsing is the slowest step of detection and
    logs and conversations repeat the same numbers."""
    try:
        number = phonenumbers.parse(value, region or None)
    except phonenumbers.NumberParseException:
        return "invalid-syntax"
    if phonenumbers.is_valid_number(number):
        return "valid"
    return "possible" if phonenumbers.is_possible_number(number) else "impossible"


@functools.lru_cache(maxsize=32)
def _region_lengths(region: str) -> tuple[frozenset[int], str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None:
        return frozenset(range(4, 18)), ""
    lengths = set(metadata.general_desc.possible_length or ())
    lengths |= set(metadata.general_desc.possible_length_local_only or ())
    return frozenset(lengths), metadata.national_prefix or ""


def _fits_region(digits: str, region: str) -> bool:
    """Whether a national number could be valid in ``region`` at all: parsing with
    ``phonenumbers`` is the slowest step of detection, so skip it when the length rules
    the number out (the structural checks below still apply)."""
    lengths, prefix = _region_lengths(region)
    if len(digits) in lengths:
        return True
    return bool(prefix) and digits.startswith(prefix) and len(digits) - len(prefix) in lengths


def date(value: str, _options: ValidatorOptions) -> Verdict:
    """The pattern already bounds month and day; a date wins over digit-run look-alikes."""
    return Verdict.VALID


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for index in range(5):
            checksum ^= generator[index] if (top >> index) & 1 else 0
    return checksum


def crypto_wallet(value: str, _options: ValidatorOptions) -> Verdict:
    if value.startswith("0x"):
        body = value[2:]
        return Verdict.VALID if len(body) == 40 and len(set(body.lower())) > 4 else Verdict.REJECT
    lowered = value.lower()
    if lowered.startswith(("bc1", "tb1")):
        hrp, _, data = lowered.rpartition("1")
        if any(ch not in _BECH32 for ch in data) or len(data) < 7:
            return Verdict.REJECT
        expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
        checksum = _bech32_polymod(expanded + [_BECH32.index(c) for c in data])
        return Verdict.VALID if checksum in (1, 0x2BC830A3) else Verdict.REJECT
    number = 0
    for char in value:
        index = _B58.find(char)
        if index < 0:
            return Verdict.REJECT
        number = number * 58 + index
    raw = number.to_bytes(25, "big") if number.bit_length() <= 200 else b""
    if len(raw) != 25:
        return Verdict.REJECT
    digest = hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()
    return Verdict.VALID if digest[:4] == raw[21:] else Verdict.REJECT


def uk_nino(value: str, _options: ValidatorOptions) -> Verdict:
    compact = re.sub(r"\s", "", value).upper()
    prefix = compact[:2]
    if prefix in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ") or any(c in "DFIQUV" for c in prefix):
        return Verdict.REJECT
    if prefix[1] == "O":
        return Verdict.REJECT
    return Verdict.VALID


def _b64url_json(segment: str) -> object:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded))


def jwt(value: str, _options: ValidatorOptions) -> Verdict:
    parts = value.split(".")
    if len(parts) != 3:
        return Verdict.REJECT
    try:
        header = _b64url_json(parts[0])
        _b64url_json(parts[1])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return Verdict.REJECT
    return Verdict.VALID if isinstance(header, dict) and "alg" in header else Verdict.REJECT


_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|0+|1+|a+|changeme|change_me|password|passwd|pass|secret|token|test|"
    r"null|none|nil|true|false|undefined|example|redacted|dummy|placeholder|"
    r"your[_-]?\w*|<[^>]*>?|\[[^\]]*\]?|\$\{.*\}|\{\{.*\}\}|%\(.*\)s|\$\w+)$"
    r"|x{6,}|X{6,}|\*{4,}|#{4,}|\.{3}|_here\b|here$|abc123|1234567890|abcdefghij|EXAMPLE|>$"
    # ids written as the documentation's ``1234`` (``xoxp-1234-1234-1234-…``)
    r"|1234[-_.:]1234[-_.:]1234"
)
# Code, not key material: ``X25519.KeyPair``, ``kVK_Return.u16``, ``key_length``.
_CODE_IDENTIFIER = re.compile(
    r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\.(?:[A-Za-z_]+|\w{1,4})$|^[a-z]+(?:_[a-z]+)+$"
    # a dotted name of short parts starting with letters: ``hashlib.sha256``
    r"|^[a-z_][a-z0-9_]{0,15}(?:\.[A-Za-z_][A-Za-z0-9_]{0,15})+$"
)
# Short lowercase words joined by '-' or '_', perhaps numbered: ``base64-encoded``,
# ``utf8_bytes``, a resource name such as ``cmp2-qat-1208358310``.
_SHORT_WORDS = re.compile(r"^[a-z]{2,}\d{0,3}(?:[-_][a-z]{2,}\d{0,3}){1,3}(?:[-_]\d{1,12})?$")
# Shaped like a Telegram bot token (bot id, ``:``, secret): the Telegram recognizer judges
# it, and one it rejects (a bot id of 4 or 17 digits) is no token.
_TELEGRAM_SHAPED = re.compile(r"^\d+:A[\w-]{30,40}$")
# A variable named after a credential is code, not the credential: ``url_password``.
_NAMED_CREDENTIAL = re.compile(
    r"^[a-z][a-z0-9]*_[a-z0-9_]*$|^[a-z][a-z0-9_]*_[a-z0-9]+$", re.IGNORECASE
)
_CREDENTIAL_WORD = re.compile(r"pass(?:word|wd|phrase)?|pwd|secret|token", re.IGNORECASE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WORD_RUNS = re.compile(r"[A-Z][a-z]{2,}")


def _wordy_identifier(value: str) -> bool:
    """``Ed25519PublicKey``, ``SecretStr``: a name made of words, not key material."""
    if len(value) > 40 or not _IDENTIFIER.match(value):
        return False
    words = _WORD_RUNS.findall(value)
    letters = sum(1 for ch in value if ch.isalpha())
    coverage = sum(len(word) for word in words) / letters if letters else 0.0
    return len(words) >= 2 and coverage >= (0.75 if len(value) <= 24 else 0.9)


def _code_name(value: str) -> bool:
    """Names in code, not key material: ``X509_ATTRIBUTE``, ``__darwin_ucontext64_t``,
    ``symbol2label``, ``ucontext64``, ``priority=-1``, ``py-cvs-2001_07_13``."""
    # a keyword argument (``authkey=self._authkey``, ``access=KEY_READ``, ``priority=-1``)
    if re.fullmatch(r"[\w.-]+=(?:[A-Za-z_]\w*(?:\.\w+)+|[A-Z][A-Z0-9_]+|[\w.+-]{1,8})", value):
        return True
    if re.search(r"\d{4}[-_]\d{2}[-_]\d{2}", value):
        return True
    if re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", value) and all(
        len(part) <= 12 for part in value.split("_")
    ):
        return True
    parts = value.split("_")
    if _IDENTIFIER.match(value) and (
        (len(parts) >= 4 and all(len(part) <= 12 for part in parts))
        or (len(parts) >= 3 and len(value) <= 24 and all(len(part) <= 8 for part in parts))
    ):
        return True
    return bool(re.fullmatch(r"[a-z]{3,}\d{1,2}[a-z]{3,}|[a-z]{4,}\d{1,3}", value))


_PATH_OR_URL = re.compile(
    r"://|^[~./]|/[\w.-]+\.\w{1,5}$|\.(?:pem|p12|pfx|key|crt|cer|jks|keystore|keytab|"
    r"json|ya?ml|txt|xml|html?|js|py|png|jpe?g|gif|svg|ico|css)$",
    re.IGNORECASE,
)
_VERSIONISH = re.compile(r"\d+\.\d+(?:\.\d+)+|^v?\d+(?:\.\d+)+")


def _placeholder(value: str) -> bool:
    if _PLACEHOLDER.search(value):
        return True
    # One character dominating a long value (AAAA…, 1111…) is filler, not key material.
    if len(value) >= 12:
        most = Counter(value).most_common(1)[0][1]
        if most / len(value) > 0.5:
            return True
    return False


_WORD = re.compile(r"^[A-Za-z]{4,}$")
# Written the way words are (``id``, ``None``, ``KeyMeshing``): random key material
# rarely has that case pattern, but vendor prefixes (``sm_aat_…``) do, so these words
# must also make up half the value.
_CASED_WORD = re.compile(r"^[A-Za-z][a-z]+(?:[A-Z][a-z]+)*$")
_CAMEL_RUN = re.compile(r"(?:[A-Z][a-z]{2,}){3,}")
_KEY_EQUALS_WORD = re.compile(r"^[\w-]+=[A-Za-z]+$")


def _joined_words(value: str) -> bool:
    """``struct_X509_pubkey_st``, ``id-Gost28147-89-None-KeyMeshing``,
    ``clm97771:AgencyIdentificationCodeContentType``: words, not randomness."""
    if sum(len(run) for run in _CAMEL_RUN.findall(value)) * 2 >= len(value):
        return True
    segments = [segment for segment in re.split(r"[_.\-:]", value) if segment]
    if len(segments) < 3:
        return False
    if sum(1 for segment in segments if _WORD.match(segment)) * 2 >= len(segments):
        return True
    cased = [segment for segment in segments if _CASED_WORD.match(segment)]
    return len(cased) * 2 >= len(segments) and sum(map(len, cased)) * 2 >= len(value)


def shannon_entropy(value: str) -> float:
    counts = Counter(value)
    length = len(value)
    return -sum(n / length * math.log2(n / length) for n in counts.values())


def secret_value(value: str, _options: ValidatorOptions) -> Verdict:
    """A credential-looking value next to a key/token/secret name.

    Rejects placeholders, code identifiers (``X25519.KeyPair``), paths, URLs, version
    strings and low-entropy words; what is left looks like key material. UUIDs are kept:
    many vendors' keys are UUIDs (Heroku, Snyk, HubSpot, ...).
    """
    stripped = value.strip("'\"`")
    if len(stripped) < 10 or _placeholder(stripped):
        return Verdict.REJECT
    if (
        _CODE_IDENTIFIER.search(stripped)
        or _PATH_OR_URL.search(stripped)
        or _VERSIONISH.search(stripped)
    ):
        return Verdict.REJECT
    if _KEY_EQUALS_WORD.match(stripped) or _joined_words(stripped):
        return Verdict.REJECT
    if len(stripped) < 20 and _SHORT_WORDS.match(stripped):
        return Verdict.REJECT
    if _TELEGRAM_SHAPED.match(stripped):
        return Verdict.REJECT
    if _wordy_identifier(stripped) or _code_name(stripped):
        return Verdict.REJECT
    has_digit = any(ch.isdigit() for ch in stripped)
    has_alpha = any(ch.isalpha() for ch in stripped)
    entropy = shannon_entropy(stripped)
    if not has_digit and not (has_alpha and entropy >= 3.5 and len(stripped) >= 20):
        return Verdict.REJECT
    if entropy < 3.0:
        return Verdict.REJECT
    return Verdict.PLAUSIBLE


def token(value: str, _options: ValidatorOptions) -> Verdict:
    """A vendor token after its fixed prefix: reject obvious placeholders only."""
    if _placeholder(value) or shannon_entropy(value) < 2.5:
        return Verdict.REJECT
    return Verdict.VALID


def password(value: str, _options: ValidatorOptions) -> Verdict:
    stripped = value.strip("'\"`")
    if len(stripped) < 4 or _placeholder(stripped):
        return Verdict.REJECT
    if stripped.startswith(("$", "%(", "{{", "<", "[", "os.", "process.", "env", "getenv")):
        return Verdict.REJECT
    if _CODE_IDENTIFIER.search(stripped) and "." in stripped:
        return Verdict.REJECT
    # Code on the right of ``password =``: a call, an index, a literal collection.
    if any(ch in stripped for ch in "([{"):
        return Verdict.REJECT
    if _NAMED_CREDENTIAL.match(stripped) and _CREDENTIAL_WORD.search(stripped):
        return Verdict.REJECT
    if _wordy_identifier(stripped) and (
        _CREDENTIAL_WORD.search(stripped) or re.match(r"^(?:[A-Z][a-z]+){2,}$", stripped)
    ):
        return Verdict.REJECT  # a type or class name: ``SecretStr``, ``PasswordField``
    # Prose after "pass:" (``the full pass: every entry``), or a description under a
    # PASSWORD key that names the word itself.
    if re.fullmatch(r"[a-z]{4,7}", stripped):
        return Verdict.REJECT
    if " " in stripped and re.search(r"\bpass(?:word|phrase)s?\b", stripped, re.IGNORECASE):
        return Verdict.REJECT
    # A prefix cut off in prose (``Bearer sk-veil-…``), not a credential.
    if len(stripped) < 12 and stripped.endswith(("-", "_")):
        return Verdict.REJECT
    return Verdict.PLAUSIBLE


def _character_classes(value: str) -> int:
    return sum(
        (
            any(ch.islower() for ch in value),
            any(ch.isupper() for ch in value),
            any(ch.isdigit() for ch in value),
            any(not ch.isalnum() for ch in value),
        )
    )


def password_quoted(value: str, options: ValidatorOptions) -> Verdict:
    """A quoted literal after a password name: it must look like a password (at least 8
    characters of two kinds, some entropy), not a test word or a sentence in a string."""
    if password(value, options) is Verdict.REJECT:
        return Verdict.REJECT
    if len(value) < 8 or _character_classes(value) < 2 or shannon_entropy(value) < 3.0:
        return Verdict.REJECT
    if "\\n" in value or (" " in value and any(q in value for q in "\"'")):
        return Verdict.REJECT
    return Verdict.PLAUSIBLE


def password_bare(value: str, options: ValidatorOptions) -> Verdict:
    """An unquoted value after a password name: in code that is an expression (a name,
    an attribute, a call), so only password-like values count."""
    if password(value, options) is Verdict.REJECT:
        return Verdict.REJECT
    if re.fullmatch(r"[A-Za-z]+", value) or (_IDENTIFIER.match(value) and "_" in value):
        return Verdict.REJECT
    if re.search(r"pass|pwd|\*|%|\\", value, re.IGNORECASE):
        return Verdict.REJECT
    if len(value) < 6 or _character_classes(value) < 2:
        return Verdict.REJECT
    return Verdict.PLAUSIBLE


def basic_credential(value: str, options: ValidatorOptions) -> Verdict:
    """Base64 of ``user:password`` (HTTP Basic, a Docker config's ``auth``): both parts
    present, printable, and the password not a placeholder."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return Verdict.REJECT
    user, colon, secret = decoded.partition(":")
    if not (colon and user and secret) or not decoded.isprintable():
        return Verdict.REJECT
    if password(secret, options) is Verdict.REJECT:
        return Verdict.REJECT
    return Verdict.VALID


def url_password(value: str, _options: ValidatorOptions) -> Verdict:
    """``scheme://user:PASSWORD@host``: the password must not be a placeholder."""
    return password(value, _options)


# Nouns followed by a letter that are no first names ("Plan B Options", "Type A
# Personality"): a name-with-initial shape that starts with one is no person.
_LETTER_NOUNS = frozenset(
    {
        "Act",
        "Annex",
        "Answer",
        "Apartment",
        "Appendix",
        "Apt",
        "Area",
        "Article",
        "Base",
        "Batch",
        "Battalion",
        "Bay",
        "Block",
        "Book",
        "Box",
        "Building",
        "Camp",
        "Case",
        "Category",
        "Channel",
        "Chapter",
        "Class",
        "Company",
        "Court",
        "Day",
        "Division",
        "Dock",
        "Exhibit",
        "Figure",
        "Flight",
        "Floor",
        "Form",
        "Gate",
        "Grade",
        "Group",
        "Hall",
        "Hangar",
        "Hepatitis",
        "Item",
        "Lab",
        "Lane",
        "League",
        "Level",
        "Lot",
        "Model",
        "Note",
        "Option",
        "Part",
        "Patient",
        "Phase",
        "Pier",
        "Plan",
        "Platform",
        "Pool",
        "Program",
        "Project",
        "Question",
        "Room",
        "Round",
        "Route",
        "Row",
        "Sample",
        "Scene",
        "Schedule",
        "Seat",
        "Section",
        "Sector",
        "Series",
        "Shift",
        "Side",
        "Size",
        "Slot",
        "Squadron",
        "Square",
        "Stage",
        "Star",
        "Station",
        "Step",
        "Strand",
        "Studio",
        "Subject",
        "Suite",
        "Table",
        "Team",
        "Terminal",
        "Test",
        "Tier",
        "Tower",
        "Track",
        "Type",
        "Unit",
        "Vector",
        "Version",
        "Vitamin",
        "Volume",
        "War",
        "Ward",
        "Week",
        "Wing",
        "World",
        "Year",
        "Zone",
    }
)


def initialed_name(value: str, _options: ValidatorOptions) -> Verdict:
    """ "First M. Last": not when the first word is a noun that takes a letter."""
    first = value.split(None, 1)[0]
    return Verdict.REJECT if first in _LETTER_NOUNS else Verdict.PLAUSIBLE


VALIDATORS: dict[str, Validator] = {
    "basic_credential": basic_credential,
    "credit_card": credit_card,
    "date": date,
    "crypto_wallet": crypto_wallet,
    "iban": iban,
    "initialed_name": initialed_name,
    "ip_address": ip_address,
    "jwt": jwt,
    "password": password,
    "password_bare": password_bare,
    "password_quoted": password_quoted,
    "phone": phone,
    "secret_value": secret_value,
    "token": token,
    "uk_nino": uk_nino,
    "url_password": url_password,
    "us_ssn": us_ssn,
}
