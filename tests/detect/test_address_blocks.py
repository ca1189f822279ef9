"""Multi-line postal addresses: every line covered when the option is on."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from veil.detect import Detector

BLOCKS = Detector(address_blocks=True)
PLAIN = Detector()

LETTER = (
    "Leonard Arntsen\n\n353 Buerlia 227 Street\n Apt. 391\n SANDEFJORD\n Norway 66455\n\n"
    "Thanks for the order."
)


def spans(detector: Detector, text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in detector.find(text)]


def test_the_street_unit_city_and_country_lines_are_covered_piece_by_piece() -> None:
    assert spans(BLOCKS, LETTER) == [
        ("LOCATION", "353 Buerlia 227 Street"),
        ("LOCATION", "Apt. 391"),
        ("LOCATION", "SANDEFJORD"),
        ("LOCATION", "Norway"),
        ("LOCATION", "66455"),
    ]


def test_every_character_of_the_block_but_spacing_is_covered() -> None:
    start = LETTER.index("353")
    end = LETTER.index("66455") + len("66455")
    covered = {i for f in BLOCKS.find(LETTER) for i in range(f.start, f.end)}
    assert all(i in covered for i in range(start, end) if not LETTER[i].isspace())


def test_without_the_option_only_the_pieces_are_found() -> None:
    found = spans(PLAIN, LETTER)
    assert all("SANDEFJORD" not in value for _, value in found)


def test_a_building_number_line_above_a_unit_line_joins_the_block() -> None:
    text = "> 077 Mellemstræde 74\n> Apt. 316\n> Vordingborg\n> Denmark 4760"
    assert spans(BLOCKS, text) == [
        ("LOCATION", "077"),
        ("LOCATION", "Mellemstræde 74"),
        ("LOCATION", "Apt. 316"),
        ("LOCATION", "Vordingborg"),
        ("LOCATION", "Denmark"),
        ("LOCATION", "4760"),
    ]


def test_prose_and_other_values_end_a_block() -> None:
    text = "Suite 282\nCall me at 212-555-0147 tomorrow\nBudapest"
    found = spans(BLOCKS, text)
    assert ("PHONE", "212-555-0147") in found
    assert all("Budapest" not in value for kind, value in found if kind == "LOCATION")


def test_an_address_inside_a_sentence_stays_as_found() -> None:
    text = "Kevin lives at 136 Filadelfeos Street, and works nearby.\nBudapest"
    assert spans(BLOCKS, text) == spans(PLAIN, text)


def test_the_option_survives_pickling_for_worker_processes() -> None:
    copy = pickle.loads(pickle.dumps(BLOCKS))  # noqa: S301 - our own object
    assert spans(copy, LETTER) == spans(BLOCKS, LETTER)


LINES = st.sampled_from(
    [
        "353 Buerlia 227 Street",
        " Apt. 391",
        " SANDEFJORD",
        " Norway 66455",
        "",
        "Call 212-555-0147",
        "mail bob@example.com",
        "Thanks, Leonard",
        ", VIC",
        "75001 Paris",
    ]
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(LINES, max_size=8))
def test_findings_stay_sorted_and_disjoint(lines: list[str]) -> None:
    text = "\n".join(lines)
    found = BLOCKS.find(text)
    for before, after in itertools.pairwise(found):
        assert before.end <= after.start


def test_the_cli_turns_blocks_on_with_veil_address_blocks(tmp_path: Path) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_text(LETTER)
    env = {**os.environ, "VEIL_HOME": str(tmp_path / "home"), "VEIL_ADDRESS_BLOCKS": "true"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("veil")), "detect", str(letter), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    sources = [finding["source"] for finding in json.loads(done.stdout)["findings"]]
    assert "address-block" in sources


def test_a_finding_over_several_short_lines_seeds_a_block_like_a_one_line_piece() -> None:
    # The line above a military address in a signature ("Hopstop") is covered as the city
    # line above a street line would be.
    text = "Thomas Svendsen\n\nHopstop\nPSC 6477, Box 2981\nAPO AE 83700"
    assert spans(BLOCKS, text)[-2:] == [
        ("LOCATION", "Hopstop"),
        ("LOCATION", "PSC 6477, Box 2981\nAPO AE 83700"),
    ]


def test_an_address_on_one_line_with_place_and_country_is_one_location() -> None:
    text = "The letter arrived at 760 Passauer Strasse 33, Cite Guedouala, Tunisia last night."
    assert spans(BLOCKS, text) == [("LOCATION", "760 Passauer Strasse 33, Cite Guedouala, Tunisia")]
    text = "ship to 370 3911 Fourth Avenue Suite 697 Apt. 397, Mora de Rubielos, Spain 16200"
    assert spans(BLOCKS, text) == [
        ("LOCATION", "370 3911 Fourth Avenue Suite 697 Apt. 397, Mora de Rubielos, Spain 16200")
    ]


def test_a_street_and_a_country_in_one_sentence_stay_apart() -> None:
    text = "Kevin lives at 136 Filadelfeos Street, and works nearby in Belgium."
    assert spans(BLOCKS, text) == [
        ("LOCATION", "136 Filadelfeos Street"),
        ("LOCATION", "Belgium"),
    ]


def test_a_name_line_with_a_middle_initial_above_the_street_is_a_person() -> None:
    text = "> Ella H. Snider\n> 228 Ringvej 144\n> Apt. 902\n> Qaqortoq\n> Greenland 96817"
    found = spans(BLOCKS, text)
    assert found[0] == ("PERSON", "Ella H. Snider")
    assert all(kind == "LOCATION" for kind, _ in found[1:])


def test_the_postcode_after_a_country_that_ends_a_line_is_a_part_of_its_own() -> None:
    text = "??? Soto del Barco\n??? Spain 61709\nThanks"
    assert ("LOCATION", "61709") in spans(BLOCKS, text)
    assert ("LOCATION", "61709") not in spans(BLOCKS, "Spain 61709 people voted")


def test_the_place_after_a_street_that_ends_the_sentence_is_a_location() -> None:
    text = "Jay Pearce lives at 67952 Höfðagata 39, Keflavík."
    assert ("LOCATION", "Keflavík") in spans(BLOCKS, text)


def test_a_one_line_address_takes_the_street_line_the_patterns_did_not_know() -> None:
    text = "The letter arrived at 2035 Gewerbepark 45 Apt. 815, Brú, Iceland 82407 today"
    assert spans(BLOCKS, text) == [("LOCATION", "2035 Gewerbepark 45 Apt. 815, Brú, Iceland 82407")]


def test_a_one_line_address_may_leave_out_the_commas() -> None:
    text = "I once lived in 17031 2202 Rissik St Apt. 050 Coalville South Africa."
    assert spans(BLOCKS, text) == [
        ("LOCATION", "17031 2202 Rissik St Apt. 050 Coalville South Africa")
    ]


def test_an_address_a_sentence_leads_into_over_several_lines_is_one_location() -> None:
    text = "Please send it to 1987 74 Diakou Street\n Suite 680\n Kissousa\n Cyprus 36903? Thanks."
    assert spans(BLOCKS, text) == [
        ("LOCATION", "1987 74 Diakou Street\n Suite 680\n Kissousa\n Cyprus 36903")
    ]


def test_the_last_line_of_a_led_address_may_go_on_with_the_sentence() -> None:
    text = "I'll meet you at 25615 Tawastintie 72 Apt. 004\nKNIVSTA, nan 18237 after the concert."
    assert spans(BLOCKS, text) == [
        ("LOCATION", "25615 Tawastintie 72 Apt. 004\nKNIVSTA, nan 18237")
    ]


def test_an_address_under_an_address_label_is_one_location() -> None:
    text = "Address:\nBrucker Bundesstrasse 31 Zezig Streets\n Suite 245\n FÜRLING\n Austria 25173."
    assert spans(BLOCKS, text) == [
        ("LOCATION", "Brucker Bundesstrasse 31 Zezig Streets\n Suite 245\n FÜRLING\n Austria 25173")
    ]


def test_a_led_address_does_not_take_a_prose_line_below() -> None:
    text = "We met at 5 pm near Suite 200\nThe weather was nice."
    assert spans(BLOCKS, text) == [("LOCATION", "Suite 200")]


def test_a_block_under_a_name_keeps_its_parts_and_splits_two_part_lines() -> None:
    # The building number before a street with its own house number, and a place with
    # its postcode, are parts of their own, as the recognizers report them elsewhere.
    text = "Marisa Bisliev\n\n28030 Edeby 55\n Apt. 297\n Qasigiannguit\n Greenlander 07609"
    assert spans(BLOCKS, text)[-6:] == [
        ("LOCATION", "28030"),
        ("LOCATION", "Edeby 55"),
        ("LOCATION", "Apt. 297"),
        ("LOCATION", "Qasigiannguit"),
        ("LOCATION", "Greenlander"),
        ("LOCATION", "07609"),
    ]


def test_a_one_line_address_under_an_address_label_is_one_location() -> None:
    text = "Address:\n7494 Hlíðarvegur 97 Suite 568 Apt. 108, Danmarkshavn, Greenlander 35940."
    assert spans(BLOCKS, text) == [
        ("LOCATION", "7494 Hlíðarvegur 97 Suite 568 Apt. 108, Danmarkshavn, Greenlander 35940")
    ]


def test_a_count_ending_a_sentence_leads_no_address() -> None:
    text = "The total we counted this year is 12\nSuite 5\nLondon"
    assert ("LOCATION", "Suite 5") in spans(BLOCKS, text)
    assert all(not value.startswith("12") for _, value in spans(BLOCKS, text))


def test_bullets_before_the_lines_of_a_block_are_not_part_of_it() -> None:
    text = "- 83854 Strickstrasse 61\n- Suite 292\n- Zuoz\n- Switzerland 53730"
    assert spans(BLOCKS, text) == [
        ("LOCATION", "83854"),
        ("LOCATION", "Strickstrasse 61"),
        ("LOCATION", "Suite 292"),
        ("LOCATION", "Zuoz"),
        ("LOCATION", "Switzerland"),
        ("LOCATION", "53730"),
    ]


def test_many_addresses_in_one_text_are_found_as_each_alone() -> None:
    # The block rules look findings up by bisection; each copy must come out as alone.
    unit = (
        "Please send it to 1987 74 Diakou Street\n Suite 680\n Kissousa\n Cyprus 36903? "
        "Thanks.\nMarisa Bisliev\n\n28030 Edeby 55\n Apt. 297\n Qasigiannguit\n"
        " Greenland 07609\n\nShe lives at 172 Maneeži 75, Saareküla.\n\n"
    )
    alone = spans(BLOCKS, unit)
    assert spans(BLOCKS, unit * 40) == alone * 40


def test_a_long_line_before_an_address_is_read_only_near_its_end() -> None:
    lead = "word " * 3000 + "so please send it to 1987 74 Diakou Street"
    text = lead + "\n Suite 680\n Kissousa\n Cyprus 36903? Thanks."
    assert spans(BLOCKS, text)[-1] == (
        "LOCATION",
        "1987 74 Diakou Street\n Suite 680\n Kissousa\n Cyprus 36903",
    )


def test_streets_and_countries_on_one_long_line_are_found_as_each_alone() -> None:
    unit = "We shipped to 12 Main Street, Spain and Norway today. "
    alone = spans(BLOCKS, unit + "\nend")
    assert spans(BLOCKS, unit * 300 + "\nend") == alone * 300
