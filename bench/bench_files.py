"""File encryption throughput, file to file, in one run: Veil sealed and age formats, the
age CLI, pyrage alone, raw AESGCM in 1 MiB chunks (the ceiling) and Fernet (the floor).

Each candidate runs in a child process so its peak RSS is its own. Library candidates
are timed after their imports; the `veil-cli-*` candidates are the `veil encrypt` /
`veil decrypt` commands end to end (process start, imports and key store included).
Rounds interleave the candidates (best of --repeat kept). Writes bench/results/files.json.
Usage: python bench/bench_files.py [--mb 1024] [--fernet-mb 256] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "files.json"
CHILD = r"""
import os, resource, sys, time
from pathlib import Path
kind, src, dst, direction = sys.argv[1:5]
# Imports happen before the clock starts: only the work is timed.
if kind == "sealed":
    from veil.keys import _sealed as sealed
elif kind in ("pyrage", "veil-age"):
    import pyrage
elif kind == "aesgcm":
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
elif kind == "fernet":
    from cryptography.fernet import Fernet
start = time.perf_counter()
if kind == "sealed":
    key = bytes(range(32))
    with open(src, "rb") as r, open(dst, "wb") as w:
        if direction == "enc":
            sealed.encrypt_stream(r, w, "dk-bench", key)
        else:
            sealed.decrypt_stream(r, w, lambda _k: key)
elif kind in ("pyrage", "veil-age"):
    ident = pyrage.x25519.Identity.from_str(open(sys.argv[5]).read().strip())
    if direction == "enc":
        pyrage.encrypt_file(src, dst, [ident.to_public()])
    else:
        pyrage.decrypt_file(src, dst, [ident])
elif kind == "aesgcm":
    c = AESGCM(bytes(range(32)))
    with open(src, "rb") as r, open(dst, "wb") as w:
        i = 0
        size = 1 << 20 if direction == "enc" else (1 << 20) + 16
        while chunk := r.read(size):
            nonce = i.to_bytes(12, "big")
            op = c.encrypt if direction == "enc" else c.decrypt
            w.write(op(nonce, chunk, None))
            i += 1
elif kind == "fernet":
    f = Fernet(b"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
    data = Path(src).read_bytes()
    Path(dst).write_bytes(f.encrypt(data) if direction == "enc" else f.decrypt(data))
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def run_child(
    kind: str, src: Path, dst: Path, direction: str, identity: Path
) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(src), str(dst), direction, str(identity)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def run_age_cli(
    src: Path, dst: Path, direction: str, identity: Path, public: str
) -> tuple[float, float]:
    args = (
        ["age", "-r", public, "-o", str(dst), str(src)]
        if direction == "enc"
        else ["age", "-d", "-i", str(identity), "-o", str(dst), str(src)]
    )
    out = (
        subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", *args], check=True, capture_output=True, text=True
        )
        .stderr.strip()
        .splitlines()[-1]
        .split()
    )
    return float(out[0]), float(out[1]) / 1024


def run_veil_cli(src: Path, dst: Path, direction: str, home: Path) -> tuple[float, float]:
    veil = Path(sys.executable).with_name("veil")
    sealed = ["--sealed"] if "sealed" in dst.name or "sealed" in src.name else ["--self"]
    args = (
        [str(veil), "encrypt", *sealed, str(src), "--out", str(dst)]
        if direction == "enc"
        else [str(veil), "decrypt", str(src), "--out", str(dst)]
    )
    out = (
        subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", *args],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "VEIL_HOME": str(home)},
            cwd=home,
        )
        .stderr.strip()
        .splitlines()[-1]
        .split()
    )
    return float(out[0]), float(out[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--fernet-mb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=2, help="runs per candidate (best kept)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="veil-bench-files-"))
    try:
        import pyrage

        identity = work / "id.txt"
        ident = pyrage.x25519.Identity.generate()
        identity.write_text(str(ident))
        public = str(ident.to_public())
        results = {}
        for label, size in (("main", args.mb), ("fernet", args.fernet_mb)):
            src = work / f"plain-{label}.bin"
            with src.open("wb") as handle:
                block = os.urandom(1 << 20)
                for _ in range(size):
                    handle.write(block)
        home = work / "home"
        home.mkdir()
        veil = Path(sys.executable).with_name("veil")
        subprocess.run(
            [str(veil), "init"],
            check=True,
            capture_output=True,
            env={**os.environ, "VEIL_HOME": str(home)},
            cwd=home,
        )
        kinds = ["sealed", "veil-age", "pyrage", "aesgcm", "veil-cli-sealed", "veil-cli-age"] + (
            ["age-cli"] if shutil.which("age") else []
        )

        def measure(kind: str, src: Path, enc: Path, dec: Path) -> tuple[float, ...]:
            # Dirty pages of the previous candidate are flushed first, so no candidate
            # pays for another's writeback.
            os.sync()
            if kind == "age-cli":
                t_enc, rss_enc = run_age_cli(src, enc, "enc", identity, public)
                os.sync()
                t_dec, rss_dec = run_age_cli(enc, dec, "dec", identity, public)
            elif kind.startswith("veil-cli"):
                t_enc, rss_enc = run_veil_cli(src, enc, "enc", home)
                os.sync()
                t_dec, rss_dec = run_veil_cli(enc, dec, "dec", home)
            else:
                t_enc, rss_enc = run_child(kind, src, enc, "enc", identity)
                os.sync()
                t_dec, rss_dec = run_child(kind, enc, dec, "dec", identity)
            return t_enc, t_dec, rss_enc, rss_dec

        # Warm-up: one untimed pass so the first candidate does not pay for cold caches.
        measure("aesgcm", work / "plain-main.bin", work / "warm.enc", work / "warm.dec")
        # Rounds interleave the candidates, so a slow moment of this shared machine
        # weighs on all of them alike; the best of the rounds is kept.
        every = [*kinds, "fernet"]
        runs: dict[str, list[tuple[float, ...]]] = {kind: [] for kind in every}
        for _ in range(args.repeat):
            for kind in every:
                src = work / ("plain-fernet.bin" if kind == "fernet" else "plain-main.bin")
                enc, dec = work / f"{kind}.enc", work / f"{kind}.dec"
                runs[kind].append(measure(kind, src, enc, dec))
                assert dec.stat().st_size == src.stat().st_size
                enc.unlink()
                dec.unlink()
        for kind in every:
            size = args.fernet_mb if kind == "fernet" else args.mb
            t_enc = min(run[0] for run in runs[kind])
            t_dec = min(run[1] for run in runs[kind])
            rss = max(max(run[2], run[3]) for run in runs[kind])
            results[kind] = {
                "mb": size,
                "encrypt_mb_s": round(size * 1.048576 / t_enc, 1),
                "decrypt_mb_s": round(size * 1.048576 / t_dec, 1),
                "peak_rss_mb": round(rss, 1),
            }
        print(json.dumps(results, indent=2))
        OUT.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
