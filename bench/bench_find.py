"""Per-call cost of ``Detector.find`` on the gateway benchmark's 1 KB prompt and on the
presidio-research texts (best of 5). Run it on two trees to compare them:

    python bench/bench_find.py
    PYTHONPATH=/path/to/other/checkout/src python bench/bench_find.py
"""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "gateway"))

import bench_gateway  # noqa: E402  (the prompt the gateway benchmark sends)

from veil.detect import Detector  # noqa: E402

DATASET = HERE.parents[1] / "shared" / "bench-data" / "pii" / "synth_dataset_v2.json"


def main() -> None:
    detector = Detector()
    prompt = "#00000001 " + bench_gateway.PROMPT[10:]
    texts = [item["full_text"] for item in json.loads(DATASET.read_text())]
    detector.find(prompt)
    for text in texts:
        detector.find(text)
    calls = 2000
    prompt_us = min(timeit.repeat(lambda: detector.find(prompt), number=calls, repeat=5))
    texts_s = min(timeit.repeat(lambda: [detector.find(t) for t in texts], number=1, repeat=5))
    print(
        json.dumps(
            {
                "prompt_bytes": len(prompt.encode()),
                "find_prompt_us": round(prompt_us / calls * 1e6, 1),
                "pii_texts_docs_per_s": round(len(texts) / texts_s),
            }
        )
    )


if __name__ == "__main__":
    main()
