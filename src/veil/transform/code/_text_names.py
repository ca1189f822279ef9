"""The project's names inside string text: where text refers to the code, the names in it
are renamed with the code (rules below); where it is data, they stay."""

from __future__ import annotations

import ast
import functools
import re
import textwrap
import warnings

from veil.transform.code._codemap import IDENTIFIER


class Renames(dict[str, str]):
    """Original name -> neutral name, and which of the names are the project's modules."""

    def __init__(
        self,
        names: dict[str, str],
        modules: set[str],
        placeholders: set[str],
        *,
        everywhere: bool = False,
    ) -> None:
        super().__init__(names)
        self.modules = frozenset(modules)
        self.placeholders = frozenset(placeholders)
        self.everywhere = everywhere  # strings="all": every word, data included

    @functools.cached_property
    def for_prose(self) -> Renames:
        """The same names for comments and docstrings: renamed wherever they appear (prose
        does not change what the program does). Built once, used for every comment."""
        return Renames(dict(self), set(self.modules), set(self.placeholders), everywhere=True)


# Where a name of the project appears in string text, renaming it keeps the program the
# same only if the text refers to the code (getattr by name, import by name, a template
# placeholder) — a word of data that happens to equal a local variable ("January",
# "words") must stay, or output that the program computes from outside data (strftime)
# or from the text's length (textwrap) changes. So, in string text, a name is renamed:
# - when it cannot be an ordinary word: it has an underscore, a digit or a camelCase hump;
# - when the whole text is a dotted name whose first part is one of the project's modules
#   ("pkg.mod.func": patches by name; "mod.py", its file), a module name passed to an
#   import function or after "-m" (``import_module("billing")``), or one string of a
#   collection of names (``{"January", "c", "main"}``, found by _python's collector), or a name
#   the project uses in a placeholder somewhere (``m.group("named")`` for ``(?P<named>``);
# - where it is called: "prepare() must be called first" (and its regular expression,
#   r"prepare\(\)");
# - in a placeholder: $name, ${name}, %(name), {name}, {0.name}, @name and the dotted chain
#   after it, and in a regular expression's named group, (?P<name> and (?P=name);
# - everywhere in a string that is itself Python code (a ``python -c`` script, ``exec``):
#   there every identifier is renamed as in the file around it.
# One- and two-letter words are left ("r", "%s", "-x"): far more often modes, format
# letters and flags than references, and they say nothing about the code.
_MIN_NAME_IN_TEXT = 3
_CODE_SHAPED = re.compile(r"_|\d|[a-z][A-Z]")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
PLACEHOLDER = re.compile(
    r"(?:\$\{?|%\(|\{(?:\d+\.)?|@|\(\?P[<=])([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
)


def rename_words(text: str, names: Renames, *, whole: bool = True) -> str:
    """The project's names renamed where they appear in string text (rules above).

    A word right after a backslash (``\\nfoo``) is left: its first letter belongs to an
    escape, and ``restore``, which sees words, could not undo it. ``whole=False``: ``text``
    is a piece of a string (an f-string's literal part), so the rules about whole strings
    do not apply.
    """
    if not names:
        return text
    if whole and _DOTTED.fullmatch(text):
        first, *rest = text.split(".")
        # A lone word that is a module's name ("models", "config") is as often data; it
        # is renamed where it is imported by name (_Collector) or when it is code-shaped.
        if (
            first in names.modules
            and (rest or _CODE_SHAPED.search(first))
            and (rest == ["py"] or all(part in names for part in rest))
        ):
            return ".".join(names.get(part, part) for part in text.split("."))
        if text in names.placeholders and text in names:
            return names[text]
    placeholders: set[int] = set()
    for match in PLACEHOLDER.finditer(text):
        position = match.start(1)
        for part in match.group(1).split("."):
            placeholders.add(position)
            position += len(part) + 1
    out, index = [], 0
    for match in IDENTIFIER.finditer(text):
        word = match.group(0)
        new = names.get(word)
        if new is None or (match.start() > 0 and text[match.start() - 1] == "\\"):
            continue
        called = text.startswith(("(", "\\("), match.end())
        if (
            match.start() not in placeholders
            and not ((called or names.everywhere) and len(word) >= _MIN_NAME_IN_TEXT)
            and (len(word) < _MIN_NAME_IN_TEXT or not _CODE_SHAPED.search(word))
        ):
            continue
        out += [text[index : match.start()], new]
        index = match.end()
    out.append(text[index:])
    return "".join(out)


def is_python_code(text: str) -> bool:
    """A multi-line string that parses as Python and does more than name a value."""
    if "\n" not in text.strip() or "\\" in text:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(textwrap.dedent(text))
    except (SyntaxError, ValueError):
        return False
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant | ast.Name))
        for node in tree.body
    )


_CODE_PIECE = re.compile(
    r"(?<![A-Za-z0-9_])([rRbBuUfF]{0,2})(\"[^\"]*\"|'[^']*')|[A-Za-z_][A-Za-z0-9_]*"
)


def rename_identifiers(text: str, names: Renames) -> str:
    """Rename identifiers in an f-string expression and words in the strings inside it
    (a nested f-string's fields as code: ``f"{obj.name}"``; its prefix is not a name)."""
    out, index = [], 0
    for match in _CODE_PIECE.finditer(text):
        out.append(text[index : match.start()])
        if match.group(2):
            prefix, quoted = match.group(1), match.group(2)
            inner = quoted[1:-1]
            inner = (
                rename_fstring(inner, names)
                if "f" in prefix.lower()
                else rename_words(inner, names)
            )
            out.append(prefix + quoted[0] + inner + quoted[-1])
        else:
            word = match.group(0)
            out.append(names.get(word, word))
        index = match.end()
    out.append(text[index:])
    return "".join(out)


def rename_fstring(body: str, names: Renames) -> str:
    """Names inside the replacement fields of an f-string body (not in literal text or
    format specs)."""
    out: list[str] = []
    index, length = 0, len(body)
    while index < length:
        char = body[index]
        if char in "{}" and body[index : index + 2] in ("{{", "}}"):
            out.append(body[index : index + 2])
            index += 2
            continue
        if char != "{":
            literal_end = index
            while literal_end < length and body[literal_end] not in "{}":
                literal_end += 1
            literal_end = max(literal_end, index + 1)
            out.append(rename_words(body[index:literal_end], names, whole=False))
            index = literal_end
            continue
        # A field: the expression runs to the first top-level '!', ':' or '}'.
        depth, cursor, quote = 0, index + 1, ""
        while cursor < length:
            c = body[cursor]
            if quote:
                if c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and c in "!:" and body[cursor : cursor + 2] not in ("!=", ":="):
                break
            cursor += 1
        out.append("{" + rename_identifiers(body[index + 1 : cursor], names))
        index = cursor
        if index < length and body[index] == "!":  # conversion: !r, !s, !a
            out.append(body[index : index + 2])
            index += 2
        if index < length and body[index] == ":":  # format spec, may nest fields
            spec_start, depth = index, 0
            while index < length and not (body[index] == "}" and depth == 0):
                if body[index] == "{":
                    depth += 1
                elif body[index] == "}":
                    depth -= 1
                index += 1
            spec = body[spec_start:index]
            out.append(
                re.sub(
                    r"\{([^{}]*)\}",
                    lambda m: "{" + rename_identifiers(m.group(1), names) + "}",
                    spec,
                )
            )
        if index < length:
            out.append("}")
            index += 1
    return "".join(out)
