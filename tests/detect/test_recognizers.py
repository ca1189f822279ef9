"""Each built-in recognizer: values it must find, near misses it must not."""

from __future__ import annotations

import base64

import pytest

from veil.detect import Detector, Finding

DETECTOR = Detector()


def kinds_in(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in DETECTOR.find(text)]


# sntrys_ + base64 of {"iat", "url", "region_url", "org"} + _ + a 43-character secret
SENTRY_ORG_TOKEN = (
    "sntrys_eyJpYXQiOjE3MDAwMDAwMDAsInVybCI6Imh0dHBzOi8vc2VudHJ5LmlvIiwicmVnaW9uX3VybCI6Imh0dH"
    "BzOi8vdXMuc2VudHJ5LmlvIiwib3JnIjoiYWNtZSJ9_Qm9uZCBKYW1lcyBCb25kIGZvciB0aGUgdGVzdHMxMjM"
)

POSITIVE = [
    ("write to jane.doe+ai@example.co.uk today", "EMAIL", "jane.doe+ai@example.co.uk"),
    ("call +1 (415) 555-0132 after six", "PHONE", "+1 (415) 555-0132"),
    ("UK mobile +44 7700 900123", "PHONE", "+44 7700 900123"),
    ("office 212-555-0147", "PHONE", "212-555-0147"),
    ("paid with 4111 1111 1111 1111", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("amex 378282246310005 on file", "CREDIT_CARD", "378282246310005"),
    # American Express and Diners Club print their numbers 4-6-5 and 4-6-4
    ("amex 3782 822463 10005 on file", "CREDIT_CARD", "3782 822463 10005"),
    ("amex 3782-822463-10005 on file", "CREDIT_CARD", "3782-822463-10005"),
    ("diners 3056 930902 5904 on file", "CREDIT_CARD", "3056 930902 5904"),
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN", "DE89 3704 0044 0532 0130 00"),
    ("iban: GB82WEST12345698765432", "IBAN", "GB82WEST12345698765432"),
    ("ssn 123-45-6788", "US_SSN", "123-45-6788"),
    ("host 192.168.10.254 is down", "IP_ADDRESS", "192.168.10.254"),
    ("v6 2001:db8:85a3::8a2e:370:7334 ok", "IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334"),
    ("link fe80::1ff:fe23:4567:890a up", "IP_ADDRESS", "fe80::1ff:fe23:4567:890a"),
    ("peer 2a00::1 answered", "IP_ADDRESS", "2a00::1"),
    ("nic 00:1A:2b:3C:4d:5E", "MAC_ADDRESS", "00:1A:2b:3C:4d:5E"),
    # vendor-style word prefixes before random characters are still key material
    (
        'service_token = "live_api_x8k2m9q4w7z1r5t3y6u0"',
        "GENERIC_SECRET",
        "live_api_x8k2m9q4w7z1r5t3y6u0",
    ),
    ("see https://example.com/a?b=c.", "URL", "https://example.com/a?b=c"),
    ("on 2024-02-29 we met", "DATE", "2024-02-29"),
    ("she was born on 12/03/1985", "DATE_OF_BIRTH", "12/03/1985"),
    (
        "btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        "CRYPTO_WALLET",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    ),
    (
        "bech32 bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        "CRYPTO_WALLET",
        "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    ),
    (
        "eth 0x52908400098527886E0F7030069857D2E4169EE7",
        "CRYPTO_WALLET",
        "0x52908400098527886E0F7030069857D2E4169EE7",
    ),
    ("NINO AB 12 34 56 C", "UK_NINO", "AB 12 34 56 C"),
    ("passport number 912803456", "US_PASSPORT", "912803456"),
    ("driver license D1234567", "US_DRIVER_LICENSE", "D1234567"),
]

SECRETS = [
    ("OPENAI_API_KEY", "sk-proj-" + "Q7mZ2vX9pL4tR8wK1nB6cY3hJ5dF0gS2aE7uI9oP4lM8kN3"),
    (
        "ANTHROPIC_API_KEY",
        "sk-ant-api03-" + "x7Rk2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI8oP" * 2 + "Rk9mQ2vT4kZp7AA",
    ),
    ("GOOGLE_API_KEY", "AIzaSyC8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE"),
    ("AWS_ACCESS_KEY_ID", "AKIA2E3F4G5H6J7K7L2M"),
    ("GITHUB_TOKEN", "ghp_R8x2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2uI"),
    (
        "GITHUB_TOKEN",
        "github_pat_11ABQ7Z3Y0x7Rk2LmQ9vT4k_" + "Zp7WnY3cJ6bH1sD5fG0aE2uI8oP" * 2 + "x7Rk",
    ),
    ("GITLAB_TOKEN", "glpat-x7Rk2LmQ9vT4kZp7WnY3"),
    ("SLACK_TOKEN", "xoxb-263594206564-2343607819207-x7Rk2LmQ9vT4kZp7WnY3cJ6b"),
    (
        "SLACK_WEBHOOK",
        "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF1/x7Rk2LmQ9vT4kZp7WnY3cJ6b",
    ),
    ("STRIPE_KEY", "sk_live_51x7Rk2LmQ9vT4kZp7WnY3cJ6b"),
    ("SENDGRID_KEY", "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"),
    ("HUGGINGFACE_TOKEN", "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"),
    ("NPM_TOKEN", "npm_x7Rk2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0aE2u"),
    ("SHOPIFY_TOKEN", "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"),
    ("TELEGRAM_BOT_TOKEN", "123456789:AAx7Rk2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0a"),
    ("API_TOKEN", SENTRY_ORG_TOKEN),
    (
        "JWT",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
]


@pytest.mark.parametrize(("text", "kind", "value"), POSITIVE)
def test_recognizer_finds_its_kind(text: str, kind: str, value: str) -> None:
    assert (kind, value) in kinds_in(text)


@pytest.mark.parametrize(("kind", "token"), SECRETS)
def test_secret_recognizer_finds_the_token_in_code(kind: str, token: str) -> None:
    text = f'client = Client(credential="{token}")\n'
    assert (kind, token) in kinds_in(text)


NEGATIVE = [
    ("card 4111 1111 1111 1112", "CREDIT_CARD"),  # Luhn fails
    ("order 1234567812345670", "CREDIT_CARD"),  # Luhn ok, no issuer range
    ("IBAN GB82WEST12345698765433", "IBAN"),  # mod-97 fails
    ("IBAN GB82WEST123456987654", "IBAN"),  # wrong length for GB
    ("ssn 000-12-3456", "US_SSN"),  # area 000 is never issued
    ("ssn 900-12-3456", "US_SSN"),  # 9xx areas are not SSNs
    ("version 1.2.3.4.5", "IP_ADDRESS"),
    ("addr 999.10.10.10", "IP_ADDRESS"),
    ("use a::b and dead::beef", "IP_ADDRESS"),  # paths in code, not addresses
    ("logged 2026-11-23T10:48:00Z", "IP_ADDRESS"),
    ("btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", "CRYPTO_WALLET"),  # checksum fails
    ("the passport office is closed", "US_PASSPORT"),
    ("number 912803456 without the magic word", "US_PASSPORT"),
    ("jwt eyJub3QiOiJqc29uIn0x.eyJhIjoxfQ.sig", "JWT"),  # header is not a JWT header
    ("token = 'xxxxxxxxxxxxxxxxxxxxxxxx'", "GENERIC_SECRET"),  # placeholder
    ("api_key = os.environ['API_KEY']", "GENERIC_SECRET"),
    ("key_length = XSalsa20.key_length", "GENERIC_SECRET"),
    # camelCase words that merely start with Key/Token: not names of secrets
    ('AVEncVideoMaxKeyframeDistance, "2987123a-ba93-4704-b489-ec1e5f25292c"', "GENERIC_SECRET"),
    ('myTokenizerConfig = "a8f9d7c6b5e4a3b2c1d0e9f8a7b6c5d4"', "GENERIC_SECRET"),
    # words joined into a value (an algorithm id, a type name), not key material
    ('KEY_ALGORITHM = "id-Ed25519-Sha-Key-Agreement"', "GENERIC_SECRET"),
    ('auth_token = "sess:ContentTypeNegotiationHandlerFactory"', "GENERIC_SECRET"),
    # a Sentry org token ends in a 43-character secret; cut short, it is not one
    (f"SENTRY_AUTH={SENTRY_ORG_TOKEN[:-7]}", "API_TOKEN"),
    ("password = ${DB_PASSWORD}", "PASSWORD"),
    ("AKIAIOSFODNN7EXAMPLE is AWS's documentation key", "AWS_ACCESS_KEY_ID"),
    # ids written as the docs' 1234: a placeholder token, under any recognizer
    ('"token3": "xoxp-1234-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d"', "GENERIC_SECRET"),
    # a resource name under a name that mentions secrets (words, then a number)
    ("  keyVaultToStoreSecrets: cmp2-qat-1208358310", "GENERIC_SECRET"),
    # Telegram-shaped, but no bot id has 4 or 17 digits: the Telegram recognizer judges it
    ('telegram_api_token = "1733:Avsvgupxl3qc_h5apwmvgs00wvqc6sexuow"', "GENERIC_SECRET"),
    ('bot_token = "65938580702320754:A0zfx6vc-wmhcbomcrutklx0gf_dtxg1ude"', "GENERIC_SECRET"),
    ("The restaurant is at 17151 2450 Crown St", "PHONE"),  # a zip code and a house number
]


@pytest.mark.parametrize(("text", "kind"), NEGATIVE)
def test_near_miss_is_not_reported(text: str, kind: str) -> None:
    assert kind not in [k for k, _ in kinds_in(text)]


def test_private_key_block_spans_lines() -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n" * 3
    text = f"key:\n-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----\nend"
    found = DETECTOR.find(text)
    assert [f.kind for f in found] == ["PRIVATE_KEY"]
    assert text[found[0].start : found[0].end].endswith("-----END PRIVATE KEY-----")


def test_password_in_a_database_url_is_the_finding() -> None:
    text = "DATABASE_URL=postgresql://app:S3cr3t-Pw!@db.internal:5432/app"
    assert ("PASSWORD", "S3cr3t-Pw!") in kinds_in(text)


@pytest.mark.parametrize(
    ("url", "password"),
    [
        # letters and digits only: the password and the host also read as an e-mail
        ("postgres://admin:S3cretPass@db.internal:5432/app", "S3cretPass"),
        ("amqp://guest:Kq8vLm2pZx7@rabbit.example.com:5672/", "Kq8vLm2pZx7"),
        ("mongodb+srv://app:Kq8vLm2pZx7@cluster0.ab1cd.mongodb.net/db", "Kq8vLm2pZx7"),
        # Redis has no user name: the password comes right after the scheme's colon
        ("REDIS_URL=redis://:Kq8vLm2pZx7@cache.internal:6379/0", "Kq8vLm2pZx7"),
        ("postgres://admin:p%40ss%3Aw0rd2024@db.example.org/app", "p%40ss%3Aw0rd2024"),
    ],
)
def test_a_url_password_is_a_password_not_an_email(url: str, password: str) -> None:
    assert kinds_in(url) == [("PASSWORD", password)]


@pytest.mark.parametrize(
    "line",
    [
        'password = "correct horse battery"',
        "DB_PASSWORD=Tr0ub4dor&3",
        '{"password": "Tr0ub4dor&3"}',
        "password: Tr0ub4dor&3",
    ],
)
def test_password_assignments_in_code_and_config(line: str) -> None:
    assert "PASSWORD" in [k for k, _ in kinds_in(line)]


@pytest.mark.parametrize(
    "url",
    [
        "GET https://api.example.com/v1/items?api_key=Zk29xLmQ8vT4kRp7WnY3cJ6b&page=2",
        "see https://api.example.com/v1/items?token=Zk29xLmQ8vT4kRp7WnY3cJ6b for it",
    ],
)
def test_a_key_in_a_url_query_is_a_secret_not_part_of_a_url(url: str) -> None:
    # The secrets policy (block or redact) must apply to it, not the URL's (pseudonymize,
    # restored in answers); and `veil scan`, which reports secrets, must see it.
    assert ("GENERIC_SECRET", "Zk29xLmQ8vT4kRp7WnY3cJ6b") in kinds_in(url)


def test_authorization_header_value() -> None:
    text = "Authorization: Bearer x7Rk2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0"
    assert ("AUTH_TOKEN", "x7Rk2LmQ9vT4kZp7WnY3cJ6bH1sD5fG0") in kinds_in(text)


def test_generic_high_entropy_secret_next_to_a_key_word() -> None:
    text = 'const paymentsApiKey = "q8F2kL9xZ3vB7nM1pR5tW0yC4hJ6";'
    assert ("GENERIC_SECRET", "q8F2kL9xZ3vB7nM1pR5tW0yC4hJ6") in kinds_in(text)


@pytest.mark.parametrize("name", ["apiKeys", "AccessKey", "clientSecret", "SERVICE_TOKEN"])
def test_generic_secret_names_in_any_case_style(name: str) -> None:
    text = f'{name} = "q8F2kL9xZ3vB7nM1pR5tW0yC4hJ6"'
    assert ("GENERIC_SECRET", "q8F2kL9xZ3vB7nM1pR5tW0yC4hJ6") in kinds_in(text)


def test_context_words_raise_the_score() -> None:
    plain = DETECTOR.find("ref 212-555-0147")
    with_context = DETECTOR.find("phone 212-555-0147")
    assert plain
    assert with_context
    assert with_context[0].score > plain[0].score


def test_context_words_count_in_any_case() -> None:
    assert ("US_PASSPORT", "912803456") in kinds_in("PASSPORT no. 912803456")


def test_a_context_word_must_be_a_whole_word_even_where_the_window_cuts_it() -> None:
    # The window of 48 characters before the number starts at the "p" of "nonpassport".
    text = "nonpassport" + " " * 40 + "912803456"
    assert "US_PASSPORT" not in [kind for kind, _ in kinds_in(text)]
    assert ("US_PASSPORT", "912803456") in kinds_in(text[3:])


def test_phone_region_hint_validates_national_numbers() -> None:
    text = "ruf 030 12345678 an"
    german = Detector(phone_region="DE").find(text)
    assert [(f.kind, f.validated) for f in german] == [("PHONE", True)]


@pytest.mark.parametrize(
    "row", ["12 13 14 15 16 17 18", "26 27 28 29 30 31", " 8  9 10 11 12 13 14"]
)
def test_numbers_counting_up_are_not_a_phone(row: str) -> None:
    # A calendar's week row; "26 27 28 29 30" is even a valid US number to phonenumbers.
    assert DETECTOR.find(row) == []


def test_a_french_number_in_pairs_is_still_a_phone() -> None:
    assert kinds_in("appelez le 01 23 45 67 89") == [("PHONE", "01 23 45 67 89")]


def test_finding_repr_never_contains_the_value() -> None:
    finding = DETECTOR.find("mail bob@example.com")[0]
    assert "bob" not in repr(finding)
    assert finding.to_dict() == {
        "start": 5,
        "end": 20,
        "kind": "EMAIL",
        "score": finding.to_dict()["score"],
        "level": "CRITICAL",
        "source": "email",
    }


def test_kinds_filter_limits_the_output() -> None:
    detector = Detector(kinds=["EMAIL"])
    found = detector.find("bob@example.com 212-555-0147")
    assert {f.kind for f in found} == {"EMAIL"}


def test_empty_text_has_no_findings() -> None:
    assert DETECTOR.find("") == []


def test_offsets_are_python_str_indices_after_non_ascii_text() -> None:
    text = "Grüße von Zoë 🙂 — bob@example.com"
    (finding,) = DETECTOR.find(text)
    assert isinstance(finding, Finding)
    assert text[finding.start : finding.end] == "bob@example.com"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Please ask Mrs. Barbara Yudina Apt. 675", "Barbara Yudina"),
        ("join accounts with ms. Quinzia", "Quinzia"),
        ("Name:    Martim A Pereira\nAddress: 1 Main St", "Martim A Pereira"),
        ("Directed By:    Gladys L. Leblanc", "Gladys L. Leblanc"),
        ("correct it to Dr. Berta Szöllössy?", "Berta Szöllössy"),
        ("Mr. Pavlović flew to Oslo", "Pavlović"),
        ("Name: Élodie Guðmundsdóttir", "Élodie Guðmundsdóttir"),
        ("Hi, my name is Rubija.", "Rubija"),
        ("and his last name is Boyle", "Boyle"),
        ("Friends call me Aantje Møller", "Aantje Møller"),
        ("could you please correct it to Mr. Richard McCray?", "Richard McCray"),
        ("Her maiden name is LeBatelier.", "LeBatelier"),
    ],
)
def test_names_after_titles_and_form_labels(text: str, name: str) -> None:
    assert ("PERSON", name) in kinds_in(text)


def test_a_name_is_never_cut_before_a_letter_outside_ascii() -> None:
    # Greek and Cyrillic letters are not name letters here: no match rather than half a name.
    assert kinds_in("Mr. Papadopoulosα and Dr. Ivanovж") == []


def test_a_country_name_inside_a_longer_word_is_not_a_country() -> None:
    assert kinds_in("Josef Mališ of Importa") == []


def test_a_label_without_a_capitalized_name_is_not_a_person() -> None:
    assert kinds_in("the name: value pair and mr. nobody") == []
    assert kinds_in("my name is not important; call me later") == []


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Meet me at Unit 7194 Box 5854\nDPO AE 73472", "Unit 7194 Box 5854\nDPO AE 73472"),
        ("office: PSC 0413, Box 8144\nAPO AA 42323 today", "PSC 0413, Box 8144\nAPO AA 42323"),
        ("send it to uscgc aslakhanov\nfpo ae 44941?", "uscgc aslakhanov\nfpo ae 44941"),
        ("located at USNS Møller FPO AP 85844-1234", "USNS Møller FPO AP 85844-1234"),
    ],
)
def test_a_military_address_is_one_location_over_its_lines(text: str, address: str) -> None:
    assert kinds_in(text) == [("LOCATION", address)]


def test_a_unit_and_box_without_the_military_post_office_are_two_pieces() -> None:
    assert kinds_in("Unit 7194 Box 5854, DPO office") == [
        ("LOCATION", "Unit 7194"),
        ("LOCATION", "Box 5854"),
    ]


@pytest.mark.parametrize(
    ("text", "street"),
    [
        ("lives at 846 31 Rue Al Imam Al Bakri, Cite Merzgui", "31 Rue Al Imam Al Bakri"),
        ("ul. Słowicza 10 Apt. 360", "ul. Słowicza 10"),
        ("Rua Vinte e Cinco de Setembro 1257 St.", "Rua Vinte e Cinco de Setembro 1257"),
        ("Verda lives on 33 avenue de Provence street.", "33 avenue de Provence"),
        ("see you at 8 rue du Temple tomorrow", "8 rue du Temple"),
        ("lives at 67952 Höfðagata 39, Keflavík", "Höfðagata 39"),
        ("Cindy Holinka 5720 Skoanveien 226", "Skoanveien 226"),
        ("The bus station is on C. Beerninckstraat 88", "Beerninckstraat 88"),
        ("his address: 5049 Harjukuja 54, SEINÄJOKI", "Harjukuja 54"),
    ],
)
def test_european_street_forms(text: str, street: str) -> None:
    assert ("LOCATION", street) in kinds_in(text)


def test_a_street_suffix_inside_a_word_without_a_number_is_not_a_street() -> None:
    assert kinds_in("the Kiviveien project and Rue the day") == []


def test_a_building_number_before_a_street_is_a_part_of_its_own() -> None:
    assert kinds_in("I live at 974 Via Roma 131 and 28919 136 Filadelfeos Street.") == [
        ("LOCATION", "974"),
        ("LOCATION", "Via Roma 131"),
        ("LOCATION", "28919"),
        ("LOCATION", "136 Filadelfeos Street"),
    ]


def test_a_via_street_stops_at_its_house_number() -> None:
    assert kinds_in("at Via Roma 131 and 2 more") == [("LOCATION", "Via Roma 131")]


@pytest.mark.parametrize(
    ("text", "place"),
    [
        (
            "send it to the corner of Pachergasse 64 and Radolič Harbor",
            "the corner of Pachergasse 64 and Radolič Harbor",
        ),
        (
            "meet at the corner of 3744 Retreat Avenue and Władysława Route. Then go",
            "the corner of 3744 Retreat Avenue and Władysława Route",
        ),
    ],
)
def test_a_street_corner_is_one_location(text: str, place: str) -> None:
    assert kinds_in(text) == [("LOCATION", place)]


def test_a_corner_of_a_room_is_no_place() -> None:
    assert kinds_in("it is in the corner of the room and the cat sleeps there all day") == []


def test_a_building_number_before_a_suffixed_street_and_a_unit_after_a_rue() -> None:
    assert kinds_in("to 50668 Kiannonkatu 98 or 143 31 rue de la Hulotais Apt. 087") == [
        ("LOCATION", "50668"),
        ("LOCATION", "Kiannonkatu 98"),
        ("LOCATION", "143"),
        ("LOCATION", "31 rue de la Hulotais"),
        ("LOCATION", "Apt. 087"),
    ]


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Mr. Leiva flew to LEPPEN on Tuesday morning.", "LEPPEN"),
        ("She grew up in Chiclana de la Frontera.", "Chiclana de la Frontera"),
        ("We moved here from Cite Guedouala", "Cite Guedouala"),
        ("the economy of the White Stripes' home city Station Nord: Ranku", "Station Nord"),
    ],
)
def test_a_place_after_a_phrase_only_places_take(text: str, place: str) -> None:
    assert ("LOCATION", place) in kinds_in(text)


def test_a_month_after_born_in_is_no_place() -> None:
    assert kinds_in("She was born in March and moved to bigger things.") == []


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("Tilly lives at 10252 Μεγάλη Άμμος 184, ΠΑΦΟΣ", ["10252", "Μεγάλη Άμμος 184"]),
        ("his address: 172 Maneeži 75, Saareküla", ["172", "Maneeži 75"]),
        ("she resided at 255 hersnapvej 18.", ["255", "hersnapvej 18"]),
    ],
)
def test_a_street_without_a_street_word_after_lives_at_or_address(
    text: str, parts: list[str]
) -> None:
    assert [value for kind, value in kinds_in(text) if kind == "LOCATION"][:2] == parts


def test_a_name_and_a_number_without_an_address_phrase_are_no_street() -> None:
    assert kinds_in("He upgraded 12 Windows 10 machines, then lives at 4 pm on Fridays.") == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("the verses from Faina D. Yefremova's Cautionary Tales", "Faina D. Yefremova"),
        ("Julieta S Almeida\n\nStaff development specialist", "Julieta S Almeida"),
        ("we need to add Ryan P Costa as guardian", "Ryan P Costa"),
    ],
)
def test_a_name_with_a_middle_initial_is_a_person(text: str, name: str) -> None:
    assert kinds_in(text) == [("PERSON", name)]


def test_nouns_that_take_a_letter_are_no_names() -> None:
    assert kinds_in("Plan B Options, a Type A Personality and Vitamin C Serum") == []


def test_a_telegram_token_with_a_real_bot_id_is_still_found_under_a_token_name() -> None:
    text = 'telegram_api_token = "5432109876:AAHd8x-Kq3LmZ0pQ7rT2vW9yB4nC6eF1gJk"'
    assert ("TELEGRAM_BOT_TOKEN", "5432109876:AAHd8x-Kq3LmZ0pQ7rT2vW9yB4nC6eF1gJk") in kinds_in(
        text
    )


def test_a_published_sample_key_is_not_reported_but_a_fresh_one_is() -> None:
    # A Firebase SDK sample key (public, in the SDK's repository) and one that is not.
    assert kinds_in("apiKey: AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs") == []
    fresh = "AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIt"
    assert ("GOOGLE_API_KEY", fresh) in kinds_in(f"apiKey: {fresh}")


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # No separator before PASSWORD: PostgreSQL's and redis-cli's own variables
        ("PGPASSWORD=Tr0ub4dor3 psql -h db", "Tr0ub4dor3"),
        ("export REDISCLI_AUTH=Kq8vLm2pZx7", "Kq8vLm2pZx7"),
        # mysql takes the password glued to -p
        ("mysql -u root -pS3cretPw! -h db.internal", "S3cretPw!"),
        ("mysqldump -uroot -pHunter2xy shop > shop.sql", "Hunter2xy"),
    ],
)
def test_a_password_in_a_database_client_command_is_found(text: str, secret: str) -> None:
    assert ("PASSWORD", secret) in kinds_in(text)


@pytest.mark.parametrize(
    "text",
    [
        "mysql -u root -p -h db.internal",  # -p alone: mysql prompts for it
        "mysql -u root -p$MYSQL_PASSWORD shop",  # a variable, not the value
        "mysql -u root -P3306 -h db",  # -P is the port
    ],
)
def test_a_mysql_command_without_a_password_value_has_none(text: str) -> None:
    assert "PASSWORD" not in [kind for kind, _ in kinds_in(text)]


def test_a_docker_config_login_is_a_credential() -> None:
    # ~/.docker/config.json: "auth" is base64 of user:password.
    login = base64.b64encode(b"deploy:S3cr3tRegistryPw").decode()
    text = f'{{"auths": {{"registry.example.com": {{"auth": "{login}"}}}}}}'
    assert ("AUTH_TOKEN", login) in kinds_in(text)
    not_a_login = base64.b64encode(b"just some words").decode()
    assert "AUTH_TOKEN" not in [k for k, _ in kinds_in(f'{{"auth": "{not_a_login}"}}')]


@pytest.mark.parametrize("number", ["123-45-6789", "078-05-1120", "219-09-9999"])
def test_a_never_issued_sample_ssn_next_to_ssn_words_is_an_ssn(number: str) -> None:
    # They were reported as phone numbers, so a model read "my SSN is <PHONE_1>".
    assert kinds_in(f"My SSN is {number}.") == [("US_SSN", number)]
    assert "US_SSN" not in [kind for kind, _ in kinds_in(f"ref {number} here")]


@pytest.mark.parametrize("number", ["123-45-6789", "078-05-1120", "123 45 6789"])
def test_a_number_written_as_an_ssn_is_a_phone_number_only_next_to_phone_words(
    number: str,
) -> None:
    # No numbering plan groups a phone number 3-2-4; a sample SSN was reported as PHONE.
    assert "PHONE" not in [kind for kind, _ in kinds_in(f"ref {number} here")]
    assert ("PHONE", number) in kinds_in(f"Phone: {number}")


def test_a_real_phone_number_of_the_region_is_found_without_phone_words() -> None:
    assert kinds_in("ref 415-555-0133 here") == [("PHONE", "415-555-0133")]
