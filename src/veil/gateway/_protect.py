"""What the gateway does to bodies: find every text a model would read, transform it by
policy, and restore pseudonyms (then screen for new personal data) in what comes back.

Requests and answers stay the provider's JSON; only string values change, so fields Veil
does not know pass through untouched.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Any

from veil.detect import Finding
from veil.errors import PolicyViolationError
from veil.transform import Policy, Pseudonymizer, Redactor, StreamRestorer, json_string_body
from veil.transform.code import (
    CodeMap,
    CodeStreamRestorer,
    LiteralTransformer,
    PythonAnonymizer,
    SourceFile,
)

_FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)```", re.DOTALL)
_LOOKS_LIKE_PYTHON = re.compile(r"^\s*(?:def|class|import|from|async def)\s", re.MULTILINE)
Slot = tuple[Any, Any]  # (container, key): container[key] is a str to transform


def _text(container: Any, key: Any, slots: list[Slot]) -> None:
    if isinstance(container[key], str):
        slots.append((container, key))


def walk_strings(node: Any, slots: list[Slot]) -> None:
    """Every string value inside a JSON value (tool inputs)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                slots.append((node, key))
            else:
                walk_strings(value, slots)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, str):
                slots.append((node, index))
            else:
                walk_strings(value, slots)


class JsonText:
    """A field that holds JSON text (a tool call's arguments), read as its parsed value:
    its strings are scanned and restored decoded (a value with a quote or a line break is
    one string, not its escapes), and :func:`dumps` writes it back as JSON text — the
    original text when nothing in it changed."""

    __slots__ = ("original", "pristine", "value")

    def __init__(self, original: str, value: Any) -> None:
        self.original = original
        self.value = value
        self.pristine = json.loads(original)  # a second parse: cheaper than a deep copy

    def __repr__(self) -> str:
        return "JsonText()"

    def text(self) -> str:
        if self.value == self.pristine:
            return self.original
        return json.dumps(self.value, ensure_ascii=False)


# ``\u003c`` / ``\u003e`` in JSON text, or an escaped backslash (kept: what follows it is
# text, not an escape). Go's encoder writes ``<`` and ``>`` this way (Ollama's tool-call
# arguments: ``"\u003cEMAIL_1\u003e"``), where no token would be found.
_ANGLE_ESCAPE = re.compile(r"\\\\|\\u003([cCeE])")
# The end of a piece that may be the start of such an escape: a run of backslashes and a
# prefix of ``u003c``.
_CUT_ESCAPE = re.compile(r"\\+(?:u(?:0(?:03?)?)?)?\Z")


def _angle(match: re.Match[str]) -> str:
    letter = match.group(1)
    if letter is None:
        return match.group(0)
    return "<" if letter in "cC" else ">"


def unescape_angles(text: str) -> str:
    r"""JSON text with ``\u003c`` and ``\u003e`` written as ``<`` and ``>``: the same JSON
    value, in which tokens are found."""
    return _ANGLE_ESCAPE.sub(_angle, text) if "\\u003" in text else text


class AngleUnescaper:
    """:func:`unescape_angles` for JSON text that arrives in pieces cut anywhere: a piece
    that ends in what may begin an escape holds that end back for the next."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held = ""

    def feed(self, chunk: str) -> str:
        text = self._held + chunk
        # A maximal run of backslashes starts where an escape starts (in valid JSON), so
        # holding the whole run keeps escaped backslashes paired.
        cut = _CUT_ESCAPE.search(text)
        end = cut.start() if cut is not None else len(text)
        self._held = text[end:]
        return unescape_angles(text[:end])

    def close(self) -> str:
        text, self._held = self._held, ""
        return text


def _json_text(container: dict[str, Any], key: str, slots: list[Slot]) -> None:
    """Slots for the strings of a JSON-text field, or the field itself when its text is
    not a JSON object or array (a model's broken arguments are scanned as text)."""
    text = container[key]
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, dict | list):
        container[key] = JsonText(text, value)
        walk_strings(value, slots)
    else:
        slots.append((_BrokenJson(container), key))


class _BrokenJson:
    """A JSON-text field that does not parse, scanned as text: values restored into it
    are JSON-escaped (it is still meant as JSON)."""

    __slots__ = ("container",)

    def __init__(self, container: dict[str, Any]) -> None:
        self.container = container

    def __getitem__(self, key: str) -> Any:
        return self.container[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.container[key] = value


def _openai_content(message: dict[str, Any], slots: list[Slot]) -> None:
    content = message.get("content")
    if isinstance(content, str):
        slots.append((message, "content"))
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                slots.append((part, "text"))
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            _json_text(function, "arguments", slots)
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("arguments"), str):
        _json_text(legacy, "arguments", slots)
    if isinstance(message.get("refusal"), str):
        slots.append((message, "refusal"))


def _openai_request_fields(body: dict[str, Any], slots: list[Slot]) -> None:
    """Fields beside the prompt that carry what a user or an application wrote: the
    end-user identifier (``user``, ``safety_identifier``: often an e-mail address) and
    ``metadata`` values."""
    for field in ("user", "safety_identifier"):
        if field in body:
            _text(body, field, slots)
    if isinstance(body.get("metadata"), dict):
        walk_strings(body["metadata"], slots)


def chat_request_slots(body: dict[str, Any]) -> list[Slot]:
    slots: list[Slot] = []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            _openai_content(message, slots)
    prediction = body.get("prediction")
    if isinstance(prediction, dict) and "content" in prediction:
        _openai_content(prediction, slots)  # predicted outputs: the text being edited
    _openai_request_fields(body, slots)
    return slots


def prompt_slots(body: dict[str, Any], field: str) -> list[Slot]:
    """``prompt`` (completions, with its ``suffix``) or ``input`` (embeddings): a string or
    a list of strings; token-id arrays are left alone."""
    slots: list[Slot] = []
    for name in (field, "suffix") if field == "prompt" else (field,):
        if name not in body:
            continue
        if isinstance(body[name], str):
            slots.append((body, name))
        elif isinstance(body[name], list):
            for index, item in enumerate(body[name]):
                if isinstance(item, str):
                    slots.append((body[name], index))
    _openai_request_fields(body, slots)
    return slots


def _anthropic_blocks(container: Any, key: Any, slots: list[Slot]) -> None:
    content = container[key]
    if isinstance(content, str):
        slots.append((container, key))
        return
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            _text(block, "text", slots)
            _citations(block, slots)
        elif kind == "tool_use":
            walk_strings(block.get("input"), slots)
        elif kind in ("tool_result", "search_result") and "content" in block:
            _anthropic_blocks(block, "content", slots)
        elif kind == "document" and isinstance(block.get("source"), dict):
            source = block["source"]
            if source.get("type") == "text" and isinstance(source.get("data"), str):
                slots.append((source, "data"))
            elif source.get("type") == "content" and "content" in source:
                _anthropic_blocks(source, "content", slots)
        elif kind == "thinking":
            _text(block, "thinking", slots)
        # What a user wrote about a document or a search result (its title, the context
        # given with it, the search result's source) travels with it.
        if kind in ("document", "search_result"):
            for field in ("title", "context", "source"):
                if isinstance(block.get(field), str):
                    slots.append((block, field))


def _citations(block: dict[str, Any], slots: list[Slot]) -> None:
    """The quoted text and titles of a text block's citations (the words of a scanned
    document: pseudonyms in an answer, the same on the next turn's request)."""
    for citation in block.get("citations") or []:
        if isinstance(citation, dict):
            for field in ("cited_text", "document_title", "title"):
                if isinstance(citation.get(field), str):
                    slots.append((citation, field))


def messages_request_slots(body: dict[str, Any]) -> list[Slot]:
    slots: list[Slot] = []
    if "system" in body:
        _anthropic_blocks(body, "system", slots)
    for message in body.get("messages") or []:
        if isinstance(message, dict) and "content" in message:
            _anthropic_blocks(message, "content", slots)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and "user_id" in metadata:
        _text(metadata, "user_id", slots)  # the end user's id: often an e-mail address
    return slots


def chat_answer_slots(body: dict[str, Any]) -> list[Slot]:
    slots: list[Slot] = []
    for choice in body.get("choices") or []:
        if isinstance(choice, dict):
            if isinstance(choice.get("message"), dict):
                _openai_content(choice["message"], slots)
            if isinstance(choice.get("text"), str):
                slots.append((choice, "text"))
    return slots


def messages_answer_slots(body: dict[str, Any]) -> list[Slot]:
    slots: list[Slot] = []
    if "content" in body:
        _anthropic_blocks(body, "content", slots)
    return slots


def without_pseudonyms(policy: Policy) -> Policy:
    """The policy with every ``pseudonymize`` turned into ``redact`` (embeddings: a
    per-request token would make equal texts embed differently)."""

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("operator") == "pseudonymize":
                return {**node, "operator": "redact"}
            return {key: convert(value) for key, value in node.items()}
        return node

    return Policy.model_validate(convert(policy.model_dump(exclude_none=True)))


class FindingsCache:
    """Findings of recently scanned prompt texts and whole answers. Chat clients re-send
    the whole conversation on every turn; without this, each earlier message is scanned
    again and a conversation costs quadratic time. Keyed by the detector and a BLAKE2b
    digest of the text, so the cache keeps no text; bounded in entries and text length.
    Thread-safe: with a NER model, prompts are scanned in worker threads."""

    def __init__(self, entries: int = 4096, max_chars: int = 32768) -> None:
        self._entries = entries
        self._max_chars = max_chars
        self._cache: OrderedDict[tuple[object, bytes], list[Finding]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FindingsCache(entries={len(self._cache)})"

    def find(self, redactor: Redactor, text: str, *, remember: bool = True) -> list[Finding]:
        """The findings at or above the policy's score; ``remember=False`` scans without
        looking up or filling the cache (pieces of a stream would only evict texts)."""
        detector = redactor.detector
        key = self._key(detector, text) if remember else None
        found = self._lookup(key)
        if found is None:
            found = detector.find(text)
            self._store(key, found)
        min_score = redactor.policy.min_score
        return [f for f in found if f.score >= min_score]

    def find_all(self, redactor: Redactor, texts: Sequence[str]) -> list[list[Finding]]:
        """``find`` for each text; the texts not in the cache are detected together
        (`Detector.find_many`: one batch through the NER model when one is configured)."""
        if len(texts) == 1:  # most requests bring one new message: the shorter path
            return [self.find(redactor, texts[0])]
        detector = redactor.detector
        keys = [self._key(detector, text) for text in texts]
        found = [self._lookup(key) for key in keys]
        missing = [index for index, hit in enumerate(found) if hit is None]
        if missing:
            fresh = detector.find_many([texts[index] for index in missing])
            for index, findings in zip(missing, fresh, strict=True):
                found[index] = findings
                self._store(keys[index], findings)
        min_score = redactor.policy.min_score
        return [[f for f in hit or () if f.score >= min_score] for hit in found]

    def _key(self, detector: object, text: str) -> tuple[object, bytes] | None:
        if self._entries <= 0 or len(text) > self._max_chars:
            return None
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
        return (detector, digest.digest())  # the detector by identity: it is kept alive

    def _lookup(self, key: tuple[object, bytes] | None) -> list[Finding] | None:
        if key is None:
            return None
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def _store(self, key: tuple[object, bytes] | None, findings: list[Finding]) -> None:
        if key is None:
            return
        with self._lock:
            self._cache[key] = findings
            if len(self._cache) > self._entries:
                self._cache.popitem(last=False)


class Exchange:
    """One request and its answer: the pseudonym scope, what was found and done."""

    def __init__(
        self,
        prompt: Redactor,
        answer: Redactor,
        *,
        whole_answer: Redactor | None = None,
        restore: bool = True,
        cache: FindingsCache | None = None,
    ) -> None:
        """``answer`` screens answers streamed in pieces; ``whole_answer`` (default: the
        same) screens whole ones, and may read them with the NER model."""
        self._cache = cache if cache is not None else FindingsCache(entries=0)
        self.pseudonymizer = Pseudonymizer(scope="request")
        self._prompt = prompt.with_pseudonymizer(self.pseudonymizer)
        self._answer = answer.with_pseudonymizer(self.pseudonymizer)
        self._whole_answer = (
            self._answer
            if whole_answer is None or whole_answer is answer
            else whole_answer.with_pseudonymizer(self.pseudonymizer)
        )
        self._min_score = prompt.policy.min_score
        self.restores = restore
        self.kinds: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.screened: Counter[str] = Counter()
        self._prompt_text: list[str] = []
        self.chars_out = 0
        self.code_map: CodeMap | None = None

    @property
    def reads_answers_with_model(self) -> bool:
        """Whether whole answers go through the NER model (slow: run them in a thread)."""
        return self._whole_answer.detector.ner is not None

    def protect(self, slots: list[Slot]) -> None:
        """Transform every slot by the prompt policy (all findings first, so a block
        rejects the request before anything is changed)."""
        blocked: set[str] = set()
        if self._prompt.policy.code_blocks == "anonymize":
            self._anonymize_code(slots)
        texts = [container[key] for container, key in slots]
        self._prompt_text.extend(texts)
        found = list(zip(slots, texts, self._cache.find_all(self._prompt, texts), strict=True))
        for slot, text, findings in found:
            if not findings:
                continue
            try:
                redaction = self._prompt.apply(text, findings)
            except PolicyViolationError as exc:
                blocked.update(exc.kinds)
                continue
            slot[0][slot[1]] = redaction.text
            self.kinds.update(f.kind for f in findings)
            self.actions.update(redaction.actions)
        if blocked:
            self.kinds.update(f.kind for _, _, fs in found for f in fs if f.kind in blocked)
            raise PolicyViolationError(
                f"Request blocked by Veil's policy: it contains {', '.join(sorted(blocked))}.",
                hint="Remove the secret from the prompt.",
                kinds=tuple(sorted(blocked)),
            )

    def _anonymize_code(self, slots: list[Slot]) -> None:
        """Fenced Python blocks of every slot, anonymized as one project (names stay
        consistent across messages); blocks that do not parse are left to the engine."""
        blocks: list[tuple[int, int, int, str]] = []  # slot index, start, end, body
        for index, (container, key) in enumerate(slots):
            for match in _FENCE.finditer(container[key]):
                body = match.group(2)
                if match.group(1) is None and not _LOOKS_LIKE_PYTHON.search(body):
                    continue  # an unlabeled block that may be shell, SQL or prose
                try:
                    ast.parse(body)
                except (SyntaxError, ValueError):
                    continue
                blocks.append((index, match.start(2), match.end(2), body))
        if not blocks:
            return
        literals = LiteralTransformer(
            self._prompt.detector, self._min_score, pseudonymizer=self.pseudonymizer
        )
        result = PythonAnonymizer(literals=literals).anonymize(
            [SourceFile(f"block_{n}.py", body) for n, (_, _, _, body) in enumerate(blocks)]
        )
        self.code_map = result.code_map
        self.actions["anonymize_code"] += len(blocks)
        for (index, start, end, _), file in reversed(list(zip(blocks, result.files, strict=True))):
            container, key = slots[index]
            text = container[key]
            container[key] = text[:start] + file.text + text[end:]

    def screen(self, text: str, *, whole: bool = False) -> str:
        """Mask personal data the model produced that was not in the prompt.

        A ``whole`` answer (not a piece of a stream) is scanned through the findings
        cache: the client sends it back as history on the next turn, where it is then
        not scanned again."""
        if not text:
            return text
        redactor = self._whole_answer if whole else self._answer
        findings = self._cache.find(redactor, text, remember=whole)
        if not findings:
            return text
        prompt = "\n".join(self._prompt_text)
        new = [f for f in findings if text[f.start : f.end] not in prompt]
        if not new:
            return text
        self.screened.update(f.kind for f in new)
        try:
            return redactor.apply(text, new).text
        except PolicyViolationError:
            # `block` in the answer surface: the values are removed, the answer stays.
            parts, cursor = [], 0
            for finding in sorted(new, key=lambda f: f.start):
                parts += [text[cursor : finding.start], f"[{finding.kind}]"]
                cursor = finding.end
            return "".join([*parts, text[cursor:]])

    def answer_text(self, text: str, *, json_text: bool = False) -> str:
        """A whole answer text: pseudonyms restored, then screened. ``json_text``: the
        text is JSON (a tool call's arguments), values are restored JSON-escaped."""
        self.chars_out += len(text)
        if not self.restores:
            return self.screen(text, whole=True)
        if self.code_map is not None:
            text = self.code_map.restore(text)
        if json_text:
            text = unescape_angles(text)
        encode = json_string_body if json_text else None
        return self.screen(self.pseudonymizer.restore(text, encode=encode), whole=True)

    def restore_slots(self, slots: list[Slot]) -> None:
        for container, key in slots:
            # Tool-call arguments that did not parse are still JSON text: a value with a
            # quote or a line break (a multi-line address) must not break them further.
            json_text = isinstance(container, _BrokenJson)
            container[key] = self.answer_text(container[key], json_text=json_text)

    def text_stream(self, *, json_text: bool = False) -> TextStream:
        return TextStream(self, json_text=json_text)

    def summary(self) -> dict[str, Any]:
        return {
            "found": dict(sorted(self.kinds.items())),
            "actions": dict(sorted(self.actions.items())),
            "answer_masked": dict(sorted(self.screened.items())),
        }


class TextStream:
    """One streamed text (a choice's content, a tool call's arguments, a content block):
    pseudonyms restored across chunk boundaries, then screened a clause at a time.

    Screening holds back the words after the last whitespace that follows a word with a
    letter in it, so numbers written with spaces (``+44 20 7946 0958``) are screened
    whole; at most 96 characters wait.
    """

    _HOLD = 96

    def __init__(self, exchange: Exchange, *, json_text: bool = False) -> None:
        self._exchange = exchange
        self._restorer = (
            StreamRestorer(exchange.pseudonymizer, encode=json_string_body if json_text else None)
            if exchange.restores
            else None
        )
        self._code = (
            CodeStreamRestorer(exchange.code_map)
            if exchange.restores and exchange.code_map is not None
            else None
        )
        self._angles = AngleUnescaper() if json_text and exchange.restores else None
        self._pending = ""

    def feed(self, chunk: str) -> str:
        self._exchange.chars_out += len(chunk)
        if self._code is not None:
            chunk = self._code.feed(chunk)
        if self._angles is not None:
            chunk = self._angles.feed(chunk)
        restored = self._restorer.feed(chunk) if self._restorer is not None else chunk
        self._pending += restored
        cut = _release_point(self._pending, self._HOLD)
        if cut == 0:
            return ""
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._exchange.screen(ready)

    def close(self) -> str:
        tail = self._code.close() if self._code is not None else ""
        if self._angles is not None:
            tail = self._angles.feed(tail) + self._angles.close()
        if self._restorer is not None:
            tail = self._restorer.feed(tail)
        rest = tail + (self._restorer.close() if self._restorer is not None else "")
        text, self._pending = self._pending + rest, ""
        return self._exchange.screen(text)


def _release_point(text: str, hold: int) -> int:
    index = len(text) - 1
    while index >= 0:
        if text[index].isspace():
            word_end = index
            while word_end > 0 and text[word_end - 1].isspace():
                word_end -= 1
            word_start = word_end
            while word_start > 0 and not text[word_start - 1].isspace():
                word_start -= 1
            if any(c.isalpha() for c in text[word_start:word_end]):
                return index + 1
        index -= 1
    return len(text) - hold if len(text) > hold else 0


def dumps(body: Any) -> bytes:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_json_text_default)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate escape (`"\ud800"`) is valid JSON but not UTF-8: written as
        # an escape again, as the client (or the upstream) sent it.
        return json.dumps(body, separators=(",", ":"), default=_json_text_default).encode()


def _json_text_default(value: Any) -> str:
    if isinstance(value, JsonText):
        return value.text()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
