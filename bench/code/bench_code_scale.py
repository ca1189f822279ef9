"""Code anonymization of large sources: time of `PythonAnonymizer.anonymize` as the code
grows (one file of many small functions, each with names to rename and a literal).

Usage: python bench/bench_code_scale.py [--functions 200,800,3200]
"""

from __future__ import annotations

import argparse
import json
import time

from veil.transform.code import PythonAnonymizer, SourceFile

UNIT = """
def compute_total_{i}(price_value, quantity_count):
    customer_email = "bob{i}@example.com"
    result_amount = price_value * quantity_count
    return result_amount
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--functions", default="200,800,3200")
    args = parser.parse_args()
    rows = []
    for count in (int(n) for n in args.functions.split(",")):
        source = "".join(UNIT.format(i=i) for i in range(count))
        started = time.perf_counter()
        PythonAnonymizer().anonymize([SourceFile("module.py", source)])
        rows.append(
            {
                "functions": count,
                "chars": len(source),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
