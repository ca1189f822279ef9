"""The detector that Veil's settings describe, for every surface that scans user content
(the gateway, the ledger's details check, the logging filter, the CLI)."""

from __future__ import annotations

from veil.config import Settings
from veil.detect._detector import Detector
from veil.detect._registry import builtin_specs, load_recognizer_file
from veil.errors import InputError


def configured_detector(
    settings: Settings, *, ner: bool = False, named_by: str = "VEIL_RECOGNIZERS"
) -> Detector:
    """The built-in recognizers plus ``VEIL_RECOGNIZERS`` (recognizers and public
    values), with ``VEIL_PHONE_REGION`` and ``VEIL_ADDRESS_BLOCKS``; with ``ner``, also
    the ``VEIL_NER_MODEL`` (when one is configured). ``named_by``: where the recognizers
    file was named, for the hint of its errors."""
    try:
        return Detector(
            extra=settings.recognizers,
            phone_region=settings.phone_region,
            ner=settings.ner_model if ner else None,
            address_blocks=settings.address_blocks,
        )
    except InputError as exc:
        if settings.recognizers is None or exc.hint is not None:
            raise
        raise InputError(exc.message, hint=f"{named_by} names this file: fix it.") from None


def detection_key(settings: Settings) -> tuple[object, ...]:
    """What a detector without NER depends on in ``settings`` (for caches of them)."""
    return (settings.recognizers, settings.phone_region, settings.address_blocks)


def configured_kinds(settings: Settings) -> frozenset[str]:
    """The kinds the built-in recognizers and ``VEIL_RECOGNIZERS`` report (what a policy's
    kind rules may name), read from the recognizer files without building a detector (no
    prefilter, no NER model)."""
    specs = builtin_specs()
    if settings.recognizers is not None:
        specs += load_recognizer_file(settings.recognizers)
    return frozenset(spec.kind for spec in specs)
