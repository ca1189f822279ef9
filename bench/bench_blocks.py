"""Address-block rules on long texts: time of one `find` (patterns, address blocks on) as
the number of addresses in the text grows. The rules look findings up by bisection, so the
time should grow about linearly with the text.

Usage: python bench/bench_blocks.py [--copies 100,400,1600]
"""

from __future__ import annotations

import argparse
import json
import time

from veil.detect import Detector

UNIT = (
    "Please send it to 1987 74 Diakou Street\n Suite 680\n Kissousa\n Cyprus 36903? Thanks.\n"
    "Marisa Bisliev\n\n28030 Edeby 55\n Apt. 297\n Qasigiannguit\n Greenland 07609\n\n"
)
# The same rules on one long line (a log line, a minified page): streets and countries
# with no line break for hundreds of kilobytes.
LINE = "We shipped to 12 Main Street, Spain and Norway today. "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", default="100,400,1600")
    args = parser.parse_args()
    detector = Detector(address_blocks=True)
    detector.find(UNIT)
    rows = []
    for copies in (int(n) for n in args.copies.split(",")):
        for shape, text in (("lines", UNIT * copies), ("one line", LINE * copies * 2 + "\nend")):
            started = time.perf_counter()
            found = detector.find(text)
            rows.append(
                {
                    "text": shape,
                    "copies": copies,
                    "chars": len(text),
                    "findings": len(found),
                    "seconds": round(time.perf_counter() - started, 3),
                }
            )
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
