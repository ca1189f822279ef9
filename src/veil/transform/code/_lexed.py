"""Code anonymization for languages without a Python-grade parser here: JavaScript,
TypeScript, Java, Go, C, C++, Rust and SQL, through Pygments lexers.

The contract is Python's (consistent renaming, comment markers, literals through the
engine, byte-exact restore), but scope is not proven: a name counts as the project's when
it is declared in it (after a declaration keyword, as a parameter, a method, a member
assigned on ``this``/``self``, or a name Pygments tags as a function or class
definition), and it is then renamed everywhere, member accesses included. A declared
name that is also a member of a library type (``size``, ``push``) is kept only if it is on
the keep list; see docs/code.md for the limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import Comment, Keyword, Name, String, Token, _TokenType

from veil.transform.code._codemap import CodeMap, UsedWords
from veil.transform.code._python import COMMENT_POLICIES, Anonymized, SourceFile
from veil.transform.code._text_names import Renames, rename_words

LANGUAGES = {
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".java": "java",
    ".go": "go",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".rs": "rust",
    ".sql": "sql",
}
_DECLARING = {
    "function",
    "const",
    "let",
    "var",
    "class",
    "interface",
    "type",
    "enum",
    "struct",
    "fn",
    "func",
    "impl",
    "trait",
    "union",
    "typedef",
    "mod",
    "static",
    "mut",
    "table",
    "view",
    "procedure",
    "index",
}
# Entry points, library members and names tools look up by spelling.
_KEEP = {
    "main",
    "constructor",
    "prototype",
    "length",
    "push",
    "pop",
    "map",
    "filter",
    "reduce",
    "forEach",
    "toString",
    "valueOf",
    "then",
    "catch",
    "equals",
    "hashCode",
    "size",
    "get",
    "set",
    "add",
    "remove",
    "append",
    "len",
    "new",
    "init",
    "String",
    "Error",
    "self",
    "this",
    "super",
    "args",
    "exports",
    "module",
    "require",
    "default",
    "id",
    "name",
    "value",
    "key",
    "keys",
    "values",
    "data",
    "test",
    "setUp",
    "tearDown",
    "run",
    "close",
    "open",
    "read",
    "write",
    "next",
    "iter",
    "from",
    "into",
    "clone",
    "fmt",
    "Display",
    "Debug",
    "Println",
    "Printf",
    "log",
    "console",
    "window",
    "document",
    "props",
    "state",
    "render",
    "println",
    "printf",
    "System",
    "out",
    "err",
}
_SKIPPED_NAMES = (
    Name.Builtin,
    Name.Namespace,
    Name.Decorator,
    Name.Label,
    Name.Exception,
    Name.Constant,
    Name.Entity,
    Name.Tag,
)
_KEPT_COMMENTS = (Comment.Preproc, Comment.PreprocFile, Comment.Hashbang)


def language_of(path: str) -> str | None:
    suffix = path[path.rfind(".") :].lower() if "." in path else ""
    return LANGUAGES.get(suffix)


def _lexer(language: str) -> Lexer:
    return get_lexer_by_name(language, stripnl=False, ensurenl=False, stripall=False)


def _is_name(kind: _TokenType) -> bool:
    return kind in Name and not any(kind in skipped for skipped in _SKIPPED_NAMES)


def _declared(tokens: list[tuple[int, _TokenType, str]]) -> set[str]:
    names: set[str] = set()
    significant = [
        (kind, value)
        for _, kind, value in tokens
        if kind not in Token.Text and kind not in Comment and value.strip()
    ]
    depth_after_function = -1
    for index, (kind, value) in enumerate(significant):
        previous_kind = significant[index - 1][0] if index else Token
        previous = significant[index - 1][1] if index else ""
        before = significant[index - 2][1] if index > 1 else ""
        following = significant[index + 1][1] if index + 1 < len(significant) else ""
        if kind in Name.Function or kind in Name.Class:
            names.add(value)
            depth_after_function = 0
        if not _is_name(kind):
            if value == "(" and depth_after_function >= 0:
                depth_after_function += 1
            elif value == ")" and depth_after_function > 0:
                depth_after_function -= 1
                if depth_after_function == 0:
                    depth_after_function = -1
            continue
        if previous_kind in Keyword.Type and following in ("=", ";", ",", ")", "["):
            names.add(value)  # a typed variable or parameter: int total = ...
        elif previous.lower() in _DECLARING or (kind in Keyword.Declaration):
            names.add(value)
            if previous in ("function", "fn", "func"):
                depth_after_function = 0
        elif previous in ("this", "self") or before in ("this", "self"):
            if previous == "." and following in ("=",):
                names.add(value)
        elif depth_after_function > 0 and following in (",", ")", ":", "="):
            names.add(value)  # a parameter
        elif following == "=>" or (following in (",", ")") and _arrow_ahead(significant, index)):
            names.add(value)  # an arrow function's parameter
        elif following == "(" and _body_ahead(significant, index):
            names.add(value)  # a method or function definition: name(...) {
            depth_after_function = 0
    return names


def _arrow_ahead(significant: list[tuple[Any, str]], index: int) -> bool:
    """``(a, b) => ...``: skip the rest of the parameter list, then look for ``=>``."""
    closed = False
    for kind, value in significant[index + 1 : index + 24]:
        if closed:
            return value == "=>"
        if value == ")":
            closed = True
        elif value != "," and not _is_name(kind):
            return False
    return False


def _body_ahead(significant: list[tuple[Any, str]], index: int) -> bool:
    depth = 0
    for _, value in significant[index + 1 : index + 60]:
        if value == "(":
            depth += 1
        elif value == ")":
            depth -= 1
            if depth == 0:
                continue
        elif depth == 0:
            return value == "{"
    return False


def _comment_marker(text: str, number: int) -> str:
    lines = text.count("\n")
    if text.startswith("/*"):
        return f"/* veil_l_{number}" + "\n" * lines + " */"
    if text.startswith("--"):
        return f"-- veil_l_{number}"
    if text.startswith("#"):
        return f"# veil_l_{number}"
    return f"// veil_l_{number}"


class LexedAnonymizer:
    """Anonymizes files of the languages in :data:`LANGUAGES` (one project at a time)."""

    def __init__(
        self,
        *,
        comments: str = "marker",
        literals: Callable[[str], tuple[str, dict[str, str]]] | None = None,
    ) -> None:
        if comments not in COMMENT_POLICIES:
            raise ValueError(f"comments must be one of {COMMENT_POLICIES}, not {comments!r}")
        self.comments = comments
        self.literals = literals

    def anonymize(self, files: list[SourceFile]) -> Anonymized:
        lexed = {}
        declared: set[str] = set()
        for file in files:
            language = language_of(file.path)
            if language is None:
                raise ValueError(f"{file.path}: no lexer for this file type")
            tokens = list(_lexer(language).get_tokens_unprocessed(file.text))
            lexed[file.path] = tokens
            declared |= _declared(tokens)
        corpus = UsedWords(f.text for f in files)
        names: dict[str, str] = {}
        counter = 0
        kept = []
        for name in sorted(declared):
            if name in _KEEP or len(name) < 2:
                kept.append(name)
                continue
            while True:
                counter += 1
                new = f"n_{counter}"
                if new not in corpus:
                    break
            names[name] = new
        code_map = CodeMap(names={new: old for old, new in names.items()})
        # Comments under the engine policy: every declared name renamed in their text.
        prose_names = Renames(names, set(), set(), everywhere=True)
        marker_number = 0
        out = []
        for file in files:
            parts: list[str] = []
            cursor = 0
            for offset, kind, value in lexed[file.path]:
                if offset < cursor:
                    continue
                parts.append(file.text[cursor:offset])
                replacement = value
                if _is_name(kind) and value in names:
                    replacement = names[value]
                elif (
                    kind in Comment
                    and not any(kind in k for k in _KEPT_COMMENTS)
                    and self.comments == "engine"
                ):
                    replacement = value
                    if self.literals is not None and value.strip():
                        replacement, introduced = self.literals(value)
                        code_map.literals.update(introduced)
                    replacement = rename_words(replacement, prose_names, whole=False)
                elif (
                    kind in Comment
                    and not any(kind in k for k in _KEPT_COMMENTS)
                    and self.comments == "marker"
                    and value.strip()
                ):
                    while True:
                        marker_number += 1
                        if f"veil_l_{marker_number}" not in corpus:
                            break
                    body = value.rstrip("\n")
                    if not body.startswith("/*") and "\n" in body:
                        body = value  # a single-line comment never spans lines
                    marker = _comment_marker(body, marker_number)
                    code_map.markers[marker] = body
                    replacement = marker + value[len(body) :]
                elif kind in String and self.literals is not None and len(value) > 3:
                    replacement, introduced = self.literals(value)
                    code_map.literals.update(introduced)
                parts.append(replacement)
                cursor = offset + len(value)
            parts.append(file.text[cursor:])
            out.append(SourceFile(file.path, "".join(parts)))
        return Anonymized(out, code_map, len(names), len(declared), sorted(kept))
