"""Build the scan benchmark tree: a copy of the installed Python standard library (text
files, ~42 MB, ~2,360 files) with 200 planted secrets of 24 kinds at recorded places.

Usage: python bench/scan/make_tree.py OUT_DIR [--seed 7]
Writes OUT_DIR/tree/ and OUT_DIR/planted.json ([{path, line, kind, form}]).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
import string
import sysconfig
from pathlib import Path

SKIP_DIRS = {"site-packages", "__pycache__", "lib-dynload"}
SKIP_SUFFIXES = {".exe", ".so", ".a", ".pyc", ".whl"}


def rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
LOWER = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"


def values(rng: random.Random) -> dict[str, str]:
    """One fresh value per kind."""
    pem_body = "\n".join(rand(rng, B64, 64) for _ in range(6))
    return {
        "aws-access-key-id": "AKIA" + rand(rng, string.ascii_uppercase + "234567", 16),
        "aws-secret-access-key": rand(rng, B64, 40),
        "github-classic": "ghp_" + rand(rng, ALNUM, 36),
        "github-fine-grained": "github_pat_" + rand(rng, ALNUM, 22) + "_" + rand(rng, ALNUM, 59),
        "gitlab": "glpat-" + rand(rng, ALNUM + "-_", 20),
        "slack-bot": f"xoxb-{rand(rng, string.digits, 11)}-{rand(rng, string.digits, 12)}-"
        + rand(rng, ALNUM, 24),
        "slack-webhook": "https://hooks.slack.com/services/T"
        + rand(rng, string.ascii_uppercase + string.digits, 8)
        + "/B"
        + rand(rng, string.ascii_uppercase + string.digits, 8)
        + "/"
        + rand(rng, ALNUM, 24),
        "stripe": "sk_live_" + rand(rng, ALNUM, 24),
        "twilio": "SK" + rand(rng, HEX, 32),
        "sendgrid": "SG." + rand(rng, ALNUM + "-_", 22) + "." + rand(rng, ALNUM + "-_", 43),
        "openai": "sk-proj-" + rand(rng, ALNUM + "-_", 48) + "T3BlbkFJ" + rand(rng, ALNUM, 48),
        "anthropic": "sk-ant-api03-" + rand(rng, ALNUM + "-_", 93) + "AA",
        "google-api": "AIza" + rand(rng, ALNUM + "-_", 35),
        "huggingface": "hf_" + rand(rng, string.ascii_letters, 34),
        "npm": "npm_" + rand(rng, ALNUM, 36),
        "pypi": "pypi-AgEIcHlwaS5vcmc" + rand(rng, ALNUM + "-_", 70),
        "shopify": "shpat_" + rand(rng, HEX, 32),
        "telegram": f"{rand(rng, string.digits, 10)}:AA{rand(rng, ALNUM + '-_', 33)}",
        "jwt": ".".join(
            base64.urlsafe_b64encode(part.encode()).decode().rstrip("=")
            for part in (
                '{"alg":"HS256","typ":"JWT"}',
                '{"sub":"' + rand(rng, string.digits, 8) + '","name":"svc"}',
            )
        )
        + "."
        + rand(rng, ALNUM + "-_", 43),
        "private-key": "-----BEGIN RSA PRIVATE KEY-----\n"
        + pem_body
        + "\n-----END RSA PRIVATE KEY-----",
        "postgres-url": f"postgresql://app:{rand(rng, ALNUM, 10)}!{rand(rng, ALNUM, 4)}"
        f"@db{rng.randint(1, 9)}.internal:5432/orders",
        "password-symbols": rand(rng, ALNUM, 6)
        + "#"
        + rand(rng, ALNUM, 4)
        + "$%"
        + rand(rng, ALNUM, 3),
        "azure-storage": "DefaultEndpointsProtocol=https;AccountName=acme"
        + rand(rng, LOWER, 6)
        + ";AccountKey="
        + rand(rng, B64, 86)
        + "==;EndpointSuffix=core.windows.net",
        "datadog-api": rand(rng, HEX, 32),
    }


def line_for(kind: str, value: str, form: int) -> str:
    """A line of code carrying ``value`` in one of several forms."""
    name = kind.upper().replace("-", "_")
    if kind == "private-key":
        return f'_PRIVATE_KEY = """{value}"""'
    if kind in ("postgres-url", "slack-webhook", "azure-storage"):
        forms = [f'DATABASE = "{value}"', f'connect("{value}")', f'_URL = "{value}"']
        if kind == "azure-storage":
            forms = [f'_CONN = "{value}"', f'BlobClient.from_connection_string("{value}")']
        return forms[form % len(forms)]
    if kind == "password-symbols":
        forms = [
            f'_db_password = "{value}"',
            f'login(user="svc", password="{value}")',
            f'_CONFIG = {{"password": "{value}"}}',
        ]
        return forms[form % len(forms)]
    if kind == "aws-secret-access-key":
        return f'aws_secret_access_key = "{value}"'
    if kind == "datadog-api":
        return f'DD_API_KEY = "{value}"'
    forms = [
        f'{name} = "{value}"',
        f'_client = Client(api_key="{value}")',
        f'headers = {{"Authorization": "Bearer {value}"}}',
        f"_token = '{value}'",
    ]
    return forms[form % len(forms)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    source = Path(sysconfig.get_paths()["stdlib"])
    tree = args.out / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    files = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part in SKIP_DIRS or part.startswith("config-") for part in relative.parts):
            continue
        if not path.is_file() or path.is_symlink() or path.suffix in SKIP_SUFFIXES:
            continue
        target = tree / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        files.append(relative)
    python_files = [f for f in files if f.suffix == ".py" and (tree / f).stat().st_size > 200]
    chosen = rng.sample(python_files, args.count)
    kinds = list(values(rng))
    planted = []
    for index, relative in enumerate(chosen):
        kind = kinds[index % len(kinds)]
        value = values(rng)[kind]
        target = tree / relative
        lines = target.read_text(encoding="utf-8", errors="surrogateescape").split("\n")
        # After the module docstring and imports: a top-level line between two others.
        at = next(
            (i for i, line in enumerate(lines) if line.startswith(("def ", "class "))),
            len(lines) // 2,
        )
        planted_line = line_for(kind, value, index // len(kinds))
        lines[at:at] = [planted_line, ""]
        target.write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")
        planted.append(
            {
                "path": relative.as_posix(),
                "line": at + 1,
                "kind": kind,
                "lines": planted_line.count("\n") + 1,
            }
        )
    (args.out / "planted.json").write_text(json.dumps(planted, indent=1))
    size = sum((tree / f).stat().st_size for f in files)
    print(
        json.dumps(
            {
                "files": len(files),
                "bytes": size,
                "planted": len(planted),
                "kinds": len(set(p["kind"] for p in planted)),
            }
        )
    )


if __name__ == "__main__":
    main()
