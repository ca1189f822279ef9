"""Privacy code-review checks for Python, from the AST: what a reviewer looks for before
code that handles secrets and message content ships."""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from veil.config import is_loopback_host

SENSITIVE = re.compile(
    r"(?:^|_)(?:pass(?:word|wd|phrase)?|pwd|secret|token|api_?key|apikey|private_?key|"
    r"credentials?|auth|session_?key|access_?key|client_?secret|message_?(?:text|body|content)|"
    r"body|prompt|ssn|credit_?card|card_?number)(?:$|_)",
    re.IGNORECASE,
)
# Names that match the pattern but hold no secret.
_HARMLESS = re.compile(
    r"(?:^|_)(?:len|length|count|type|name|id|url|path|file|field|header|prefix|min|max|"
    r"hash|policy|required|regex|pattern|format|label|kind|env|var|key_?id|validator|"
    r"reset|expires?|ttl|usage|limit|endpoint)(?:$|_)",
    re.IGNORECASE,
)
# Any word a sensitive name could be built from (a superset of SENSITIVE's matches).
_SENSITIVE_ANYWHERE = re.compile(
    r"pass|pwd|secret|token|api_?key|apikey|private|credential|auth|session|access|"
    r"message|body|prompt|ssn|card",
    re.IGNORECASE,
)
_LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
_LOGGER_NAMES = re.compile(r"^(?:logging|log|logger|_log|_logger|LOG|LOGGER|structlog)$")
_PLACEHOLDERS = re.compile(
    r"^(?:|x+|\*+|<[^>]*>|\$\{?[A-Z_]+\}?|%\(?\w*\)?s|\{\w*\}|changeme|change_me|example|"
    r"dummy|test|none|null|secret|password|your[-_ ]?\w*|redacted|\.\.\.)$",
    re.IGNORECASE,
)
_HTTP = re.compile(r"http://[^\s'\"<>]+")
_NAMESPACE_HOSTS = re.compile(
    r"(?:^|\.)(?:w3\.org|xmlsoap\.org|xml\.org|openoffice\.org|purl\.org|"
    r"schemas\.[\w.]+|ns\.adobe\.com|example\.(?:com|org|net)|localhost)$"
)


@dataclass(frozen=True, slots=True)
class CodeIssue:
    rule: str
    line: int
    column: int
    message: str
    end_line: int | None = None


def sensitive_name(name: str) -> bool:
    return bool(SENSITIVE.search(name)) and not _HARMLESS.search(name)


def _names_in(node: ast.AST) -> Iterator[str]:
    """Names and attribute names read inside an expression (f-strings included)."""
    for child in ast.walk(node):
        yield from _target_names(child)


def _is_log_call(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "print"
    if isinstance(func, ast.Attribute) and func.attr in _LOG_METHODS:
        owner = func.value
        if isinstance(owner, ast.Name):
            return bool(_LOGGER_NAMES.match(owner.id)) or owner.id.endswith("logger")
        if isinstance(owner, ast.Attribute):
            return owner.attr in ("logger", "log", "_logger", "_log")
        if isinstance(owner, ast.Call):  # logging.getLogger(__name__).info(...)
            inner = owner.func
            return isinstance(inner, ast.Attribute) and inner.attr == "getLogger"
    return False


def _target_names(target: ast.AST) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Attribute):
        yield target.attr
    elif (
        isinstance(target, ast.Subscript)
        and isinstance(target.slice, ast.Constant)
        and isinstance(target.slice.value, str)
    ):
        yield target.slice.value


def _credential_literal(value: ast.AST) -> bool:
    if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
        return False
    text = value.value.strip()
    return len(text) >= 4 and not _PLACEHOLDERS.match(text) and " " not in text


def _http_issue(text: str) -> str | None:
    for match in _HTTP.finditer(text):
        try:
            host = urlsplit(match.group(0)).hostname
        except ValueError:  # "http://[" and other unparsable text
            continue
        if host and not is_loopback_host(host) and not _NAMESPACE_HOSTS.search(host):
            return host
    return None


class _Visitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.issues: list[CodeIssue] = []
        self._docstrings: set[int] = set()

    def _add(self, rule: str, node: ast.AST, message: str) -> None:
        self.issues.append(
            CodeIssue(
                rule,
                getattr(node, "lineno", 1),
                getattr(node, "col_offset", 0) + 1,
                message,
                getattr(node, "end_lineno", None),
            )
        )

    def _mark_docstring(self, node: ast.AST) -> None:
        body = getattr(node, "body", None)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            self._docstrings.add(id(body[0].value))

    def visit_Module(self, node: ast.Module) -> None:
        self._mark_docstring(node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._mark_docstring(node)
        positional = [*node.args.posonlyargs, *node.args.args]
        pairs = list(
            zip(
                positional[len(positional) - len(node.args.defaults) :],
                node.args.defaults,
                strict=True,
            )
        )
        pairs += [
            (a, d)
            for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
            if d is not None
        ]
        for arg, default in pairs:
            if sensitive_name(arg.arg) and _credential_literal(default):
                self._add("VEIL002", default, f"default value of parameter {arg.arg!r}")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]  # noqa: N815

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._mark_docstring(node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_log_call(node):
            for argument in [*node.args, *(k.value for k in node.keywords)]:
                leaked = sorted({n for n in _names_in(argument) if sensitive_name(n)})
                if leaked:
                    what = "print" if isinstance(node.func, ast.Name) else "logging call"
                    self._add("VEIL001", node, f"{what} includes {', '.join(leaked)}")
                    break
        for keyword in node.keywords:
            if (
                keyword.arg == "verify"
                and isinstance(keyword.value, ast.Constant)
                and keyword.value.value is False
            ):
                self._add("VEIL004", keyword.value, "verify=False")
            elif keyword.arg and sensitive_name(keyword.arg) and _credential_literal(keyword.value):
                self._add("VEIL002", keyword.value, f"literal passed as {keyword.arg}=")
        self._deserialization(node)
        self.generic_visit(node)

    def _deserialization(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
            return
        owner, method = func.value.id, func.attr
        if owner in ("pickle", "cPickle", "dill") and method in ("load", "loads"):
            self._add("VEIL005", node, f"{owner}.{method}")
        elif owner == "yaml" and method in ("load", "load_all", "unsafe_load", "full_load"):
            loader = next((k.value for k in node.keywords if k.arg == "Loader"), None)
            if loader is None and len(node.args) > 1:
                loader = node.args[1]
            safe = isinstance(loader, ast.Attribute | ast.Name) and "Safe" in ast.unparse(loader)
            if method in ("unsafe_load", "full_load") or not safe:
                self._add("VEIL005", node, f"yaml.{method} without SafeLoader")

    def _assignment(self, targets: list[ast.AST], value: ast.AST | None) -> None:
        if value is None or not _credential_literal(value):
            return
        for target in targets:
            for name in _target_names(target):
                if sensitive_name(name):
                    self._add("VEIL002", value, f"literal assigned to {name}")
                    return

    def visit_Assign(self, node: ast.Assign) -> None:
        self._assignment(list(node.targets), node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._assignment([node.target], node.value)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if (
                isinstance(key, ast.Constant)
                and isinstance(key.value, str)
                and sensitive_name(key.value)
                and _credential_literal(value)
            ):
                self._add("VEIL002", value, f"literal stored under {key.value!r}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if (
            isinstance(node.value, str)
            and "http://" in node.value
            and id(node) not in self._docstrings
        ):
            host = _http_issue(node.value)
            if host is not None:
                self._add("VEIL003", node, f"http://{host}")


def python_issues(source: str) -> list[CodeIssue]:
    """The code-review findings of one Python file; an unparsable file has none."""
    # Parsing is the expensive part: skip files in which no check could fire.
    if not (
        "http://" in source
        or "verify" in source
        or "pickle" in source
        or "yaml" in source
        or _SENSITIVE_ANYWHERE.search(source)
    ):
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    visitor = _Visitor()
    # Pathologically nested code: report what was found before the recursion limit.
    with contextlib.suppress(RecursionError):
        visitor.visit(tree)
    return visitor.issues


CONFIG_SUFFIXES = {
    ".yaml",
    ".yml",
    ".json",
    ".toml",
    ".ini",
    ".cfg",
    ".conf",
    ".env",
    ".properties",
}


def config_http_issues(text: str) -> list[CodeIssue]:
    """``http://`` endpoints in configuration files."""
    issues = []
    for number, line in enumerate(text.splitlines(), 1):
        if "http://" in line:
            host = _http_issue(line)
            if host is not None:
                issues.append(
                    CodeIssue("VEIL003", number, line.find("http://") + 1, f"http://{host}")
                )
    return issues
