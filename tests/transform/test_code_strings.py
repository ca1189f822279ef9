"""Names of the project that appear inside string literals: renamed where the text refers
to the code, left where it is data, and the program behaves the same either way."""

from __future__ import annotations

import doctest
import io
import subprocess
import sys
import types
from contextlib import redirect_stdout
from pathlib import Path

from veil.transform.code import CodeMap, CodeStreamRestorer, PythonAnonymizer, SourceFile


def anonymize(*sources: tuple[str, str]):  # type: ignore[no-untyped-def]
    return PythonAnonymizer().anonymize([SourceFile(path, text) for path, text in sources])


def output_of(text: str) -> str:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        exec(compile(text, "<program>", "exec"), {"__name__": "__main__"})  # noqa: S102
    return buffer.getvalue()


def same_behaviour(source: str) -> str:
    """Anonymize one module, check that what it prints, restored, is what the original
    prints (a renamed name in a message is printed renamed) and that it restores exactly."""
    result = anonymize(("prog.py", source))
    [anonymized] = result.files
    assert result.code_map.restore(output_of(anonymized.text)) == output_of(source)
    assert result.code_map.restore(anonymized.text) == source
    return anonymized.text


def test_code_shaped_names_in_messages_are_renamed_and_plain_words_stay() -> None:
    # "words" is a local and an English word of the data: renaming it would change the
    # text the program works on; "max_width_cols" can only be the parameter.
    source = (
        "def wrap_lines(words, max_width_cols):\n"
        "    if max_width_cols < 1:\n"
        "        raise ValueError('max_width_cols must be positive')\n"
        "    return [w[:max_width_cols] for w in words.split()]\n"
        "print(wrap_lines('some words are long', 3))\n"
    )
    text = same_behaviour(source)
    assert "max_width_cols" not in text
    assert "'some words are long'" in text


def test_a_name_called_in_a_message_is_renamed() -> None:
    source = (
        "class Sorter:\n"
        "    def prepare(self):\n        self.ready = True\n"
        "    def run(self):\n"
        "        if not getattr(self, 'ready', False):\n"
        "            raise ValueError('prepare() must be called first')\n"
        "try:\n    Sorter().run()\nexcept ValueError as error:\n    print(error)\n"
    )
    text = same_behaviour(source)
    assert "prepare" not in text


def test_template_placeholders_and_regex_groups_follow_their_names() -> None:
    source = (
        "import re\n"
        "class Bag:\n    pass\n"
        "pantry = Bag()\npantry.fruit = 'plum'\n"
        "print('{0.fruit} and %(fruit)s' .format(pantry) % {'fruit': pantry.fruit})\n"
        "pattern = re.compile(r'(?P<amount>\\d+) (?P<unit>\\w+)')\n"
        "found = pattern.match('12 kg')\n"
        "amount, unit = found.group('amount'), found.group('unit')\n"
        "print(amount, unit)\n"
    )
    text = same_behaviour(source)
    for name in ("fruit", "amount", "unit"):
        assert name not in text


def test_python_code_in_a_string_is_renamed_like_the_file() -> None:
    source = (
        "def triple_it(value):\n    return value * 3\n"
        "script = '''\n"
        "result = triple_it(14)\n"
        "print(result)\n"
        "'''\n"
        "exec(script)\n"
    )
    text = same_behaviour(source)
    assert "triple_it" not in text


def test_a_list_of_names_is_renamed_as_names_even_short_ones() -> None:
    source = (
        "January = 1\nc = 'calendar'\nmdays = [31]\n"
        "skip = {'January', 'c', 'mdays'}\n"
        "print(sum(1 for n in skip if n in globals()))\n"
    )
    text = same_behaviour(source)
    assert "January" not in text
    assert "mdays" not in text


def test_a_module_named_in_a_string_follows_the_module() -> None:
    result = anonymize(
        ("pricing.py", "def unit_price():\n    return 7\n"),
        (
            "main.py",
            "import importlib\nm = importlib.import_module('pricing')\nprint(m.unit_price())\n",
        ),
    )
    texts = [f.text for f in result.files]
    assert "pricing" not in "".join(texts)
    renamed = next(f.path.removesuffix(".py") for f in result.files if "def " in f.text)
    main = next(f for f in result.files if "import_module" in f.text)
    assert f"import_module('{renamed}')" in main.text


def test_leading_underscores_are_kept() -> None:
    result = anonymize(("m.py", "_cache_size = 1\n__all__ = ['public_thing']\npublic_thing = 2\n"))
    text = result.files[0].text
    private = next(new for new, old in result.code_map.names.items() if old == "_cache_size")
    assert private.startswith("_")
    assert not private.startswith("__")
    assert private in text


def test_argparse_options_keep_their_attribute_names(tmp_path: Path) -> None:
    source = (
        "import argparse\n"
        "def main(argv):\n"
        "    parser = argparse.ArgumentParser()\n"
        "    parser.add_argument('--line-width', type=int, default=3)\n"
        "    options = parser.parse_args(argv)\n"
        "    line_width = options.line_width\n"
        "    print(line_width * 2)\n"
        "main(['--line-width', '5'])\n"
    )
    same_behaviour(source)


DOCTESTED = '''"""Money helpers for the shop's back office.

>>> cents_of(2.5)
250
>>> format_cents(
...     cents_of(1))
'1.00 EUR'
"""


def cents_of(euros):
    return round(euros * 100)


def format_cents(cents):
    return f"{cents / 100:.2f} EUR"
'''


def test_doctest_examples_stay_runnable_and_their_prose_goes() -> None:
    result = anonymize(("money.py", DOCTESTED))
    [anonymized] = result.files
    assert "back office" not in anonymized.text
    assert "cents_of" not in anonymized.text
    assert anonymized.text.count("\n") == DOCTESTED.count("\n")
    module = types.ModuleType("anonymized_money")
    exec(compile(anonymized.text, "money", "exec"), module.__dict__)  # noqa: S102
    outcome = doctest.testmod(module, report=False)
    assert outcome.attempted == 2
    assert outcome.failed == 0
    assert result.code_map.restore(anonymized.text) == DOCTESTED


def test_a_doctest_docstring_is_restored_from_a_stream_cut_anywhere() -> None:
    result = anonymize(("money.py", DOCTESTED))
    text = "Here:\n" + result.files[0].text
    for cut in range(0, len(text), 7):
        stream = CodeStreamRestorer(result.code_map)
        out = stream.feed(text[:cut]) + stream.feed(text[cut:]) + stream.close()
        assert out == "Here:\n" + DOCTESTED


def test_a_saved_map_keeps_the_doctest_blocks_and_old_maps_still_load() -> None:
    result = anonymize(("money.py", DOCTESTED))
    saved = result.code_map.to_json()
    assert saved["version"] == 2
    loaded = CodeMap.from_json(saved)
    assert loaded.restore(result.files[0].text) == DOCTESTED
    old = {k: v for k, v in saved.items() if k != "blocks"} | {"version": 1}
    assert CodeMap.from_json(old).blocks == {}


def test_anonymized_module_runs_as_a_script_under_its_new_name(tmp_path: Path) -> None:
    source = "import sys\nprint('usage: report_tool.py', sys.argv[1:])\n"
    result = anonymize(("report_tool.py", source))
    [anonymized] = result.files
    assert "report_tool" not in anonymized.text
    (tmp_path / anonymized.path).write_text(anonymized.text)
    ran = subprocess.run(
        [sys.executable, anonymized.path, "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout == f"usage: {anonymized.path} ['x']\n"


def test_strings_all_renames_words_of_data_too() -> None:
    source = "def wrap_lines(words):\n    return words.split()\nprint(wrap_lines('some words'))\n"
    result = PythonAnonymizer(strings="all").anonymize([SourceFile("m.py", source)])
    text = result.files[0].text
    assert "words" not in text
    assert result.code_map.restore(text) == source


def test_cli_refuses_an_unknown_strings_policy(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("x = 1\n")
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("veil")),
            "code",
            "anonymize",
            str(tmp_path / "m.py"),
            "--out",
            str(tmp_path / "out"),
            "--map",
            str(tmp_path / "m.map"),
            "--strings",
            "everything",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "--strings must be refs or all" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_word_that_is_also_a_module_name_stays_where_it_is_data() -> None:
    # "models" is the name of a module of the project and a key of outside JSON.
    result = anonymize(
        ("models.py", "def load_models():\n    return 1\n"),
        (
            "main.py",
            "import json\nfrom models import load_models\n"
            "payload = json.loads('{\"models\": 2}')\n"
            "print(payload['models'] + load_models())\n",
        ),
    )
    main = next(f for f in result.files if "json.loads" in f.text)
    assert "['models']" in main.text
    assert "load_models" not in main.text


ENGINE_SOURCE = '''"""Invoices for ACME; ask maria.gonzalez@example.com about invoice_total.

>>> invoice_total([1, 2])
3
"""
# invoice_total must stay fast; token ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI is revoked


def invoice_total(amounts):
    return sum(amounts)
'''


def test_engine_policy_keeps_comments_and_docstrings_without_values_or_names() -> None:
    from veil.transform import shared_detector
    from veil.transform.code import LiteralTransformer

    result = PythonAnonymizer(
        comments="engine", docstrings="engine", literals=LiteralTransformer(shared_detector())
    ).anonymize([SourceFile("billing.py", ENGINE_SOURCE)])
    text = result.files[0].text
    assert "Invoices for ACME" in text  # the prose stays readable
    assert "must stay fast" in text
    assert "maria.gonzalez" not in text
    assert "ghp_R8x2" not in text
    assert "invoice_total" not in text
    assert result.code_map.restore(text) == ENGINE_SOURCE
    module = types.ModuleType("anonymized_billing")
    exec(compile(text, "billing", "exec"), module.__dict__)  # noqa: S102
    assert doctest.testmod(module, report=False).failed == 0


def test_engine_policy_for_comments_in_other_languages() -> None:
    from veil.transform.code import LexedAnonymizer

    source = "// addAll sums the cart for ana@example.com\nfunction addAll(items) { return 1; }\n"
    result = LexedAnonymizer(comments="engine").anonymize([SourceFile("cart.js", source)])
    text = result.files[0].text
    assert "sums the cart" in text
    assert "addAll" not in text
    assert result.code_map.restore(text) == source


def test_an_unknown_comment_policy_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="comments must be one of"):
        PythonAnonymizer(comments="drop")


def test_a_nested_f_string_keeps_its_prefix_and_renames_its_fields() -> None:
    # The loop variable is called f: the nested f-string's prefix must not be renamed.
    source = (
        "class Point:\n    def __init__(self, x_coord):\n        self.x_coord = x_coord\n"
        "points = [Point(1), Point(2)]\n"
        'print(f\'({",".join([f"{f.x_coord}" for f in points])},)\')\n'
    )
    text = same_behaviour(source)
    assert "x_coord" not in text
