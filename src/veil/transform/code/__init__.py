"""Code anonymization for coding assistants: reversible and semantics-preserving.

Python is exact (``tokenize`` + ``ast``, project-wide): :class:`PythonAnonymizer`
renames what the project defines and nothing the outside can see, replaces comments and
docstrings with markers, passes string literals through the engine, and records
everything in a :class:`CodeMap` whose ``restore`` maps a model's answer back.
"""

from __future__ import annotations

from veil.transform.code._codemap import CodeMap, CodeStreamRestorer
from veil.transform.code._lexed import LANGUAGES, LexedAnonymizer, language_of
from veil.transform.code._literals import LiteralTransformer
from veil.transform.code._python import Anonymized, PythonAnonymizer, SourceFile

__all__ = [
    "LANGUAGES",
    "Anonymized",
    "CodeMap",
    "CodeStreamRestorer",
    "LexedAnonymizer",
    "LiteralTransformer",
    "PythonAnonymizer",
    "SourceFile",
    "language_of",
]
