"""Python code anonymization: exact, from ``tokenize`` and ``ast``.

Renaming is global and consistent: an identifier the project defines gets one neutral
name (``C_1`` classes, ``f_1`` functions, ``v_1`` everything else, ``m_1`` modules)
everywhere it appears as a name — definitions, uses, attributes, keyword arguments,
imports. An identifier is left alone when anything outside the project could see it:
keywords, builtins, dunder names, names imported from outside, attributes of builtin
types and of the external modules and classes the project imports (found by importing
them), keyword arguments of calls to external callables, names used through strings
(``getattr(x, "name")``, ``__slots__``), and names unittest finds by convention
(``test*``), argparse options and namedtuple/Enum fields. Because a name is renamed
everywhere or nowhere, the program behaves the same; inside string text the names follow
the rules of ``_text_names``. Comments and docstrings become markers that keep the line
count (or pass through the engine); the values the engine finds in string literals
become tokens. Everything is recorded in the map (``_codemap``), so
``restore(anonymize(code)) == code`` byte for byte.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import io
import itertools
import keyword
import re
import sys
import tokenize
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from veil.transform.code._codemap import IDENTIFIER, CodeMap, UsedWords
from veil.transform.code._text_names import (
    PLACEHOLDER,
    Renames,
    is_python_code,
    rename_fstring,
    rename_identifiers,
    rename_words,
)

_KEYWORDS = set(keyword.kwlist) | set(keyword.softkwlist)
_BUILTIN_TYPES: tuple[Any, ...] = (
    object,
    str,
    bytes,
    bytearray,
    int,
    float,
    complex,
    bool,
    list,
    dict,
    set,
    frozenset,
    tuple,
    type,
    range,
    slice,
    memoryview,
    property,
    staticmethod,
    classmethod,
    BaseException,
    Exception,
    types.FunctionType,
    types.MethodType,
    types.GeneratorType,
    types.CoroutineType,
    types.ModuleType,
    types.SimpleNamespace,
    io.TextIOWrapper,
    io.BufferedReader,
    io.BytesIO,
    io.StringIO,
    re.Pattern,
    re.Match,
)
_DYNAMIC_NAME_CALLS = {"getattr", "setattr", "hasattr", "delattr"}
_ATTRIBUTES_FROM_STRINGS = {"add_argument", "namedtuple", "NamedTuple", "Enum", "IntEnum"}


def _builtin_attributes() -> set[str]:
    names: set[str] = set(dir(builtins))
    for kind in _BUILTIN_TYPES:
        names.update(dir(kind))
    for value in vars(builtins).values():
        if isinstance(value, type):
            names.update(dir(value))
    return names


_EXTERNAL_BASE = _builtin_attributes() | _KEYWORDS


@dataclass
class SourceFile:
    path: str  # posix, relative to the project root
    text: str

    @property
    def module(self) -> str:
        parts = self.path.removesuffix(".py").split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        return ".".join(parts)


@dataclass
class _FileFacts:
    defined: dict[str, str] = field(default_factory=dict)  # name -> category
    external: set[str] = field(default_factory=set)
    imported_modules: set[str] = field(default_factory=set)
    all_strings: list[tuple[int, int]] = field(default_factory=list)  # (line, col) of __all__
    # Collections of identifier-shaped strings ({"January", "c", "main"}): lists of names
    # when enough of them are the project's names (decided once the names are known).
    name_groups: list[list[tuple[int, int, str]]] = field(default_factory=list)
    placeholders: set[str] = field(default_factory=set)  # names in $x, {x}, (?P<x> ...


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


class _Collector(ast.NodeVisitor):
    """What one file defines and what it shows to (or takes from) the outside."""

    def __init__(self, internal_modules: set[str], package: str) -> None:
        self.facts = _FileFacts()
        self._internal = internal_modules
        self._package = package
        self._callables: set[str] = set()

    def _define(self, name: str | None, category: str) -> None:
        if name and name not in self.facts.defined:
            self.facts.defined[name] = category

    def _is_internal_module(self, module: str) -> bool:
        return module in self._internal or any(m.startswith(module + ".") for m in self._internal)

    def _resolve(self, module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        base = self._package.split(".") if self._package else []
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, module] if module else base)

    # -- definitions ------------------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._define(node.name, "f")
        self._callables.add(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._define(node.name, "C")
        self._callables.add(node.name)
        for keyword_arg in node.keywords:  # metaclass=..., class keyword arguments
            if keyword_arg.arg:
                self.facts.external.add(keyword_arg.arg)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del):
            self._define(node.id, "v")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Store | ast.Del):
            self._define(node.attr, "v")
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._define(node.arg, "v")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._define(node.name, "v")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        for name in node.names:
            self._define(name, "v")

    visit_Nonlocal = visit_Global  # type: ignore[assignment]  # noqa: N815

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._define(node.name, "v")
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._define(node.name, "v")

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._define(node.rest, "v")
        self.generic_visit(node)

    # -- imports ------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            internal = self._is_internal_module(alias.name)
            if not internal:
                self.facts.imported_modules.add(alias.name)
                self.facts.external.update(alias.name.split("."))
            if alias.asname:
                self._define(alias.asname, "m")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = self._resolve(node.module, node.level)
        internal = self._is_internal_module(module)
        if not internal and node.module:
            self.facts.imported_modules.add(module)
            self.facts.external.update(node.module.split("."))
        for alias in node.names:
            full = f"{module}.{alias.name}" if module else alias.name
            if not internal and not self._is_internal_module(full):
                self.facts.external.add(alias.name)
            if alias.asname:
                self._define(alias.asname, "v")

    # -- what the outside sees -----------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = (
            func.id
            if isinstance(func, ast.Name)
            else (func.attr if isinstance(func, ast.Attribute) else None)
        )
        strings = [
            arg for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ]
        if name and "import" in name.lower():
            # import_module("billing"), import_fresh_module("bisect", fresh=["bisect"]):
            # module names by text, renamed with their modules.
            for given in [*node.args, *(k.value for k in node.keywords)]:
                for item in ast.walk(given):
                    if isinstance(item, ast.Constant) and isinstance(item.value, str):
                        self.facts.all_strings.append((item.lineno, item.col_offset))
        for flag, module in itertools.pairwise(strings):
            if flag.value == "-m":  # python -m billing
                self.facts.all_strings.append((module.lineno, module.col_offset))
        if name in _DYNAMIC_NAME_CALLS and len(node.args) >= 2:
            attribute = node.args[1]
            if isinstance(attribute, ast.Constant) and isinstance(attribute.value, str):
                self.facts.external.add(attribute.value)
        elif name in _ATTRIBUTES_FROM_STRINGS:
            # argparse's options, namedtuple's and Enum's fields become attributes named by
            # strings: those names stay, or `options.width` would no longer find `--width`.
            for argument in [*node.args[1 if name != "add_argument" else 0 :], *node.keywords]:
                value = argument.value if isinstance(argument, ast.keyword) else argument
                for item in ast.walk(value):
                    if isinstance(item, ast.Constant) and isinstance(item.value, str):
                        for word in re.split(r"[\s,]+", item.value.lstrip("-")):
                            self.facts.external.add(word.replace("-", "_"))
        # Keyword arguments of a callee the project may not define stay as they are; the
        # final check (after every file) keeps them only if the callee is external.
        for keyword_arg in node.keywords:
            if keyword_arg.arg:
                self._calls.append((name, keyword_arg.arg))
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == "__slots__":
                for item in ast.walk(node.value):
                    if isinstance(item, ast.Constant) and isinstance(item.value, str):
                        self.facts.external.add(item.value)
            if (
                isinstance(target, ast.Name)
                and target.id == "__all__"
                and isinstance(node.value, ast.List | ast.Tuple)
            ):
                for item in node.value.elts:
                    if isinstance(item, ast.Constant) and isinstance(item.value, str):
                        self.facts.all_strings.append((item.lineno, item.col_offset))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and len(node.value) < 100_000:
            for match in PLACEHOLDER.finditer(node.value):
                self.facts.placeholders.update(match.group(1).split("."))

    def _collection(self, node: ast.List | ast.Tuple | ast.Set) -> None:
        items = [
            (item.lineno, item.col_offset, item.value)
            for item in node.elts
            if isinstance(item, ast.Constant) and isinstance(item.value, str)
        ]
        if (
            len(items) >= 2
            and len(items) == len(node.elts)
            and all(IDENTIFIER.fullmatch(value) for _, _, value in items)
        ):
            self.facts.name_groups.append(items)
        self.generic_visit(node)

    visit_List = visit_Tuple = visit_Set = _collection  # noqa: N815

    _calls: list[tuple[str | None, str]]

    def run(self, tree: ast.AST) -> tuple[_FileFacts, list[tuple[str | None, str]]]:
        self._calls = []
        self.visit(tree)
        return self.facts, self._calls


def _introspect(modules: set[str]) -> set[str]:
    """Attribute names of external modules and of the classes and objects in them."""
    names: set[str] = set()
    for module_name in sorted(modules):
        try:
            with warnings.catch_warnings():  # deprecated modules warn on import
                warnings.simplefilter("ignore")
                module = sys.modules.get(module_name) or importlib.import_module(module_name)
        except Exception:  # noqa: S112 - a missing optional dependency: nothing to learn
            continue
        names.update(dir(module))
        for value in list(vars(module).values()):
            if isinstance(value, type | types.ModuleType):
                names.update(dir(value))
    return names


_DOCTEST_PROMPT = re.compile(r"^[ \t]*>>>(?: |$)", re.M)


# -- rewriting ---------------------------------------------------------------------------


def _docstring_positions(tree: ast.AST) -> set[tuple[int, int]]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                found.add((body[0].value.lineno, body[0].value.col_offset))
    return found


def _split_string(token: str) -> tuple[str, str, str, str]:
    """``(prefix, quote, body, quote)`` of a string token."""
    index = 0
    while token[index] not in "'\"":
        index += 1
    prefix, rest = token[:index], token[index:]
    quote = rest[:3] if rest[:3] in ('"""', "'''") else rest[0]
    return prefix, quote, rest[len(quote) : len(rest) - len(quote)], quote


COMMENT_POLICIES = ("marker", "keep", "engine")
_CATEGORY_ORDER = {"C": 0, "f": 1, "m": 2, "v": 3}
_KEPT = {"self", "cls", "_"}


def _protected(name: str) -> bool:
    return (
        name in _KEPT
        or _dunder(name)
        or name.startswith("test")  # unittest finds these by name
        or name in ("setUpModule", "tearDownModule", "load_tests")
    )


@dataclass
class Anonymized:
    files: list[SourceFile]
    code_map: CodeMap
    renamed: int  # identifiers renamed
    defined: int  # identifiers the project defines
    kept: list[str]  # defined identifiers left as they were (shared with the outside)


class PythonAnonymizer:
    """Anonymizes a set of Python files that belong together.

    ``comments``/``docstrings``: ``"marker"`` (replaced, restorable), ``"keep"``, or
    ``"engine"`` (kept, with the engine's values as tokens and the project's names renamed).
    ``strings``: ``"refs"`` renames the project's names inside string text where the text
    refers to the code and leaves words of data (the program behaves the same);
    ``"all"`` renames them wherever they appear as words of three letters or more, so no
    renamed name is left, at the price of changing what text-processing code computes.
    ``literals``: a function that transforms the text of a string literal and returns
    the new text plus the tokens it introduced (the engine; ``None`` leaves them).
    """

    def __init__(
        self,
        *,
        comments: str = "marker",
        docstrings: str = "marker",
        literals: Any = None,
        strings: str = "refs",
    ) -> None:
        if strings not in ("refs", "all"):
            raise ValueError(f"strings must be 'refs' or 'all', not {strings!r}")
        for option, value in (("comments", comments), ("docstrings", docstrings)):
            if value not in COMMENT_POLICIES:
                raise ValueError(f"{option} must be one of {COMMENT_POLICIES}, not {value!r}")
        self.comments = comments
        self.docstrings = docstrings
        self.strings = strings
        self.literals = literals

    def anonymize(self, files: list[SourceFile]) -> Anonymized:
        internal = {f.module for f in files}
        defined: dict[str, str] = {}
        external: set[str] = set(_EXTERNAL_BASE)
        imported: set[str] = set()
        calls: list[tuple[str | None, str]] = []
        trees: dict[str, ast.AST] = {}
        all_strings: dict[str, list[tuple[int, int]]] = {}
        name_groups: dict[str, list[list[tuple[int, int, str]]]] = {}
        placeholders: set[str] = set()
        for file in files:
            tree = ast.parse(file.text, filename=file.path)
            trees[file.path] = tree
            package = (
                file.module if file.path.endswith("__init__.py") else file.module.rpartition(".")[0]
            )
            facts, file_calls = _Collector(internal, package).run(tree)
            for name, category in facts.defined.items():
                if (
                    name not in defined
                    or _CATEGORY_ORDER[category] < _CATEGORY_ORDER[defined[name]]
                ):
                    defined[name] = category
            external |= facts.external
            imported |= facts.imported_modules
            calls += file_calls
            all_strings[file.path] = facts.all_strings
            name_groups[file.path] = facts.name_groups
            placeholders |= facts.placeholders
        external |= _introspect(imported)
        callables = {n for n, c in defined.items() if c in ("C", "f")}
        for callee, keyword_name in calls:
            if callee is None or callee not in callables or callee in external:
                external.add(keyword_name)
        for module in internal:
            for part in module.split("."):
                if part and part not in defined:
                    defined[part] = "m"
        corpus = UsedWords(f.text for f in files)
        names: dict[str, str] = {}
        counters = {"C": 0, "f": 0, "v": 0, "m": 0}
        kept = []
        for name in sorted(defined, key=lambda n: (_CATEGORY_ORDER[defined[n]], n)):
            if name in external or _protected(name) or name in _KEYWORDS:
                kept.append(name)
                continue
            category = defined[name]
            # Leading underscores stay: they make a name private to star imports and
            # __all__ checks, and two of them turn on name mangling in a class.
            lead = name[: len(name) - len(name.lstrip("_"))]
            while True:
                counters[category] += 1
                new = f"{lead}{category}_{counters[category]}"
                if new not in corpus and new not in external:
                    break
            names[name] = new
        code_map = CodeMap(names={new: old for old, new in names.items()})
        for path, groups in name_groups.items():
            for group in groups:
                # Two of the project's own (not one- or two-letter) names make it a list of
                # names, and then its short names are names too ("c" beside "January").
                own = sum(1 for *_, value in group if value in names and len(value) >= 3)
                if own >= 2:
                    all_strings[path] += [(line, column) for line, column, _ in group]
        renames = Renames(
            names,
            {part for module in internal for part in module.split(".")},
            placeholders,
            everywhere=self.strings == "all",
        )
        counter = {"c": 0, "d": 0}
        out_files = []
        for file in files:
            text = self._rewrite(
                file,
                trees[file.path],
                renames,
                set(all_strings[file.path]),
                code_map,
                counter,
                corpus,
            )
            parts = file.path.split("/")
            new_parts = [
                names.get(part.removesuffix(".py"), part.removesuffix(".py"))
                + (".py" if part.endswith(".py") else "")
                for part in parts
            ]
            new_path = "/".join(new_parts)
            if new_path != file.path:
                code_map.paths[new_path] = file.path
            out_files.append(SourceFile(new_path, text))
        return Anonymized(out_files, code_map, len(names), len(defined), sorted(kept))

    def _marker(self, kind: str, counter: dict[str, int], corpus: UsedWords) -> str:
        while True:
            counter[kind] += 1
            marker = f"veil_{kind}_{counter[kind]}"
            if marker not in corpus:
                return marker

    def _rewrite(
        self,
        file: SourceFile,
        tree: ast.AST,
        names: Renames,
        all_strings: set[tuple[int, int]],
        code_map: CodeMap,
        counter: dict[str, int],
        corpus: UsedWords,
    ) -> str:
        text = file.text
        line_starts = [0]
        for line in text.splitlines(keepends=True):
            line_starts.append(line_starts[-1] + len(line))
        docstrings = _docstring_positions(tree) if self.docstrings != "keep" else set()
        edits: list[tuple[int, int, str]] = []
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        for token in tokens:
            start = line_starts[token.start[0] - 1] + token.start[1]
            end = line_starts[token.end[0] - 1] + token.end[1]
            value = token.string
            if token.type == tokenize.NAME and value in names:
                edits.append((start, end, names[value]))
            elif token.type == tokenize.COMMENT and self.comments != "keep":
                if token.start[0] <= 2 and (value.startswith("#!") or "coding" in value):
                    continue  # shebang and encoding declarations must stay
                if self.comments == "engine":
                    edits.append((start, end, "#" + self._prose(value[1:], names, code_map)))
                    continue
                marker = "# " + self._marker("c", counter, corpus)
                code_map.markers[marker] = value
                edits.append((start, end, marker))
            elif token.type == tokenize.STRING:
                replacement = self._string(
                    value, token.start, docstrings, all_strings, names, code_map, counter, corpus
                )
                if replacement != value:
                    edits.append((start, end, replacement))
        out = []
        cursor = 0
        for start, end, new in edits:
            out.append(text[cursor:start])
            out.append(new)
            cursor = end
        out.append(text[cursor:])
        return "".join(out)

    def _doctest(
        self,
        body: str,
        names: Renames,
        counter: dict[str, int],
        corpus: UsedWords,
        prose: Callable[[str], str] | None = None,
    ) -> str:
        """A doctest docstring's examples and expected output, renamed like the code, with
        its prose lines emptied (line numbers stay); a marker on the first line keeps two
        docstrings that differ only in prose apart. With ``prose``, prose lines go
        through it instead (the ``engine`` policy)."""
        out: list[str] = []
        state = "prose"  # or "source" (after >>> and its ... lines) or "output"
        for number, line in enumerate(body.split("\n")):
            stripped = line.lstrip(" \t")
            if _DOCTEST_PROMPT.match(line) or (
                state == "source" and (stripped == "..." or stripped.startswith("... "))
            ):
                state = "source"
                out.append(rename_identifiers(line, names))
            elif state != "prose" and stripped:
                state = "output"
                out.append(rename_words(line, names))
            else:
                state = "prose"
                if prose is not None:
                    out.append(prose(line))
                else:
                    out.append(self._marker("d", counter, corpus) if number == 0 else "")
        return "\n".join(out)

    def _prose(self, text: str, names: Renames, code_map: CodeMap) -> str:
        """A comment's or docstring's text under the ``engine`` policy: values the engine
        finds become tokens, and every name of the project (three letters or more) is
        renamed wherever it appears — prose does not change what the program does."""
        if self.literals is not None and text.strip():
            text, introduced = self.literals(text)
            code_map.literals.update(introduced)
        return rename_words(text, names.for_prose, whole=False)

    def _string(
        self,
        value: str,
        position: tuple[int, int],
        docstrings: set[tuple[int, int]],
        all_strings: set[tuple[int, int]],
        names: Renames,
        code_map: CodeMap,
        counter: dict[str, int],
        corpus: UsedWords,
    ) -> str:
        prefix, quote, body, _ = _split_string(value)
        if position in docstrings and self.docstrings == "engine":
            if _DOCTEST_PROMPT.search(body):
                prose = functools.partial(self._prose, names=names, code_map=code_map)
                return prefix + quote + self._doctest(body, names, counter, corpus, prose) + quote
            return prefix + quote + self._prose(body, names, code_map) + quote
        if position in docstrings and _DOCTEST_PROMPT.search(body):
            block = prefix + quote + self._doctest(body, names, counter, corpus) + quote
            code_map.blocks[block] = value
            return block
        if position in docstrings:
            marker_quote = quote if len(quote) == 3 else '"""'
            marker = (
                prefix
                + marker_quote
                + self._marker("d", counter, corpus)
                + "\n" * value.count("\n")
                + marker_quote
            )
            code_map.markers[marker] = value
            return marker
        if position in all_strings and body in names:
            return prefix + quote + names[body] + quote
        # The engine sees the original text; names are renamed after it, outside the
        # tokens it introduced, so restore (names first, then tokens) gives back every byte.
        if self.literals is not None and body:
            body, introduced = self.literals(body)
            code_map.literals.update(introduced)
        if "f" in prefix.lower():
            body = rename_fstring(body, names)
        elif is_python_code(body):
            body = rename_identifiers(body, names)
        else:
            body = rename_words(body, names)
        return prefix + quote + body + quote
