"""The other names of a list that holds a person's name (no model needed: the list rule
works on the findings the model gave)."""

from __future__ import annotations

import pytest

from veil.detect import Finding, Level
from veil.detect._ner import _with_listed_names


def person(text: str, name: str) -> Finding:
    start = text.index(name)
    return Finding(start, start + len(name), "PERSON", 0.85, Level.CRITICAL, "ner")


def names(text: str, found: list[Finding]) -> list[str]:
    return [text[f.start : f.end] for f in _with_listed_names(text, found)]


@pytest.mark.parametrize(
    ("text", "anchor", "expected"),
    [
        (
            "They had 6: Efimiya, Mary, Ariana, Isabel, Teresa and Jodi.",
            "Mary",
            ["Efimiya", "Mary", "Ariana", "Isabel", "Teresa", "Jodi"],
        ),
        (
            "our founders: Morrison, Rogers and Torres. The idea",
            "Rogers",
            ["Morrison", "Rogers", "Torres"],
        ),
        ("they had 3: leonti, terrence and caleb.", "terrence", ["leonti", "terrence", "caleb"]),
        ("Nekolná and Pearson were precision engineers", "Nekolná", ["Nekolná", "Pearson"]),
    ],
)
def test_the_other_names_of_a_list_with_a_person_are_people(
    text: str, anchor: str, expected: list[str]
) -> None:
    assert names(text, [person(text, anchor)]) == expected


def test_pronouns_capitals_and_findings_already_made_are_not_listed_names() -> None:
    text = "Hi Freddy, I'm writing. Dusino San Michele, AT 31295"
    assert names(text, [person(text, "Freddy"), person(text, "Dusino San Michele")]) == [
        "Freddy",
        "Dusino San Michele",
    ]
    text = "Efimiya, Paris and Jodi"
    paris = Finding(9, 14, "LOCATION", 0.85, Level.HIGH, "ner")
    assert [
        (text[f.start : f.end], f.kind)
        for f in _with_listed_names(text, [person(text, "Efimiya"), paris])
    ] == [("Efimiya", "PERSON"), ("Paris", "LOCATION"), ("Jodi", "PERSON")]


def test_a_one_word_firm_in_a_list_of_names_is_a_name_but_not_an_organization_word() -> None:
    text = "our founders: Kónya, Becker and Vasquez. Then Ana and Sons"
    firm = [
        Finding(
            text.index(word),
            text.index(word) + len(word),
            "ORGANIZATION",
            0.85,
            Level.MEDIUM,
            "ner",
        )
        for word in ("Becker", "Sons")
    ]
    found = _with_listed_names(text, [person(text, "Kónya"), person(text, "Ana"), *firm])
    assert [(text[f.start : f.end], f.kind) for f in found] == [
        ("Kónya", "PERSON"),
        ("Becker", "PERSON"),
        ("Vasquez", "PERSON"),
        ("Ana", "PERSON"),
        ("Sons", "ORGANIZATION"),
    ]


def test_a_long_text_of_lists_gives_each_list_its_names() -> None:
    # Overlaps are looked up by bisection; each copy must come out as alone.
    unit = "They had 3: Efimiya, Mary and Jodi.\n"

    def listed(text: str) -> list[str]:
        anchors = [i for i in range(len(text)) if text.startswith("Mary", i)]
        found = [Finding(i, i + 4, "PERSON", 0.85, Level.CRITICAL, "ner") for i in anchors]
        return [text[f.start : f.end] for f in _with_listed_names(text, found)]

    assert listed(unit * 200) == listed(unit) * 200
