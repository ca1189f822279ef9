"""Detection: recognizers (patterns, validators, context) compiled into one detector.

Public API: :class:`Detector`, :class:`Finding`, :class:`Level`, :class:`RecognizerSpec`,
:func:`load_recognizer_file`, :func:`configured_detector`, :data:`CATALOG`.
"""

from __future__ import annotations

from veil.detect._catalog import CATALOG, KindInfo, kind_info
from veil.detect._configured import configured_detector, configured_kinds, detection_key
from veil.detect._detector import Detector, resolve_overlaps
from veil.detect._finding import Finding, Level
from veil.detect._ner import NerRecognizer, model_available, spacy_available
from veil.detect._registry import RecognizerSpec, builtin_specs, load_recognizer_file

__all__ = [
    "CATALOG",
    "Detector",
    "Finding",
    "KindInfo",
    "Level",
    "NerRecognizer",
    "RecognizerSpec",
    "builtin_specs",
    "configured_detector",
    "configured_kinds",
    "detection_key",
    "kind_info",
    "load_recognizer_file",
    "model_available",
    "resolve_overlaps",
    "spacy_available",
]
