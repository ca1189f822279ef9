"""Per-record cost of veil.logging's sanitizing filter against plain logging.

Same formatter, same handler (a stream to /dev/null), one thread. Records: one with
nothing to find, one with two findings (an e-mail address and a phone number).
Usage: python bench/bench_logging.py [--records 20000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import veil.logging as veil_logging

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def make_logger(name: str, sanitize: bool) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives for the run
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    if sanitize:
        veil_logging.install(logger=logger)
    return logger


def per_record_us(logger: logging.Logger, findings: bool, records: int, users: int) -> float:
    """Best of 5 runs. With findings, ``users`` distinct e-mail/phone pairs cycle, as the
    active users of a service do; ``users=records`` makes every record new."""
    people = [(f"user{i}@example.com", f"212-555-{i % 10000:04d}") for i in range(users)]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for index in range(records):
            if findings:
                email, phone = people[index % users]
                logger.info("user %s asked to be called on %s", email, phone)
            else:
                logger.info("request %s handled in %d ms", "GET /api/items", index % 50)
        best = min(best, (time.perf_counter() - started) / records * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    plain = make_logger("bench.plain", sanitize=False)
    veiled = make_logger("bench.veil", sanitize=True)
    veiled.info("warm up bob@example.com")
    result = {}
    cases = (
        ("nothing_to_find", False, 1),
        ("two_findings_1000_users", True, 1000),
        ("two_findings_all_distinct", True, args.records),
    )
    for label, findings, users in cases:
        base = per_record_us(plain, findings, args.records, users)
        cost = per_record_us(veiled, findings, args.records, users)
        result[label] = {
            "plain_us": round(base, 2),
            "veil_us": round(cost, 2),
            "ratio": round(cost / base, 2),
            "overhead_us": round(cost - base, 2),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
