"""Python code anonymization: the anonymized program behaves the same, the original comes
back byte for byte, and nothing the outside world sees is renamed."""

from __future__ import annotations

import base64
import io
import itertools
import keyword
import os
import subprocess
import sys
import sysconfig
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.transform import shared_detector
from veil.transform.code import LiteralTransformer, PythonAnonymizer, SourceFile

STDLIB = Path(sysconfig.get_paths()["stdlib"])
VEIL = str(Path(sys.executable).with_name("veil"))


def anonymize(*sources: tuple[str, str], **options: object):  # type: ignore[no-untyped-def]
    files = [SourceFile(path, text) for path, text in sources]
    return PythonAnonymizer(**options).anonymize(files)  # type: ignore[arg-type]


def run(text: str) -> str:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        exec(compile(text, "<program>", "exec"), {"__name__": "__main__"})  # noqa: S102
    return buffer.getvalue()


# Every pure-Python module of the standard library (under 120 KB).
SAMPLE = sorted(p for p in STDLIB.glob("*.py") if p.stat().st_size < 120_000)


@pytest.mark.parametrize("path", SAMPLE, ids=lambda p: p.name)
def test_stdlib_module_round_trips_byte_for_byte_and_still_compiles(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    result = anonymize((path.name, text), literals=LiteralTransformer(shared_detector()))
    [anonymized] = result.files
    compile(anonymized.text, anonymized.path, "exec")
    assert anonymized.text.count("\n") == text.count("\n")  # line numbers preserved
    assert result.code_map.restore(anonymized.text) == text


def test_textwrap_and_its_tests_pass_after_anonymization(tmp_path: Path) -> None:
    sources = [
        ("textwrap.py", (STDLIB / "textwrap.py").read_text()),
        ("test_textwrap.py", (STDLIB / "test" / "test_textwrap.py").read_text()),
    ]
    result = anonymize(*sources, literals=LiteralTransformer(shared_detector()))
    for file in result.files:
        (tmp_path / file.path).write_text(file.text)
    assert not (tmp_path / "textwrap.py").exists()  # the module itself was renamed
    ran = subprocess.run(
        [sys.executable, "-m", "unittest", "test_textwrap"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Ran 66 tests" in ran.stderr
    renamed = set(result.code_map.names.values())
    assert {"TextWrapper", "dedent", "shorten", "width", "_split_chunks"} <= renamed
    for file in result.files:
        assert "TextWrapper" not in file.text
        assert "_split_chunks" not in file.text


names = st.from_regex(r"[a-z][a-z_]{2,8}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and n not in dir(__builtins__) and not n.startswith("test")
)


@settings(max_examples=40, deadline=None)
@given(
    fn=names,
    param=names,
    cls=names,
    attr=names,
    local=names,
    a=st.integers(-50, 50),
    b=st.integers(-50, 50),
)
def test_generated_programs_compute_the_same(
    fn: str, param: str, cls: str, attr: str, local: str, a: int, b: int
) -> None:
    if len({fn, param, cls, attr, local}) < 5:
        return
    cls = cls.capitalize()
    program = f'''"""A generated program."""
# a comment about {fn}
class {cls}:
    def __init__(self, {param}):
        self.{attr} = {param}  # store

    def {fn}(self, {local}={a}):
        """Combine."""
        return self.{attr} * {local} + len(f"{{self.{attr}!r:>6}}-{{{local}}}")


def {fn}_twice({param}, *rest, **named):
    {local} = {cls}({param})
    return [{local}.{fn}({local}={b}), {local}.{fn}(), sorted(named), rest]


print({fn}_twice({b}, 1, 2, key={a}))
print(getattr({cls}({a}), "{attr}"))
'''
    result = anonymize(("program.py", program))
    [anonymized] = result.files
    assert run(anonymized.text) == run(program)
    assert result.code_map.restore(anonymized.text) == program
    assert f"# a comment about {fn}" not in anonymized.text


def test_fstring_names_are_renamed_and_format_specs_left_alone() -> None:
    source = 'def show(width, x):\n    return f"{width:>{x}} {width!r:x<4} {{width}}"\n'
    result = anonymize(("m.py", source))
    text = result.files[0].text
    assert "width" not in text.split('f"', 1)[1].split("{{")[0]
    assert ":>{" in text
    assert "{{width}}" in text  # a literal brace pair is text, not a field
    namespace: dict[str, object] = {}
    exec(compile(text, "m", "exec"), namespace)  # noqa: S102
    function = next(v for k, v in namespace.items() if k.startswith("f_"))
    assert function(5, 3) == "  5 5xxx {width}"  # type: ignore[operator]


def test_names_seen_from_outside_are_kept() -> None:
    source = (
        "import json\nfrom os import path\n\n"
        "def dump(indent, payload):\n"
        "    return json.dumps(payload, indent=indent), path.join('a', 'b')\n\n"
        "class Handler(dict):\n"
        "    def get(self, key):\n        return key\n\n"
        "    def helper_value(self):\n        return getattr(self, 'kept_by_string', 1)\n"
        "kept_by_string = 2\n"
    )
    result = anonymize(("m.py", source))
    text = result.files[0].text
    for kept in ("json.dumps", "indent=", "path.join", "def get(", "kept_by_string"):
        assert kept in text
    assert "helper_value" not in text
    assert "Handler" not in text


def test_restore_maps_a_models_answer_and_leaves_its_new_names_alone() -> None:
    source = "def total_price(basket):\n    return sum(entry.price for entry in basket)\n"
    result = anonymize(("shop.py", source))
    new = {old: new for new, old in result.code_map.names.items()}
    answer = (
        "Here is the fix:\n```diff\n"
        f"-def {new['total_price']}({new['basket']}):\n"
        f"+def {new['total_price']}({new['basket']}, discount_rate=0):\n"
        "```\n"
    )
    restored = result.code_map.restore(answer)
    assert "-def total_price(basket):" in restored
    assert "+def total_price(basket, discount_rate=0):" in restored


def test_secrets_in_string_literals_become_tokens_and_come_back() -> None:
    token = "ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI"
    source = f'API = "{token}"\nOWNER = "maria.gonzalez@example.com"\n'
    result = anonymize(("c.py", source), literals=LiteralTransformer(shared_detector()))
    text = result.files[0].text
    assert token not in text
    assert "maria.gonzalez" not in text
    assert "<GITHUB_TOKEN_1>" in text
    assert result.code_map.restore(text) == source


def test_cli_round_trip_with_an_encrypted_map(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "billing.py").write_text(
        "def invoice_total(lines):\n    # secret sauce\n    return sum(lines)\n"
    )
    (project / "main.py").write_text(
        "from billing import invoice_total\nprint(invoice_total([1, 2]))\n"
    )
    env = {
        **os.environ,
        "VEIL_HOME": str(tmp_path / "home"),
        "VEIL_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    done = subprocess.run(
        [
            VEIL,
            "code",
            "anonymize",
            str(project),
            "--out",
            str(tmp_path / "out"),
            "--map",
            str(tmp_path / "code.map"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"invoice_total" not in (tmp_path / "code.map").read_bytes()
    outputs = {p.name: p.read_text() for p in (tmp_path / "out").glob("*.py")}
    assert not {"main.py", "billing.py"} & set(outputs)  # modules are renamed too
    assert "invoice_total" not in "".join(outputs.values())
    assert "secret sauce" not in "".join(outputs.values())
    entry = next(name for name, text in outputs.items() if "print(" in text)
    ran = subprocess.run(
        [sys.executable, entry],
        cwd=tmp_path / "out",
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.stdout == "3\n"
    renamed_module = next(name for name in outputs if name != entry)
    restored = subprocess.run(
        [
            VEIL,
            "code",
            "restore",
            "--map",
            str(tmp_path / "code.map"),
            str(tmp_path / "out" / renamed_module),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert restored.stdout == (project / "billing.py").read_text()


STREAMED = '''class Ledger:
    """Keeps the books."""

    def post_entry(self, amount_cents):
        # round half up
        return amount_cents // 100
'''


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=40))
def test_streamed_answer_is_restored_whatever_the_chunk_boundaries(cuts: list[int]) -> None:
    from veil.transform.code import CodeStreamRestorer

    result = anonymize(("ledger.py", STREAMED))
    anonymized = "Sure:\n" + result.files[0].text + "\nDone."
    points = sorted({min(c, len(anonymized)) for c in cuts} | {0, len(anonymized)})
    stream = CodeStreamRestorer(result.code_map)
    out = "".join(stream.feed(anonymized[a:b]) for a, b in itertools.pairwise(points))
    out += stream.close()
    assert out == "Sure:\n" + STREAMED + "\nDone."


# -- other languages (Pygments lexers; scope by declarations) ---------------------------

JS = """// cart for ACME (internal)
function addAll(items, offset) {
  const total = items.reduce((acc, x) => acc + x, 0); /* sum */
  return total + offset;
}
class Cart {
  constructor(owner) { this.owner = owner; this.lines = []; }
  addLine(priceCents) { this.lines.push(priceCents); return this; }
  grandTotal(discountRate) { return addAll(this.lines, 0) * (1 - discountRate); }
}
const cart = new Cart("acme").addLine(250).addLine(100);
console.log(`owner=${cart.owner} total=${cart.grandTotal(0.1)}`);
"""
C = """#include <stdio.h>
/* tax engine
   v2 */
static int apply_tax(int amount_cents, int rate_percent) {
    // integer math only
    return amount_cents + amount_cents * rate_percent / 100;
}
int main(void) {
    int subtotal_cents = 1000;
    printf("%d\\n", apply_tax(subtotal_cents, 20));
    return 0;
}
"""
SQL = """-- billing schema
CREATE TABLE invoices (invoice_id INT, customer_email TEXT);
SELECT invoice_id FROM invoices WHERE customer_email = 'ana@example.com';
"""
SAMPLES = {
    "cart.js": JS,
    "calc.c": C,
    "schema.sql": SQL,
    "Main.java": "class Main {\n  // entry\n  static int doubleIt(int amountCents) {\n"
    "    return amountCents * 2;\n  }\n  public static void main(String[] args) {\n"
    "    System.out.println(doubleIt(21));\n  }\n}\n",
    "lib.rs": "// helper\nfn scale_price(price_cents: i64, factor: i64) -> i64 {\n"
    "    price_cents * factor\n}\n",
    "main.go": "package main\n\n// entry\nfunc scalePrice(priceCents int) int {\n"
    "\treturn priceCents * 2\n}\n",
}


@pytest.mark.parametrize("path", sorted(SAMPLES))
def test_other_languages_round_trip_byte_for_byte(path: str) -> None:
    from veil.transform.code import LexedAnonymizer

    result = LexedAnonymizer(literals=LiteralTransformer(shared_detector())).anonymize(
        [SourceFile(path, SAMPLES[path])]
    )
    text = result.files[0].text
    assert result.code_map.restore(text) == SAMPLES[path]
    assert text.count("\n") == SAMPLES[path].count("\n")
    assert "veil_l_" in text  # comments became markers
    assert result.renamed >= 1


def _tool(name: str) -> str:
    import shutil

    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def test_anonymized_javascript_prints_the_same(tmp_path: Path) -> None:
    from veil.transform.code import LexedAnonymizer

    node = _tool("node")
    result = LexedAnonymizer().anonymize([SourceFile("cart.js", JS)])
    (tmp_path / "a.js").write_text(JS)
    (tmp_path / "b.js").write_text(result.files[0].text)
    outputs = [
        subprocess.run([node, str(tmp_path / f)], capture_output=True, text=True, check=True).stdout
        for f in ("a.js", "b.js")
    ]
    assert outputs[0] == outputs[1] == "owner=acme total=315\n"
    for word in ("addAll", "grandTotal", "discountRate", "ACME"):
        assert word not in result.files[0].text


def test_anonymized_c_prints_the_same(tmp_path: Path) -> None:
    from veil.transform.code import LexedAnonymizer

    gcc = _tool("gcc")
    result = LexedAnonymizer().anonymize([SourceFile("calc.c", C)])
    outputs = []
    for name, text in (("a", C), ("b", result.files[0].text)):
        (tmp_path / f"{name}.c").write_text(text)
        subprocess.run([gcc, "-o", str(tmp_path / name), str(tmp_path / f"{name}.c")], check=True)
        outputs.append(
            subprocess.run(
                [str(tmp_path / name)], capture_output=True, text=True, check=True
            ).stdout
        )
    assert outputs == ["1200\n", "1200\n"]
    assert "apply_tax" not in result.files[0].text
    assert "#include <stdio.h>" in result.files[0].text


@pytest.mark.parametrize("cut", range(0, 60))
def test_streamed_answer_is_restored_at_every_early_cut(cut: int) -> None:
    from veil.transform.code import CodeStreamRestorer

    result = anonymize(("ledger.py", STREAMED))
    anonymized = "Sure:\n" + result.files[0].text
    stream = CodeStreamRestorer(result.code_map)
    out = stream.feed(anonymized[:cut]) + stream.feed(anonymized[cut:]) + stream.close()
    assert out == "Sure:\n" + STREAMED
