"""Pseudonymizing and restoring long texts and streams: time as the text (and the
mapping) grows, with `<EMAIL_1>`-style tokens and with realistic fakes. Pseudonymizing
checks every new fake against the text; `StreamRestorer` is fed 7-character chunks, so
every chunk asks whether its tail could grow into a known token. Neither may read the
whole text (or the whole mapping) once per value.

Usage: python bench/bench_restore_scale.py [--lines 500,2000,8000]
"""

from __future__ import annotations

import argparse
import json
import time

from veil.detect import Detector
from veil.transform import Pseudonymizer, Redactor, StreamRestorer, parse_policy

EVERY_KIND = parse_policy("version: 1\ndefault: {operator: pseudonymize}\n")
LINE = "Mail bob{i}@example.com or call +1 415 555 {n:04d}. Ship to 12 Main Street.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", default="500,2000,8000")
    args = parser.parse_args()
    detector = Detector()
    rows = []
    for style, lines in (
        (style, int(n)) for style in ("token", "realistic") for n in args.lines.split(",")
    ):
        text = "".join(LINE.format(i=i, n=i % 10000) for i in range(lines))
        mapping = Pseudonymizer(style=style)
        redactor = Redactor(policy=EVERY_KIND, pseudonymizer=mapping, detector=detector)
        findings = detector.find(text)
        started = time.perf_counter()
        masked = redactor.apply(text, findings).text
        pseudonymized = time.perf_counter() - started
        started = time.perf_counter()
        assert mapping.restore(masked) == text
        whole = time.perf_counter() - started
        stream = StreamRestorer(mapping)
        started = time.perf_counter()
        out = [stream.feed(masked[k : k + 7]) for k in range(0, len(masked), 7)]
        out.append(stream.close())
        streamed = time.perf_counter() - started
        assert "".join(out) == text
        rows.append(
            {
                "style": style,
                "chars": len(text),
                "tokens": len(mapping),
                "pseudonymize_s": round(pseudonymized, 3),
                "restore_s": round(whole, 3),
                "stream_restore_s": round(streamed, 3),
            }
        )
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
