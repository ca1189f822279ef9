"""The speakers of a dialogue (no model needed: the rule works on the model's findings)."""

from __future__ import annotations

from veil.detect import Finding, Level
from veil.detect._speakers import with_speakers


def entity(text: str, value: str, kind: str = "PERSON") -> Finding:
    start = text.index(value)
    return Finding(start, start + len(value), kind, 0.85, Level.CRITICAL, "ner")


def found(text: str, entities: list[Finding]) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in with_speakers(text, entities, 0.85)]


DIALOGUE = "Ubul: What a wife.\nNicole: Remember me, Mary?\nJohn: You saved my life!"


def test_a_speaker_the_model_missed_is_a_person_when_another_speaker_is_one() -> None:
    entities = [entity(DIALOGUE, "Nicole"), entity(DIALOGUE, "Mary"), entity(DIALOGUE, "John")]
    assert found(DIALOGUE, entities) == [
        ("PERSON", "Ubul"),
        ("PERSON", "Nicole"),
        ("PERSON", "Mary"),
        ("PERSON", "John"),
    ]


def test_a_speaker_the_model_took_for_a_place_is_a_person() -> None:
    entities = [entity(DIALOGUE, "Ubul", "LOCATION"), entity(DIALOGUE, "Nicole")]
    assert found(DIALOGUE, entities)[0] == ("PERSON", "Ubul")


def test_a_label_joined_to_what_follows_is_cut_at_its_colon() -> None:
    text = 'Vsevolod: "Who are you?"\nHeather:"I\'m Daniel\'s daughter".'
    entities = [entity(text, "Vsevolod"), entity(text, "Heather:\"I'm Daniel")]
    assert found(text, entities) == [
        ("PERSON", "Vsevolod"),
        ("PERSON", "Heather"),
        ("PERSON", "Daniel"),
    ]


def test_form_fields_are_no_speakers() -> None:
    text = "Phone: 555 1234\nNote: call after six\nBob: fine"
    assert found(text, [entity(text, "Bob")]) == [("PERSON", "Bob")]


def test_without_a_person_among_the_labels_nothing_changes() -> None:
    text = "Warning: disk full\nDetails: see the log\nAlice is on call."
    assert found(text, [entity(text, "Alice")]) == [("PERSON", "Alice")]
