"""Build a mixed text file (prose, code, logs, JSON) with planted PII and secrets.

Usage: python bench/make_mixed.py OUT --mb 100 [--seed 7]
Deterministic for a seed. About 1 value to find per 400 bytes, as in real logs.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORDS = [
    "the",
    "service",
    "returned",
    "an",
    "error",
    "while",
    "processing",
    "request",
    "for",
    "user",
    "account",
    "billing",
    "invoice",
    "retry",
    "timeout",
    "connection",
    "database",
    "cache",
    "queue",
    "worker",
    "deploy",
    "release",
    "config",
    "value",
    "field",
    "record",
    "update",
    "create",
    "delete",
    "select",
    "order",
    "payment",
    "shipping",
    "address",
    "note",
]


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    digits = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    total = 0
    for index, char in enumerate(reversed(digits + "0")):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return digits + str((10 - total % 10) % 10)


def token(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def planted(rng: random.Random) -> str:
    choice = rng.randrange(9)
    if choice == 0:
        return f"{token(rng, 'abcdefghij', 6)}.{token(rng, 'klmnop', 5)}@example.com"
    if choice == 1:
        return f"+1 415-555-{rng.randrange(1000, 9999)}"
    if choice == 2:
        return luhn_complete("4", 16, rng)
    if choice == 3:
        return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if choice == 4:
        return "ghp_" + token(rng, ALNUM, 36)
    if choice == 5:
        return "AKIA" + token(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
    if choice == 6:
        return f'api_key = "{token(rng, ALNUM, 32)}"'
    if choice == 7:
        return f"https://example.org/{token(rng, 'abcdefgh', 8)}?id={rng.randrange(10**6)}"
    return f"{rng.randrange(100, 899)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"


def line(rng: random.Random) -> str:
    style = rng.randrange(4)
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 30)))
    if style == 0:
        return f"2026-11-23T10:{rng.randrange(60):02d}:00Z INFO worker-{rng.randrange(9)} {words}"
    if style == 1:
        return json.dumps({"event": rng.choice(WORDS), "count": rng.randrange(1000), "msg": words})
    if style == 2:
        call = f"process_{rng.choice(WORDS)}(items[{rng.randrange(99)}], retries=3)"
        return f"    result = {call}  # {words}"
    return words.capitalize() + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    target = int(args.mb * 1_000_000)
    written = 0
    with args.out.open("w", encoding="utf-8") as handle:
        while written < target:
            text = line(rng)
            if rng.random() < 0.3:
                text += " " + planted(rng)
            handle.write(text + "\n")
            written += len(text) + 1


if __name__ == "__main__":
    main()
