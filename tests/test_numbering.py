"""Tests of `appliance.numbering`: dial patterns parse and print back, match and strip; the
pattern table agrees with a first-match scan; numbers normalise to E.164 and fall in the
right call class in each office country (ITU-T E.164 and the national plans)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from appliance import i18n, numbering
from appliance.numbering import (
    DEFAULT_PERMISSIONS,
    PERMISSION_CLASSES,
    PLANS,
    CountryError,
    DialPattern,
    NumberError,
    PatternError,
    PatternTable,
    classify,
    country_code,
    emergency_numbers,
    is_emergency,
    normalize,
)
from appliance.store.settings import COUNTRIES

PROPERTY_SETTINGS = settings(max_examples=500, deadline=None, database=None)


def exact(reason: str) -> str:
    return rf"\A{re.escape(reason)}\Z"


# --- the module stays neutral -----------------------------------------------------------------


def _imports(path: str | None) -> list[str]:
    assert path is not None
    tree = ast.parse(Path(path).read_text())
    return [
        name
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    ]


def test_numbering_imports_nothing_from_the_appliance() -> None:
    """Nothing but its messages' `appliance.i18n`, itself neutral."""
    imported = _imports(numbering.__file__)
    assert imported
    assert [n for n in imported if n.split(".")[0] == "appliance"] == ["appliance.i18n"]
    assert [n for n in _imports(i18n.__file__) if n.split(".")[0] == "appliance"] == []


def test_there_is_a_plan_for_every_office_country() -> None:
    assert set(PLANS) == set(COUNTRIES)
    for country, plan in PLANS.items():
        assert plan.country == country
        for prefix, cls in plan.ranges:
            DialPattern.parse(prefix)  # every range is a valid pattern
            assert cls in ("international", "premium", "mobile")


# --- dial patterns: parse and print -----------------------------------------------------------

CANONICAL = [
    "9|8XXXXXXXXXX",
    "NXXNXXXXXX",
    "1NXXNXXXXXX",
    "011.",
    "9|00.",
    "9|!",
    "Z!",
    "[13-5]XX",
    "[135]",
    "[1-5]",
    "[12]X",
    "[1-3*#+]",
    "[09]",
    "*72X.",
    "#",
    "+7X.",
    "9*|XX",
    "X" * 64,
    ".",
    "!",
]


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_text_round_trips(text: str) -> None:
    pattern = DialPattern.parse(text)
    assert str(pattern) == text
    assert DialPattern.parse(str(pattern)) == pattern


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("_9|8XXXXXXXXXX", "9|8XXXXXXXXXX"),  # the leading _ is ignored
        ("_nxxnxxxxxx", "NXXNXXXXXX"),  # letters in any case
        ("x|z.", "X|Z."),
        ("[0-9]", "X"),  # a set equal to a letter prints as the letter
        ("[1-9]", "Z"),
        ("[2-9]", "N"),
        ("[23456789]", "N"),
        ("[5]", "5"),
        ("[3-3]", "3"),
        ("[543]", "[3-5]"),  # sorted, runs of three or more as a range
        ("[1-23]", "[1-3]"),
        ("[531]", "[135]"),
        ("[1-35]", "[1-35]"),
        ("[13-5]", "[13-5]"),
        ("[5-51-3]", "[1-35]"),
        ("[#*+0]", "[0*#+]"),
        ("[21]", "[12]"),
        ("_" + "X" * 63, "X" * 63),
    ],
)
def test_parse_gives_the_canonical_text(text: str, canonical: str) -> None:
    assert str(DialPattern.parse(text)) == canonical


def test_patterns_compare_by_what_they_match() -> None:
    assert DialPattern.parse("[0-9]X") == DialPattern.parse("XX")
    assert DialPattern.parse("9|X.") != DialPattern.parse("9X.")
    assert DialPattern.parse("X.") != DialPattern.parse("X!")
    assert repr(DialPattern.parse("_9|[2-9]x.")) == "DialPattern.parse('9|NX.')"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9|8X[", "pattern '9|8X[': unclosed '[' at 4"),
        ("", "pattern '': empty"),
        ("_", "pattern '_': empty"),
        ("9|1|2", "pattern '9|1|2': second '|' at 3"),
        ("|9X", "pattern '|9X': nothing before '|' at 0"),
        ("_|9X", "pattern '_|9X': nothing before '|' at 1"),
        ("9|", "pattern '9|': nothing after '|' at 1"),
        ("9.X", "pattern '9.X': '.' before the end at 1"),
        ("9!|X", "pattern '9!|X': '!' before the end at 1"),
        ("X..", "pattern 'X..': '.' before the end at 1"),
        ("81A", "pattern '81A': unknown character 'A' at 2"),
        ("8 495", "pattern '8 495': unknown character ' ' at 1"),
        ("9_X", "pattern '9_X': unknown character '_' at 1"),
        ("[]", "pattern '[]': empty set '[]' at 0"),
        ("9[5-1]", "pattern '9[5-1]': reversed range '5-1' at 2"),
        ("[13-0]", "pattern '[13-0]': reversed range '3-0' at 2"),
        ("[*-5]", "pattern '[*-5]': range '*-5' of non-digits at 1"),
        ("[-5]", "pattern '[-5]': '-' without a range at 1"),
        ("[5-]", "pattern '[5-]': '-' without a range at 2"),
        ("[1-3-5]", "pattern '[1-3-5]': '-' without a range at 4"),
        ("[1X]", "pattern '[1X]': unknown character 'X' in set at 2"),
        ("[1|2]", "pattern '[1|2]': unknown character '|' in set at 2"),
        ("[1[2]", "pattern '[1[2]': unknown character '[' in set at 2"),
        ("12]", "pattern '12]': unmatched ']' at 2"),
        ("X" * 65, f"pattern {'X' * 65!r}: longer than 64 characters"),
        ("_" + "X" * 64, f"pattern {'_' + 'X' * 64!r}: longer than 64 characters"),
    ],
)
def test_bad_patterns_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(PatternError, match=exact(reason)):
        DialPattern.parse(text)


def test_pattern_error_is_a_value_error() -> None:
    assert issubclass(PatternError, ValueError)


# --- dial patterns: match and strip -----------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "number", "result"),
    [
        ("9|8XXXXXXXXXX", "984951234567", "84951234567"),
        ("9|8XXXXXXXXXX", "84951234567", None),  # the prefix must be dialled
        ("9|8XXXXXXXXXX", "9849512345678", None),  # no partial matches
        ("9|8XXXXXXXXXX", "98495123456", None),
        ("NXXNXXXXXX", "2125550100", "2125550100"),
        ("NXXNXXXXXX", "1125550100", None),
        ("NXXNXXXXXX", "2121550100", None),
        ("Z", "0", None),
        ("Z", "1", "1"),
        ("[13-5]", "2", None),
        ("[13-5]", "4", "4"),
        ("011.", "011", None),  # '.' takes one or more
        ("011.", "01144", "01144"),
        ("011!", "011", "011"),  # '!' takes zero or more
        ("9|!", "9", ""),
        ("9|!", "", None),
        ("9|.", "9*#x", "*#x"),  # anything at all after the fixed part
        ("*72X.", "*72101", "*72101"),
        ("+7X.", "+74951234567", "+74951234567"),
        ("+7X.", "74951234567", None),
        ("X", "", None),
        ("X", "a", None),
        ("00|X.", "0049301234", "49301234"),
    ],
)
def test_match_takes_the_whole_number_and_strips_the_prefix(
    pattern: str, number: str, result: str | None
) -> None:
    assert DialPattern.parse(pattern).match(number) == result


# Pattern texts over a small alphabet, so that random numbers do match some of them.
ELEMENT_TEXTS = st.sampled_from(
    ["0", "1", "2", "9", "*", "#", "+", "X", "x", "Z", "N", "[12]", "[0-2]", "[1*]", "[02-9]"]
)
NUMBER_ALPHABET = "01239*#+a"


@st.composite
def pattern_texts(draw: st.DrawFn) -> str:
    body = draw(st.lists(ELEMENT_TEXTS, max_size=5))
    prefix = draw(st.lists(ELEMENT_TEXTS, max_size=2))
    tail = draw(st.sampled_from(["", "", ".", "!"]))
    if not body and not tail:
        body = ["X"]
    text = "".join(body) + tail
    if prefix and (body or tail):
        text = "".join(prefix) + "|" + text
    return draw(st.sampled_from(["", "_"])) + text


def oracle(pattern: DialPattern, number: str) -> str | None:
    """What `match` must say, by a regular expression built independently of it."""
    regex = "".join("[" + "".join(re.escape(c) for c in sorted(e)) + "]" for e in pattern.elements)
    regex += {"": "", ".": ".+", "!": ".*"}[pattern.tail]
    if re.fullmatch(regex, number, re.DOTALL) is None:
        return None
    return number[len(pattern.prefix) :]


@PROPERTY_SETTINGS
@given(pattern_texts())
def test_printing_a_parsed_pattern_gives_a_fixed_point(text: str) -> None:
    pattern = DialPattern.parse(text)
    assert DialPattern.parse(str(pattern)) == pattern
    assert str(DialPattern.parse(str(pattern))) == str(pattern)


@PROPERTY_SETTINGS
@given(
    st.lists(st.frozensets(st.sampled_from("0123456789*#+"), min_size=1), min_size=0, max_size=3),
    st.lists(st.frozensets(st.sampled_from("0123456789*#+"), min_size=1), min_size=1, max_size=6),
    st.sampled_from(["", ".", "!"]),
)
def test_any_pattern_value_prints_as_text_that_parses_back(
    prefix: list[frozenset[str]], body: list[frozenset[str]], tail: str
) -> None:
    pattern = DialPattern(prefix=tuple(prefix), body=tuple(body), tail=tail)
    assume(len(str(pattern)) <= 64)
    assert DialPattern.parse(str(pattern)) == pattern


@PROPERTY_SETTINGS
@given(pattern_texts(), st.text(NUMBER_ALPHABET, max_size=8))
def test_match_agrees_with_a_regular_expression(text: str, number: str) -> None:
    pattern = DialPattern.parse(text)
    assert pattern.match(number) == oracle(pattern, number)


@PROPERTY_SETTINGS
@given(st.text(max_size=70))
def test_parse_raises_only_pattern_error(text: str) -> None:
    try:
        pattern = DialPattern.parse(text)
    except PatternError:
        return
    assert DialPattern.parse(str(pattern)) == pattern


# --- the pattern table ----------------------------------------------------------------------


def test_table_returns_the_first_entry_in_list_order() -> None:
    table = PatternTable(
        [
            ("9|X.", "anything after 9"),
            ("9|8XXXXXXXXXX", "never reached: shadowed by the entry above"),
            ("1XX", "extension"),
            ("1!", "one-something"),
            ("112", "never reached either"),
            ("*X.", "feature"),
        ]
    )
    found = table.lookup("984951234567")
    assert found is not None
    assert found[:2] == ("anything after 9", "84951234567")
    assert str(found[2]) == "9|X."
    assert table.lookup("112") == ("extension", "112", DialPattern.parse("1XX"))
    assert table.lookup("1") == ("one-something", "1", DialPattern.parse("1!"))
    assert table.lookup("1234") == ("one-something", "1234", DialPattern.parse("1!"))
    assert table.lookup("*72") == ("feature", "*72", DialPattern.parse("*X."))
    assert table.lookup("9") is None
    assert table.lookup("") is None
    assert table.lookup("2") is None
    assert len(table) == 6


def test_table_prefers_an_earlier_less_specific_entry_found_deeper() -> None:
    table = PatternTable([("8XXX!", "late rest"), ("8X", "short"), ("812!", "early?")])
    assert table.lookup("8123") == ("late rest", "8123", DialPattern.parse("8XXX!"))
    assert table.lookup("812") == ("early?", "812", DialPattern.parse("812!"))
    assert table.lookup("81") == ("short", "81", DialPattern.parse("8X"))
    table = PatternTable([("81234", "exact"), ("8.", "rest")])
    assert table.lookup("81234") == ("exact", "81234", DialPattern.parse("81234"))
    assert table.lookup("812345") == ("rest", "812345", DialPattern.parse("8."))


def test_table_of_outbound_routes() -> None:
    routes = PatternTable(
        [
            ("9|8[1-79]XXXXXXXXX", "trunk-ru"),
            ("9|810.", "trunk-international"),
            ("9|8800XXXXXXX", "trunk-free"),
            ("9|8XXXXXXXXXX", "trunk-ru"),
            ("9|NXXXXXX", "trunk-local"),
        ]
    )
    assert routes.lookup("984951234567") == (
        "trunk-ru",
        "84951234567",
        DialPattern.parse("9|8[1-79]XXXXXXXXX"),
    )
    assert routes.lookup("98101212555") == (
        "trunk-international",
        "8101212555",
        DialPattern.parse("9|810."),
    )
    assert routes.lookup("988001234567") == (
        "trunk-free",
        "88001234567",
        DialPattern.parse("9|8800XXXXXXX"),
    )
    assert routes.lookup("91234567") is None
    assert routes.lookup("92345678") == ("trunk-local", "2345678", DialPattern.parse("9|NXXXXXX"))


def test_table_takes_text_or_patterns_and_refuses_bad_text() -> None:
    table = PatternTable([(DialPattern.parse("1XX"), 1), ("2XX", 2)])
    assert table.lookup("200") == (2, "200", DialPattern.parse("2XX"))
    with pytest.raises(PatternError, match=exact("pattern '9|8X[': unclosed '[' at 4")):
        PatternTable([("1XX", 1), ("9|8X[", 2)])
    assert PatternTable[int]([]).lookup("1") is None


def first_match(
    entries: list[tuple[DialPattern, int]], number: str
) -> tuple[int, str, DialPattern] | None:
    for pattern, value in entries:
        after = pattern.match(number)
        if after is not None:
            return value, after, pattern
    return None


@PROPERTY_SETTINGS
@given(
    st.lists(pattern_texts(), max_size=12),
    st.lists(st.text(NUMBER_ALPHABET, max_size=9), min_size=1, max_size=20),
)
def test_table_agrees_with_a_first_match_scan(texts: list[str], numbers: list[str]) -> None:
    entries = [(DialPattern.parse(t), index) for index, t in enumerate(texts)]
    table = PatternTable(entries)
    for number in numbers + numbers:  # the second time through, from the cached automaton
        assert table.lookup(number) == first_match(entries, number)


@settings(max_examples=50, deadline=None, database=None)
@given(st.data())
def test_table_agrees_on_numbers_built_to_match(data: st.DataObject) -> None:
    """Random numbers rarely match long patterns: also try numbers made from the patterns."""
    texts = data.draw(st.lists(pattern_texts(), min_size=1, max_size=30))
    entries = [(DialPattern.parse(t), index) for index, t in enumerate(texts)]
    table = PatternTable(entries)
    for _ in range(20):
        pattern, _value = data.draw(st.sampled_from(entries))
        number = "".join(data.draw(st.sampled_from(sorted(e))) for e in pattern.elements)
        if pattern.tail:
            number += data.draw(st.text(NUMBER_ALPHABET, min_size=pattern.tail == ".", max_size=3))
        assert pattern.match(number) is not None
        assert table.lookup(number) == first_match(entries, number)


# --- numbers: normalisation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "number", "area_code", "e164"),
    [
        # Russia: trunk prefix 8, international 810 (and 00), 10-digit national numbers.
        ("RU", "8 (495) 123-45-67", "", "+74951234567"),
        ("RU", "84951234567", "", "+74951234567"),
        ("RU", "+7 495 1234567", "", "+74951234567"),
        ("RU", "4951234567", "", "+74951234567"),
        ("RU", "8121234567", "", "+78121234567"),  # St Petersburg 812, dialled bare
        ("RU", "8 812 123-45-67", "", "+78121234567"),
        ("RU", "123-45-67", "495", "+74951234567"),
        ("RU", "810 1 212 555 0100", "", "+12125550100"),
        ("RU", "0049 30 123456", "", "+4930123456"),
        ("RU", "8 916 123 45 67", "", "+79161234567"),
        ("RU", "123-45-67", "", "1234567"),  # local, area code unknown
        ("RU", "849512345", "", "849512345"),  # no valid length: left alone
        # Kazakhstan: the same as Russia, area codes 7xx.
        ("KZ", "8 727 123 4567", "", "+77271234567"),
        ("KZ", "8 701 123 4567", "", "+77011234567"),
        ("KZ", "810 49 30 123456", "", "+4930123456"),
        ("KZ", "272 3456", "727", "+77272723456"),
        # United States: trunk 1, international 011.
        ("US", "1 212 555 0100", "", "+12125550100"),
        ("US", "(212) 555-0100", "", "+12125550100"),
        ("US", "212.555.0100", "", "+12125550100"),
        ("US", "555-0100", "212", "+12125550100"),
        ("US", "011 44 20 7946 0958", "", "+442079460958"),
        ("US", "1 112 555 0100", "", "11125550100"),  # no area code starts with 1
        # United Kingdom: trunk 0, 10-digit (some 9-digit) numbers.
        ("UK", "020 7946 0958", "", "+442079460958"),
        ("UK", "07700 900123", "", "+447700900123"),
        ("UK", "7946 0958", "20", "+442079460958"),
        ("UK", "7946 0958", "020", "+442079460958"),
        ("UK", "016977 3456", "", "+44169773456"),  # a 9-digit national number
        ("UK", "00 1 212 555 0100", "", "+12125550100"),
        # Germany: open plan, numbers of varying length.
        ("DE", "030 123456", "", "+4930123456"),
        ("DE", "030/1234567", "", "+49301234567"),
        ("DE", "0171 1234567", "", "+491711234567"),
        ("DE", "1234567", "030", "+49301234567"),
        ("DE", "1234567", "", "1234567"),
        ("DE", "0043 1 1234567", "", "+4311234567"),
        # France: closed 10-digit plan.
        ("FR", "01 23 45 67 89", "", "+33123456789"),
        ("FR", "06 12 34 56 78", "", "+33612345678"),
        ("FR", "+33 (0)1 23 45 67 89", "", "+330123456789"),  # '+' is taken as written
        # Italy: no trunk prefix, the 0 stays in the number.
        ("IT", "06 1234 5678", "", "+390612345678"),
        ("IT", "333 123 4567", "", "+393331234567"),
        ("IT", "00 33 1 23 45 67 89", "", "+33123456789"),
        # Spain, Poland: closed 9-digit plans with no trunk prefix.
        ("ES", "91 123 45 67", "", "+34911234567"),
        ("ES", "612 34 56 78", "", "+34612345678"),
        ("PL", "22 123 45 67", "", "+48221234567"),
        ("PL", "600 123 456", "", "+48600123456"),
        # Netherlands, Ukraine: trunk 0, 9-digit national numbers.
        ("NL", "020 123 4567", "", "+31201234567"),
        ("NL", "06 1234 5678", "", "+31612345678"),
        ("NL", "123 4567", "20", "+31201234567"),
        ("NL", "0900 123 4567", "", "+319001234567"),
        ("NL", "0900 8844", "", "+319008844"),
        ("UA", "044 123 4567", "", "+380441234567"),
        ("UA", "050 123 4567", "", "+380501234567"),
        ("UA", "123 4567", "44", "+380441234567"),
    ],
)
def test_normalize(country: str, number: str, area_code: str, e164: str) -> None:
    assert normalize(number, country, area_code) == e164


@pytest.mark.parametrize(
    ("country", "number", "short"),
    [
        ("RU", "112", "112"),
        ("RU", "1-01", "101"),
        ("US", "911", "911"),
        ("FR", "15", "15"),
        ("ES", "091", "091"),
        ("FR", "116 000", "116000"),
        ("RU", "100", "100"),  # extensions
        ("RU", "123456", "123456"),
        ("DE", "030123", "030123"),  # six digits are never normalised
        ("RU", "*72", "*72"),
        ("RU", "*72 101", "*72101"),
        ("RU", "#31#", "#31#"),
        ("UK", "0044", "0044"),
    ],
)
def test_short_numbers_come_back_as_digits(country: str, number: str, short: str) -> None:
    assert normalize(number, country) == short
    assert normalize(number, country, "495" if country == "RU" else "") == short


ONLY_SHORT = "'*' and '#' only in short codes (6 or fewer)"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("", "number '': empty"),
        (" - ( ) ", "number ' - ( ) ': empty"),
        ("+", "number '+': no digits after '+'"),
        ("+ ()", "number '+ ()': no digits after '+'"),
        ("8495123456x", "number '8495123456x': unexpected character 'x' at 10"),
        ("8 495 ext 12", "number '8 495 ext 12': unexpected character 'e' at 6"),
        ("tel:+74951234567", "number 'tel:+74951234567': unexpected character 't' at 0"),
        ("7+495", "number '7+495': '+' only at the start, found at 1"),
        ("++7", "number '++7': '+' only at the start, found at 1"),
        ("+*72", "number '+*72': unexpected character '*' at 1"),
        ("+7 495#", "number '+7 495#': unexpected character '#' at 6"),
        ("١٢٣", "number '١٢٣': unexpected character '١' at 0"),  # ASCII digits only
        ("*72 84951234567", f"number '*72 84951234567': {ONLY_SHORT}"),
        ("#31#84951234567", f"number '#31#84951234567': {ONLY_SHORT}"),
    ],
)  # fmt: skip
def test_bad_numbers_are_refused_with_the_reason(number: str, reason: str) -> None:
    with pytest.raises(NumberError, match=exact(reason)):
        normalize(number, "RU")
    with pytest.raises(NumberError, match=exact(reason)):
        classify(number, "RU")


@pytest.mark.parametrize(
    ("country", "area_code", "reason"),
    [
        ("RU", "49x", "area code '49x': digits only"),
        ("RU", "+7495", "area code '+7495': digits only"),
        ("UK", "0", "area code '0': no digits"),
        ("RU", "0495", "area code '0495': no national number starts with 0"),
        ("US", "112", "area code '112': no national number starts with 1"),
    ],
)
def test_bad_area_codes_are_refused(country: str, area_code: str, reason: str) -> None:
    with pytest.raises(NumberError, match=exact(reason)):
        normalize("1234567", country, area_code)
    with pytest.raises(NumberError, match=exact(reason)):
        classify("1234567", country, area_code)


def test_unknown_countries_are_refused() -> None:
    reason = "unknown country 'GB'; known: DE, ES, FR, IT, KZ, NL, PL, RU, UA, UK, US"
    for call in (
        lambda: normalize("1", "GB"),
        lambda: classify("1", "GB"),
        lambda: country_code("GB"),
        lambda: emergency_numbers("GB"),
        lambda: is_emergency("112", "GB"),
    ):
        with pytest.raises(CountryError, match=exact(reason)):
            call()


def test_error_classes_are_value_errors() -> None:
    assert issubclass(NumberError, ValueError)
    assert issubclass(CountryError, ValueError)


VALID_NUMBERS = st.one_of(
    st.text("0123456789 -().", max_size=15),
    st.builds(lambda s: "+" + s, st.text("0123456789 ", min_size=1, max_size=15)),
    st.text("0123456789*#", max_size=6),
).filter(lambda s: any(c in "0123456789*#" for c in s))


@PROPERTY_SETTINGS
@given(VALID_NUMBERS, st.sampled_from(sorted(PLANS)), st.sampled_from(["", "495", "20", "727"]))
def test_normalize_is_idempotent_and_classify_total(
    number: str, country: str, area_code: str
) -> None:
    plan = PLANS[country]
    if area_code and area_code[0] not in plan.nsn_first:
        area_code = ""
    e164 = normalize(number, country, area_code)
    assert re.fullmatch(r"\+[0-9]+|[0-9*#]+", e164)
    assert normalize(e164, country, area_code) == e164
    cls = classify(number, country, area_code)
    assert cls in (*PERMISSION_CLASSES, "emergency")
    if e164.startswith("+"):
        assert classify(e164, country, area_code) == cls


@PROPERTY_SETTINGS
@given(st.text(max_size=20), st.sampled_from(sorted(PLANS)))
def test_normalize_raises_only_number_error(number: str, country: str) -> None:
    try:
        normalize(number, country)
        classify(number, country)
    except NumberError:
        pass


# --- numbers: classes -----------------------------------------------------------------------


def test_permission_classes() -> None:
    assert PERMISSION_CLASSES == (
        "internal",
        "local",
        "mobile",
        "long-distance",
        "international",
        "premium",
    )
    assert DEFAULT_PERMISSIONS == ("internal", "local", "mobile", "long-distance")
    assert set(DEFAULT_PERMISSIONS) <= set(PERMISSION_CLASSES)


@pytest.mark.parametrize(
    ("country", "number", "area_code", "cls"),
    [
        # Russia
        ("RU", "112", "", "emergency"),
        ("RU", "101", "", "emergency"),
        ("RU", "103", "495", "emergency"),
        ("RU", "100", "", "internal"),
        ("RU", "*72101", "", "internal"),
        ("RU", "89161234567", "", "mobile"),
        ("RU", "+7 916 123-45-67", "", "mobile"),
        ("RU", "84951234567", "495", "local"),
        ("RU", "84951234567", "", "long-distance"),
        ("RU", "84951234567", "812", "long-distance"),
        ("RU", "1234567", "495", "local"),
        ("RU", "1234567", "", "local"),  # a local number, wherever the office is
        ("RU", "88091234567", "", "premium"),
        ("RU", "88001234567", "", "long-distance"),  # freephone: no class of its own
        ("RU", "810441234567890", "", "international"),
        ("RU", "00441234567890", "", "international"),
        ("RU", "87271234567", "", "international"),  # Kazakhstan shares +7
        ("RU", "+7 701 123 45 67", "", "international"),
        ("RU", "+7 612 345 67 89", "", "international"),
        ("RU", "880912345", "", "premium"),  # too short, but plainly a premium number
        # Kazakhstan, the other way round
        ("KZ", "102", "", "emergency"),
        ("KZ", "87011234567", "", "mobile"),
        ("KZ", "87771234567", "", "mobile"),
        ("KZ", "87272345678", "727", "local"),
        ("KZ", "87172345678", "727", "long-distance"),
        ("KZ", "84951234567", "", "international"),
        ("KZ", "89161234567", "", "international"),
        ("KZ", "88091234567", "", "premium"),
        # United States
        ("US", "911", "", "emergency"),
        ("US", "112", "", "emergency"),
        ("US", "1 212 555 0100", "212", "local"),
        ("US", "1 212 555 0100", "", "long-distance"),
        ("US", "1 900 555 0100", "", "premium"),
        ("US", "212 976 1234", "", "premium"),
        ("US", "1 876 555 0100", "", "international"),  # Jamaica, inside +1
        ("US", "1 809 555 0100", "", "international"),  # Dominican Republic
        ("US", "1 787 555 0100", "", "long-distance"),  # Puerto Rico is national
        ("US", "011 44 20 7946 0958", "", "international"),
        # United Kingdom
        ("UK", "999", "", "emergency"),
        ("UK", "112", "", "emergency"),
        ("UK", "118 118", "", "premium"),  # directory enquiries
        ("UK", "020 7946 0958", "20", "local"),
        ("UK", "020 7946 0958", "", "long-distance"),
        ("UK", "07700 900123", "", "mobile"),
        ("UK", "07624 123456", "", "mobile"),
        ("UK", "07623 123456", "", "long-distance"),  # pagers
        ("UK", "0909 879 0000", "", "premium"),
        ("UK", "070 1234 5678", "", "premium"),
        # Germany
        ("DE", "110", "", "emergency"),
        ("DE", "11833", "", "premium"),
        ("DE", "030 1234567", "30", "local"),
        ("DE", "0171 1234567", "", "mobile"),
        ("DE", "0900 1234567", "", "premium"),
        ("DE", "0043 1 1234567", "", "international"),
        # France
        ("FR", "15", "", "emergency"),
        ("FR", "17", "", "emergency"),
        ("FR", "18", "", "emergency"),
        ("FR", "06 12 34 56 78", "", "mobile"),
        ("FR", "07 12 34 56 78", "", "mobile"),
        ("FR", "0899 12 34 56", "", "premium"),
        ("FR", "01 23 45 67 89", "1", "local"),
        # Italy
        ("IT", "113", "", "emergency"),
        ("IT", "115", "", "emergency"),
        ("IT", "118", "", "emergency"),
        ("IT", "333 123 4567", "", "mobile"),
        ("IT", "899 123 456", "", "premium"),
        ("IT", "06 1234 5678", "06", "local"),
        ("IT", "06 1234 5678", "", "long-distance"),
        # Spain
        ("ES", "091", "", "emergency"),
        ("ES", "092", "", "emergency"),
        ("ES", "061", "", "emergency"),
        ("ES", "612 34 56 78", "", "mobile"),
        ("ES", "712 34 56 78", "", "mobile"),
        ("ES", "806 12 34 56", "", "premium"),
        ("ES", "91 123 45 67", "91", "local"),
        # Netherlands
        ("NL", "112", "", "emergency"),
        ("NL", "06 1234 5678", "", "mobile"),
        ("NL", "0900 123 4567", "", "premium"),
        ("NL", "020 123 4567", "", "long-distance"),
        # Poland
        ("PL", "997", "", "emergency"),
        ("PL", "998", "", "emergency"),
        ("PL", "999", "", "emergency"),
        ("PL", "600 123 456", "", "mobile"),
        ("PL", "450 123 456", "", "mobile"),
        ("PL", "58 123 45 67", "", "long-distance"),  # Gdańsk, not a mobile
        ("PL", "701 123 456", "", "premium"),
        # Ukraine
        ("UA", "101", "", "emergency"),
        ("UA", "104", "", "emergency"),
        ("UA", "050 123 4567", "", "mobile"),
        ("UA", "097 123 4567", "", "mobile"),
        ("UA", "0900 123 456", "", "premium"),
        ("UA", "044 123 4567", "44", "local"),
        ("UA", "810 7 495 123 45 67", "", "long-distance"),  # not a Ukrainian prefix
        ("UA", "00 7 495 123 45 67", "", "international"),
    ],
)
def test_classify(country: str, number: str, area_code: str, cls: str) -> None:
    assert classify(number, country, area_code) == cls


@pytest.mark.parametrize(
    ("country", "numbers"),
    [
        ("RU", ("112", "101", "102", "103", "104")),
        ("KZ", ("112", "101", "102", "103", "104")),
        ("UA", ("112", "101", "102", "103", "104")),
        ("US", ("911", "112")),
        ("UK", ("999", "112")),
        ("DE", ("112", "110")),
        ("FR", ("112", "15", "17", "18")),
        ("IT", ("112", "113", "115", "118")),
        ("ES", ("112", "091", "092", "061")),
        ("NL", ("112",)),
        ("PL", ("112", "997", "998", "999")),
    ],
)
def test_emergency_numbers(country: str, numbers: tuple[str, ...]) -> None:
    assert set(numbers) <= set(emergency_numbers(country))
    for number in emergency_numbers(country):
        assert is_emergency(number, country)
        assert classify(number, country) == "emergency"
        assert normalize(number, country) == number


def test_is_emergency() -> None:
    assert is_emergency("1 1 2", "RU")
    assert not is_emergency("911", "RU")
    assert is_emergency("911", "US")
    assert not is_emergency("+7112", "RU")
    assert not is_emergency("", "RU")
    assert not is_emergency("11x", "RU")


@pytest.mark.parametrize(
    ("country", "code"),
    [
        ("US", "1"),
        ("UK", "44"),
        ("DE", "49"),
        ("FR", "33"),
        ("IT", "39"),
        ("ES", "34"),
        ("NL", "31"),
        ("PL", "48"),
        ("RU", "7"),
        ("UA", "380"),
        ("KZ", "7"),
    ],
)
def test_country_code(country: str, code: str) -> None:
    assert country_code(country) == code


def test_more_than_15_digits_is_no_e164_number() -> None:
    assert normalize("+123456789012345", "RU") == "+123456789012345"
    with pytest.raises(
        NumberError, match=r"^\+1234567890123456: more than 15 digits, the most E\.164 allows$"
    ):
        normalize("+1234567890123456", "RU")
    with pytest.raises(NumberError, match="more than 15 digits"):
        normalize("810 1234567890123456", "RU")


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("+74951234567", "RU"), ("+77011234567", "KZ"), ("+76123456789", "KZ"),
        ("+12125550100", "US"), ("+14165550100", "CA"), ("+18765550100", "JM"),
        ("+18095550100", "DO"), ("+442079460958", "UK"), ("+49301234567", "DE"),
        ("+380441234567", "UA"), ("+2348012345678", "NG"), ("+8816312345", "+881"),
        ("+882161234567", "+882"), ("+9991234567", "+999"),
    ],
)  # fmt: skip
def test_the_country_of_an_e164_number(number: str, country: str) -> None:
    """Shared codes are split (+1 by area code, +7 by its next digit); codes of no country
    (satellite phones, international networks) and unassigned ones are their own "country"."""
    assert numbering.country_of(number) == country


def test_every_office_country_is_its_own_calling_code() -> None:
    for country in COUNTRIES:
        code = numbering.country_code(country)
        shared = {"US": "+12125550100", "RU": "+74951234567", "KZ": "+77011234567"}
        example = shared.get(country, f"+{code}123456789")
        assert numbering.country_of(example) == country


@pytest.mark.parametrize("text", ["74951234567", "+", "+12", "+7495x", ""])
def test_a_country_only_of_e164(text: str) -> None:
    with pytest.raises(NumberError, match=r"is not an E\.164 number"):
        numbering.country_of(text)
