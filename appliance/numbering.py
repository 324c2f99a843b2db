"""Telephone numbers: dial patterns for outbound routes, and E.164 normalisation and call
classes (ITU-T E.164, national numbering plans) for the office countries.

A neutral module: the store uses it to validate configuration, the dial plan to route and to
check permissions. It imports nothing from the rest of the appliance but `appliance.i18n`, for
its messages.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from appliance.i18n import T

V = TypeVar("V")

# --- Dial patterns -----------------------------------------------------------------------

MAX_PATTERN_LENGTH = 64
"""Longest pattern text accepted, leading `_` included."""

_DIGITS = "0123456789"
_SET_ORDER = _DIGITS + "*#+"
"""The characters a pattern element may match, in the order a set prints them."""
_SYMBOLS = frozenset(_SET_ORDER)
_NAMED = {
    "X": frozenset(_DIGITS),
    "Z": frozenset("123456789"),
    "N": frozenset("23456789"),
}
_NAME_OF = {chars: name for name, chars in _NAMED.items()}
_OTHER = ""
"""Stands for every character no element can match (only `.` and `!` take those)."""


class PatternError(ValueError):
    """A dial pattern that cannot be parsed; the message names the problem and its place."""


Element: TypeAlias = frozenset[str]
"""The characters one position of a pattern matches."""


@dataclass(frozen=True, repr=False)
class DialPattern:
    """A dial pattern in the usual PBX (Asterisk extensions.conf) notation.

    `X` is any digit, `Z` 1-9, `N` 2-9, `[13-5]` a set; digits, `*`, `#` and `+` stand for
    themselves. A final `.` takes one or more further characters, a final `!` zero or more.
    Elements before a `|` are a prefix that must be dialled and is stripped before the number
    goes on: `9|8XXXXXXXXXX` matches `98XXXXXXXXXX` and passes on `8XXXXXXXXXX`.

    Two patterns are equal when they have the same elements: `[0-9]` is `X`.
    """

    prefix: tuple[Element, ...]
    body: tuple[Element, ...]
    tail: str = ""
    """What may follow the body: nothing (""), one or more characters (".") or any ("!")."""

    @classmethod
    def parse(cls, text: str) -> DialPattern:
        """Parse `text`; an optional leading `_` is ignored and letters may be any case."""

        def fail(problem: str, at: int | None = None) -> PatternError:
            if at is None:
                return PatternError(T("pattern {text!r}: {problem}", text=text, problem=problem))
            return PatternError(
                T("pattern {text!r}: {problem} at {at}", text=text, problem=problem, at=at)
            )

        if len(text) > MAX_PATTERN_LENGTH:
            raise fail(T("longer than {length} characters", length=MAX_PATTERN_LENGTH))
        start = 1 if text.startswith("_") else 0
        if start == len(text):
            raise fail(T("empty"))
        parts: list[list[Element]] = [[]]
        tail = ""
        i = start
        while i < len(text):
            char = text[i]
            if char in ".!":
                if i != len(text) - 1:
                    raise fail(T("{char!r} before the end", char=char), i)
                tail = char
            elif char == "|":
                if len(parts) > 1:
                    raise fail(T("second '|'"), i)
                if not parts[0]:
                    raise fail(T("nothing before '|'"), i)
                if i == len(text) - 1:
                    raise fail(T("nothing after '|'"), i)
                parts.append([])
            elif char == "[":
                close = text.find("]", i + 1)
                if close < 0:
                    raise fail(T("unclosed '['"), i)
                parts[-1].append(_parse_set(text, i, close, fail))
                i = close
            elif char == "]":
                raise fail(T("unmatched ']'"), i)
            elif char.upper() in _NAMED:
                parts[-1].append(_NAMED[char.upper()])
            elif char in _SYMBOLS:
                parts[-1].append(frozenset(char))
            else:
                raise fail(T("unknown character {char!r}", char=char), i)
            i += 1
        if len(parts) == 1:
            return cls(prefix=(), body=tuple(parts[0]), tail=tail)
        return cls(prefix=tuple(parts[0]), body=tuple(parts[1]), tail=tail)

    def __str__(self) -> str:
        body = "".join(_show(element) for element in self.body) + self.tail
        if not self.prefix:
            return body
        return "".join(_show(element) for element in self.prefix) + "|" + body

    def __repr__(self) -> str:
        return f"DialPattern.parse({str(self)!r})"

    @property
    def elements(self) -> tuple[Element, ...]:
        """The prefix and the body: what the dialled number must start with."""
        return self.prefix + self.body

    def match(self, number: str) -> str | None:
        """`number` without the prefix when the whole of it matches, else None."""
        elements = self.elements
        if self.tail == "!":
            fits = len(number) >= len(elements)
        elif self.tail == ".":
            fits = len(number) > len(elements)
        else:
            fits = len(number) == len(elements)
        if not fits or any(c not in e for e, c in zip(elements, number, strict=False)):
            return None
        return number[len(self.prefix) :]


def _parse_set(
    text: str, open_at: int, close_at: int, fail: Callable[[str, int], PatternError]
) -> Element:
    """The element `text[open_at:close_at + 1]`, such as `[13-5]` (digit ranges only)."""
    content = text[open_at + 1 : close_at]
    if not content:
        raise fail(T("empty set '[]'"), open_at)
    chars: set[str] = set()
    k = 0
    while k < len(content):
        char, at = content[k], open_at + 1 + k
        if char == "-":
            raise fail(T("'-' without a range"), at)
        if content[k + 1 : k + 2] == "-":
            if k + 2 == len(content):
                raise fail(T("'-' without a range"), at + 1)
            low, high = char, content[k + 2]
            if low not in _DIGITS or high not in _DIGITS:
                raise fail(T("range '{low}-{high}' of non-digits", low=low, high=high), at)
            if low > high:
                raise fail(T("reversed range '{low}-{high}'", low=low, high=high), at)
            chars.update(_DIGITS[int(low) : int(high) + 1])
            k += 3
            continue
        if char not in _SYMBOLS:
            raise fail(T("unknown character {char!r} in set", char=char), at)
        chars.add(char)
        k += 1
    return frozenset(chars)


def _show(element: Element) -> str:
    """The canonical text of one element: the character, X/Z/N, or a set with ranges."""
    if len(element) == 1:
        return next(iter(element))
    if element in _NAME_OF:
        return _NAME_OF[element]
    out: list[str] = []
    digits = [d for d in _DIGITS if d in element]
    run: list[str] = []
    for digit in [*digits, None]:
        if digit is not None and run and int(digit) == int(run[-1]) + 1:
            run.append(digit)
            continue
        if len(run) >= 3:
            out.append(f"{run[0]}-{run[-1]}")
        else:
            out.extend(run)
        run = [] if digit is None else [digit]
    out.extend(c for c in _SET_ORDER[len(_DIGITS) :] if c in element)
    return "[" + "".join(out) + "]"


class PatternTable(Generic[V]):
    """Ordered (pattern, value) entries, looked up by first match in list order.

    The patterns are compiled into a trie over their elements (edges are character sets;
    nodes carry the lowest entry index of patterns that end there exactly, with `.` or with
    `!`), walked as a lazily built deterministic automaton whose states are sets of trie
    nodes. A lookup is one cached transition per character of the number, whatever the number
    of entries; a transition not seen before costs one pass over the live nodes' edges, under
    a lock so that threads may share a table.
    """

    def __init__(self, entries: Iterable[tuple[DialPattern | str, V]]) -> None:
        self.entries: tuple[tuple[DialPattern, V], ...] = tuple(
            (p if isinstance(p, DialPattern) else DialPattern.parse(p), value)
            for p, value in entries
        )
        none = len(self.entries)  # an index beyond every entry: no match
        self._none = none
        self._edges: list[dict[Element, int]] = [{}]
        exact, dot, bang = [none], [none], [none]
        for index, (pattern, _) in enumerate(self.entries):
            node = 0
            for element in pattern.elements:
                child = self._edges[node].get(element)
                if child is None:
                    child = len(self._edges)
                    self._edges[node][element] = child
                    self._edges.append({})
                    exact.append(none)
                    dot.append(none)
                    bang.append(none)
                node = child
            marks = {"": exact, ".": dot, "!": bang}[pattern.tail]
            marks[node] = min(marks[node], index)
        reach = [min(e, d, b) for e, d, b in zip(exact, dot, bang, strict=True)]
        for node in reversed(range(len(self._edges))):  # children come after their parent
            for child in self._edges[node].values():
                reach[node] = min(reach[node], reach[child])
        self._node_marks = (exact, dot, bang, reach)
        self._states: list[frozenset[int]] = []
        self._state_ids: dict[frozenset[int], int] = {}
        self._exact: list[int] = []
        self._dot: list[int] = []
        self._bang: list[int] = []
        self._reach: list[int] = []
        self._moves: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()
        with self._lock:
            self._start = self._state(frozenset({0}))

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, number: str) -> tuple[V, str, DialPattern] | None:
        """The first entry matching `number`: (value, number without the prefix, pattern)."""
        none = self._none
        state = self._start
        best = self._bang[state]
        for char in number:
            if best <= self._reach[state]:
                break  # nothing still reachable comes earlier in the list
            best = min(best, self._dot[state])
            key = (state, char if char in _SYMBOLS else _OTHER)
            move = self._moves.get(key)
            if move is None:
                move = self._move(*key)
            state = move
            best = min(best, self._bang[state])
        else:
            best = min(best, self._exact[state])
        if best == none:
            return None
        pattern, value = self.entries[best]
        return value, number[len(pattern.prefix) :], pattern

    def _move(self, state: int, char: str) -> int:
        with self._lock:
            nodes = frozenset(
                child
                for node in self._states[state]
                for element, child in self._edges[node].items()
                if char in element
            )
            move = self._state(nodes)
            self._moves[state, char] = move
            return move

    def _state(self, nodes: frozenset[int]) -> int:
        """The id of the automaton state for the trie `nodes`; call with the lock held."""
        known = self._state_ids.get(nodes)
        if known is not None:
            return known
        exact, dot, bang, reach = self._node_marks
        self._exact.append(min((exact[n] for n in nodes), default=self._none))
        self._dot.append(min((dot[n] for n in nodes), default=self._none))
        self._bang.append(min((bang[n] for n in nodes), default=self._none))
        self._reach.append(min((reach[n] for n in nodes), default=self._none))
        self._states.append(nodes)
        self._state_ids[nodes] = len(self._states) - 1
        return len(self._states) - 1


# --- Numbers and call classes ---------------------------------------------------------------

PERMISSION_CLASSES = ("internal", "local", "mobile", "long-distance", "international", "premium")
"""Call classes a user may be allowed; emergency calls are always allowed and not listed."""

DEFAULT_PERMISSIONS = ("internal", "local", "mobile", "long-distance")

SHORT_NUMBER_LENGTH = 6
"""Numbers this long or shorter are extensions or service numbers, never normalised."""


class NumberError(ValueError):
    """A dialled or configured number, or area code, that is not one; the message says why."""


class CountryError(ValueError):
    """A country with no numbering plan here."""


@dataclass(frozen=True)
class NumberingPlan:
    """What E.164 normalisation and call classes need of one country's numbering plan.

    `nsn` is the national significant number: the number after the country code.
    `ranges` are prefixes of the NSN in dial-pattern notation, with the class of the numbers
    they start, first match wins; numbers in no range are local or long-distance.
    """

    country: str
    calling_code: str
    trunk_prefix: str
    """Dialled before an NSN in national format ("0", "8", "1"), or "" (closed plans)."""
    international_prefixes: tuple[str, ...]
    nsn_lengths: tuple[int, ...]
    """Lengths an NSN may have after the trunk prefix or as area code + local number."""
    nsn_first: str
    """Digits an NSN (and so an area code) may start with."""
    bare_lengths: tuple[int, ...]
    """Lengths at which a number dialled with no prefix at all is a whole NSN."""
    local_dialling: bool
    """Whether a subscriber number is dialled without its area code inside the area."""
    emergency: tuple[str, ...]
    ranges: tuple[tuple[str, str], ...]
    short_premium: tuple[str, ...] = ()
    """Short numbers (patterns) charged at premium rate, such as directory enquiries."""


# fmt: off
_NANP_ABROAD = (
    "242", "246", "264", "268", "284", "345", "441", "473", "649", "658", "664",
    "721", "758", "767", "784", "809", "829", "849", "868", "869", "876",
)
"""NANP area codes of other countries than the US and Canada: the Caribbean and Bermuda."""
_PL_MOBILE = (
    "45", "50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88",
)
"""Polish mobile ranges; 5x-8x also hold fixed area codes (58, 61, 71, 81...)."""
_FR_EMERGENCY = (
    "112", "15", "17", "18", "114", "115", "119", "191", "196", "197", "116000",
)
"""The French numéros d'urgence, free and always reachable: 15 SAMU, 17 police, 18 fire,
114 deaf and hard of hearing, 115 homeless, 119 children at risk, 191 aviation, 196 sea,
197 attack alert, 116000 missing children."""
# fmt: on

# Sources: ITU-T E.164 assignments and the national plans as published to the ITU
# (Operational Bulletin notifications), Ofcom, BNetzA, ARCEP, AGCOM, CNMC, ACM, UKE,
# Rossvyaz/Minsvyaz, NKRZI and the Kazakh plan. Where a plan was not certain the choice is
# the stricter one, and the comment says so: a number wrongly put in a class that is not
# allowed by default is refused, never charged unexpectedly.
PLANS: dict[str, NumberingPlan] = {
    p.country: p
    for p in (
        NumberingPlan(
            country="US",
            calling_code="1",
            trunk_prefix="1",
            international_prefixes=("011",),
            nsn_lengths=(10,),
            nsn_first="23456789",
            bare_lengths=(10,),
            local_dialling=True,  # 7-digit dialling survives in some single-code areas
            emergency=("911", "112"),  # 112 is routed to 911 by most carriers
            ranges=(
                # +1 is shared by the NANP: these area codes are other countries (the
                # Caribbean and Bermuda) and are billed, and abused, as international.
                # Canada and the US territories (340, 670, 671, 684, 787, 939) are national.
                *((code, "international") for code in _NANP_ABROAD),
                ("900", "premium"),
                # 976 exchanges are premium in many area codes; some have been reassigned,
                # so this refuses a few ordinary numbers rather than let any 976 line through.
                ("NXX976", "premium"),
                # NANP mobiles share the geographic area codes: no mobile range.
            ),
        ),
        NumberingPlan(
            country="UK",
            calling_code="44",
            trunk_prefix="0",
            international_prefixes=("00",),
            nsn_lengths=(9, 10),
            nsn_first="123456789",
            bare_lengths=(10,),
            local_dialling=True,
            emergency=("999", "112"),
            ranges=(
                ("9", "premium"),  # 09: premium rate services
                # 070 personal numbers: long a fraud vector and priced above mobiles; kept
                # premium to be safe. 076 (pagers, except 07624 Isle of Man mobiles) is none.
                ("70", "premium"),
                ("7624", "mobile"),
                ("7[1-57-9]", "mobile"),
            ),
            short_premium=("118XXX",),  # directory enquiries
        ),
        NumberingPlan(
            country="DE",
            calling_code="49",
            trunk_prefix="0",
            international_prefixes=("00",),
            nsn_lengths=tuple(range(6, 14)),  # open plan: area codes and numbers vary
            nsn_first="123456789",
            bare_lengths=(),  # a bare number may be a local one of any length
            local_dialling=True,
            emergency=("112", "110"),
            ranges=(
                ("900", "premium"),  # 0900 premium rate (0190 is closed)
                ("137", "premium"),  # 0137 mass calling (televoting), charged per call
                ("1[5-7]", "mobile"),  # 015x, 016x, 017x
            ),
            short_premium=("118XX", "118XXX"),  # directory enquiries
        ),
        NumberingPlan(
            country="FR",
            calling_code="33",
            trunk_prefix="0",
            international_prefixes=("00",),
            nsn_lengths=(9,),
            nsn_first="123456789",
            bare_lengths=(9,),
            local_dialling=False,  # closed 10-digit plan since 1996
            emergency=_FR_EMERGENCY,
            ranges=(
                ("89", "premium"),  # 089x surcharged services
                ("[67]", "mobile"),
            ),
            short_premium=("118XXX",),  # directory enquiries
        ),
        NumberingPlan(
            country="IT",
            calling_code="39",
            trunk_prefix="",  # the 0 of fixed numbers is part of the number since 1998
            international_prefixes=("00",),
            nsn_lengths=tuple(range(6, 12)),
            nsn_first=_DIGITS,  # 0 fixed, 3 mobile, 8 non-geographic, 1 and 4 services
            bare_lengths=tuple(range(6, 12)),
            local_dialling=False,
            # 113 police, 115 fire, 117 Guardia di Finanza, 118 ambulance, 1530 coast guard
            emergency=("112", "113", "115", "117", "118", "1530"),
            ranges=(
                ("89", "premium"),  # 892, 894, 895, 899
                ("3", "mobile"),
            ),
        ),
        NumberingPlan(
            country="ES",
            calling_code="34",
            trunk_prefix="",  # closed 9-digit plan since 1998
            international_prefixes=("00",),
            nsn_lengths=(9,),
            nsn_first="6789",
            bare_lengths=(9,),
            local_dialling=False,
            # 061 health emergencies, 062 Guardia Civil, 080 fire (in most cities),
            # 091 Policía Nacional, 092 Policía Local
            emergency=("112", "061", "062", "080", "091", "092"),
            ranges=(
                ("80[367]", "premium"),  # 803 adult, 806 leisure, 807 professional
                ("905", "premium"),  # mass calling (televoting), charged per call
                ("6", "mobile"),
                ("7[1-4]", "mobile"),
            ),
            short_premium=("118XX",),  # directory enquiries
        ),
        NumberingPlan(
            country="NL",
            calling_code="31",
            trunk_prefix="0",
            international_prefixes=("00",),
            nsn_lengths=(7, 9, 10),  # 0800 and 0900 numbers have 4 or 7 digits
            nsn_first="123456789",
            bare_lengths=(9,),
            local_dialling=True,
            emergency=("112",),
            ranges=(
                ("90", "premium"),  # 0900, 0906, 0909 premium rate
                # 06: mobiles except 066 (pagers) and 067 (dial-up data), left unclassified
                ("6[1-58]", "mobile"),
            ),
        ),
        NumberingPlan(
            country="PL",
            calling_code="48",
            trunk_prefix="",  # the 0 was dropped in 2005: closed 9-digit plan
            international_prefixes=("00",),
            nsn_lengths=(9,),
            nsn_first="123456789",
            bare_lengths=(9,),
            local_dialling=False,
            emergency=("112", "997", "998", "999"),  # police, fire, ambulance
            ranges=(
                ("70", "premium"),  # 70x premium rate
                *((code, "mobile") for code in _PL_MOBILE),
            ),
        ),
        NumberingPlan(
            country="RU",
            calling_code="7",
            trunk_prefix="8",
            # 810 is the official prefix; the move to 0/00 was planned and postponed, but
            # many operators and SIP trunks take 00, and no national number starts with 0.
            international_prefixes=("810", "00"),
            nsn_lengths=(10,),
            nsn_first="3456789",  # +7: 3, 4, 8, 9 Russia; 6, 7 Kazakhstan
            bare_lengths=(10,),
            local_dialling=True,
            # 101 fire, 102 police, 103 ambulance, 104 gas. The old 01-04 still work on
            # some fixed lines but collide with short extensions, so they are not listed.
            emergency=("112", "101", "102", "103", "104"),
            ranges=(
                ("[67]", "international"),  # Kazakhstan shares +7
                ("809", "premium"),
                ("9", "mobile"),
            ),
        ),
        NumberingPlan(
            country="UA",
            calling_code="380",
            trunk_prefix="0",  # 8 / 8-10 were replaced by 0 / 00 in 2009-2010
            international_prefixes=("00",),
            nsn_lengths=(9,),
            nsn_first="3456789",
            bare_lengths=(9,),
            local_dialling=True,
            emergency=("112", "101", "102", "103", "104"),
            ranges=(
                ("900", "premium"),
                *((code, "mobile") for code in ("39", "50", "63", "66", "67", "68", "73")),
                ("9[1-9]", "mobile"),
            ),
        ),
        NumberingPlan(
            country="KZ",
            calling_code="7",
            trunk_prefix="8",
            # As in Russia: 810 official, 00 taken by many operators; no NSN starts with 0.
            international_prefixes=("810", "00"),
            nsn_lengths=(10,),
            nsn_first="3456789",
            bare_lengths=(10,),
            local_dialling=True,
            emergency=("112", "101", "102", "103", "104"),
            ranges=(
                # Not confirmed in the Kazakh plan; listed first so that it stays premium.
                ("809", "premium"),
                # Russia shares +7: everything but 6xx and 7xx (including 8 800, which
                # Kazakh freephone numbers may share) is treated as international.
                ("[0-589]", "international"),
                # 700-708 and 747 (Altel, Tele2), 771-778 (Beeline, Kcell); 75x and 76x are
                # not certain to be mobile and stay long-distance.
                ("70X", "mobile"),
                ("747", "mobile"),
                ("77X", "mobile"),
            ),
        ),
    )
}
"""Numbering plans of the office countries (the keys of `appliance.store.settings`
COUNTRIES)."""

_SEPARATORS = frozenset("-.()/")
"""Stripped from numbers, with white space; `/` is the German `030/123456`."""


def numbering_plan(country: str) -> NumberingPlan:
    """The plan of `country` (an office country code such as "RU"); raises CountryError."""
    plan = PLANS.get(country)
    if plan is None:
        raise CountryError(
            T(
                "unknown country {country!r}; known: {known}",
                country=country,
                known=", ".join(sorted(PLANS)),
            )
        )
    return plan


def country_code(country: str) -> str:
    """The E.164 country calling code of `country`, without `+`: "7" for RU."""
    return numbering_plan(country).calling_code


def emergency_numbers(country: str) -> tuple[str, ...]:
    """The emergency numbers of `country`, 112 first where it is the common one."""
    return numbering_plan(country).emergency


def is_emergency(number: str, country: str) -> bool:
    """Whether `number` (separators allowed) is an emergency number in `country`."""
    plan = numbering_plan(country)
    try:
        return _clean(number) in plan.emergency
    except NumberError:
        return False


def normalize(number: str, country: str, area_code: str = "") -> str:
    """`number` as dialled in an office in `country`, in E.164 with `+` when it is external.

    Separators are removed; `+...` is kept; an international prefix becomes `+`; the trunk
    prefix and an NSN, or a bare NSN of the full national length, get the country code; a
    local subscriber number gets `area_code` too (given without the trunk prefix: "495" in
    Moscow; a leading 0 is dropped where trunk prefix is 0). Emergency numbers and numbers
    of 6 characters or fewer (extensions, service numbers, `*`/`#` codes), and numbers that
    fit none of those forms, come back as digits. Raises NumberError and CountryError.
    """
    plan = numbering_plan(country)
    return _normalize(_clean(number), plan, _area(area_code, plan))


def classify(number: str, country: str, area_code: str = "") -> str:
    """The call class of `number` dialled from an office in `country` with `area_code`.

    "emergency" for the country's emergency numbers, "internal" for other short numbers
    (6 characters or fewer without `+`) unless they are premium short codes, else
    "international" for another country code (RU and KZ share +7: +76/+77 are Kazakh),
    "premium" or "mobile" on those ranges, "local" when the NSN starts with `area_code` (or
    is a local number with no area code), else "long-distance". Raises NumberError.
    """
    plan = numbering_plan(country)
    digits = _clean(number)
    area = _area(area_code, plan)
    if digits in plan.emergency:
        return "emergency"
    if _is_short(digits, plan):
        return "premium" if _short_premium(plan.country).lookup(digits) else "internal"
    e164 = _normalize(digits, plan, area)
    trunk = plan.trunk_prefix
    if e164.startswith("+"):
        if not e164.startswith("+" + plan.calling_code):
            return "international"
        nsn = e164[1 + len(plan.calling_code) :]
    elif trunk and digits.startswith(trunk):
        nsn = digits[len(trunk) :]  # national format, but of no valid length
    elif plan.local_dialling and len(digits) < max(plan.nsn_lengths):
        return "local"  # a subscriber number of the office's area, whose code is not known
    else:
        nsn = digits
    found = _ranges(plan.country).lookup(nsn)
    if found is not None:
        return found[0]
    if area and nsn.startswith(area):
        return "local"
    return "long-distance"


def _clean(number: str) -> str:
    """`number` without separators, checked: digits, `*` and `#`, or `+` then digits."""

    def fail(problem: str) -> NumberError:
        return NumberError(T("number {number!r}: {problem}", number=number, problem=problem))

    out: list[str] = []
    for at, char in enumerate(number):
        if char in _SEPARATORS or char.isspace():
            continue
        if char == "+":
            if out:
                raise fail(T("'+' only at the start, found at {at}", at=at))
        elif char not in _DIGITS and (char not in "*#" or out[:1] == ["+"]):
            raise fail(T("unexpected character {char!r} at {at}", char=char, at=at))
        out.append(char)
    if not out:
        raise fail(T("empty"))
    if out == ["+"]:
        raise fail(T("no digits after '+'"))
    if len(out) > SHORT_NUMBER_LENGTH and ("*" in out or "#" in out):
        raise fail(
            T("'*' and '#' only in short codes ({length} or fewer)", length=SHORT_NUMBER_LENGTH)
        )
    return "".join(out)


def _area(area_code: str, plan: NumberingPlan) -> str:
    """`area_code` as the start of an NSN: digits, without a leading trunk prefix 0."""
    area = "".join(c for c in area_code if c not in _SEPARATORS and not c.isspace())
    if plan.trunk_prefix == "0" and area.startswith("0"):
        area = area[1:]
    if any(c not in _DIGITS for c in area):
        raise NumberError(T("area code {area_code!r}: digits only", area_code=area_code))
    if area_code and not area:
        raise NumberError(T("area code {area_code!r}: no digits", area_code=area_code))
    if area and area[0] not in plan.nsn_first:
        raise NumberError(
            T(
                "area code {area_code!r}: no national number starts with {digit}",
                area_code=area_code,
                digit=area[0],
            )
        )
    return area


def _is_short(digits: str, plan: NumberingPlan) -> bool:
    return not digits.startswith("+") and (
        digits in plan.emergency or len(digits) <= SHORT_NUMBER_LENGTH
    )


MAX_E164_DIGITS = 15
"""ITU-T E.164 §6: an international number has at most 15 digits."""


def _normalize(digits: str, plan: NumberingPlan, area: str) -> str:
    e164 = _e164(digits, plan, area)
    if e164.startswith("+") and len(e164) - 1 > MAX_E164_DIGITS:
        raise NumberError(
            T(
                "{number}: more than {length} digits, the most E.164 allows",
                number=e164,
                length=MAX_E164_DIGITS,
            )
        )
    return e164


def _e164(digits: str, plan: NumberingPlan, area: str) -> str:
    if digits.startswith("+") or _is_short(digits, plan):
        return digits
    for prefix in sorted(plan.international_prefixes, key=len, reverse=True):
        if digits.startswith(prefix):
            return "+" + digits[len(prefix) :]
    cc, trunk = plan.calling_code, plan.trunk_prefix
    if trunk and digits.startswith(trunk):
        nsn = digits[len(trunk) :]
        if len(nsn) in plan.nsn_lengths and nsn[0] in plan.nsn_first:
            return f"+{cc}{nsn}"
    if len(digits) in plan.bare_lengths and digits[0] in plan.nsn_first:
        return f"+{cc}{digits}"
    if (
        plan.local_dialling
        and area
        and not (trunk and digits.startswith(trunk))
        and len(area) + len(digits) in plan.nsn_lengths
    ):
        return f"+{cc}{area}{digits}"
    return digits


@functools.cache
def _ranges(country: str) -> PatternTable[str]:
    return PatternTable((f"{prefix}!", cls) for prefix, cls in PLANS[country].ranges)


@functools.cache
def _short_premium(country: str) -> PatternTable[bool]:
    return PatternTable((pattern, True) for pattern in PLANS[country].short_premium)


# --- Countries of E.164 numbers ----------------------------------------------------------

# fmt: off
_CALLING_CODES: dict[str, str] = {
    # ITU-T E.164 country codes (the list annexed to ITU-T Operational Bulletin 1162), to
    # ISO 3166 alpha-2 codes, except "UK" for +44 (the office countries' own key). Shared
    # codes are split below: +1 by area code, +7 by the first digit after it.
    "20": "EG", "211": "SS", "212": "MA", "213": "DZ", "216": "TN", "218": "LY", "220": "GM",
    "221": "SN", "222": "MR", "223": "ML", "224": "GN", "225": "CI", "226": "BF", "227": "NE",
    "228": "TG", "229": "BJ", "230": "MU", "231": "LR", "232": "SL", "233": "GH", "234": "NG",
    "235": "TD", "236": "CF", "237": "CM", "238": "CV", "239": "ST", "240": "GQ", "241": "GA",
    "242": "CG", "243": "CD", "244": "AO", "245": "GW", "246": "IO", "247": "AC", "248": "SC",
    "249": "SD", "250": "RW", "251": "ET", "252": "SO", "253": "DJ", "254": "KE", "255": "TZ",
    "256": "UG", "257": "BI", "258": "MZ", "260": "ZM", "261": "MG", "262": "RE", "263": "ZW",
    "264": "NA", "265": "MW", "266": "LS", "267": "BW", "268": "SZ", "269": "KM", "27": "ZA",
    "290": "SH", "291": "ER", "297": "AW", "298": "FO", "299": "GL",
    "30": "GR", "31": "NL", "32": "BE", "33": "FR", "34": "ES", "350": "GI", "351": "PT",
    "352": "LU", "353": "IE", "354": "IS", "355": "AL", "356": "MT", "357": "CY", "358": "FI",
    "359": "BG", "36": "HU", "370": "LT", "371": "LV", "372": "EE", "373": "MD", "374": "AM",
    "375": "BY", "376": "AD", "377": "MC", "378": "SM", "379": "VA", "380": "UA", "381": "RS",
    "382": "ME", "383": "XK", "385": "HR", "386": "SI", "387": "BA", "389": "MK", "39": "IT",
    "40": "RO", "41": "CH", "420": "CZ", "421": "SK", "423": "LI", "43": "AT", "44": "UK",
    "45": "DK", "46": "SE", "47": "NO", "48": "PL", "49": "DE",
    "500": "FK", "501": "BZ", "502": "GT", "503": "SV", "504": "HN", "505": "NI", "506": "CR",
    "507": "PA", "508": "PM", "509": "HT", "51": "PE", "52": "MX", "53": "CU", "54": "AR",
    "55": "BR", "56": "CL", "57": "CO", "58": "VE", "590": "GP", "591": "BO", "592": "GY",
    "593": "EC", "594": "GF", "595": "PY", "596": "MQ", "597": "SR", "598": "UY", "599": "CW",
    "60": "MY", "61": "AU", "62": "ID", "63": "PH", "64": "NZ", "65": "SG", "66": "TH",
    "670": "TL", "672": "NF", "673": "BN", "674": "NR", "675": "PG", "676": "TO", "677": "SB",
    "678": "VU", "679": "FJ", "680": "PW", "681": "WF", "682": "CK", "683": "NU", "685": "WS",
    "686": "KI", "687": "NC", "688": "TV", "689": "PF", "690": "TK", "691": "FM", "692": "MH",
    "81": "JP", "82": "KR", "84": "VN", "850": "KP", "852": "HK", "853": "MO", "855": "KH",
    "856": "LA", "86": "CN", "880": "BD", "886": "TW",
    "90": "TR", "91": "IN", "92": "PK", "93": "AF", "94": "LK", "95": "MM", "960": "MV",
    "961": "LB", "962": "JO", "963": "SY", "964": "IQ", "965": "KW", "966": "SA", "967": "YE",
    "968": "OM", "970": "PS", "971": "AE", "972": "IL", "973": "BH", "974": "QA", "975": "BT",
    "976": "MN", "977": "NP", "98": "IR", "992": "TJ", "993": "TM", "994": "AZ", "995": "GE",
    "996": "KG", "998": "UZ",
}
_NON_GEOGRAPHIC = ("800", "808", "870", "878", "881", "882", "883", "888", "979", "991")
"""Codes of no country (freephone, satellite phones, international networks, premium rate):
the favourite destinations of toll fraud. Such a number's "country" is its code, `+881`."""
_NANP_COUNTRIES: dict[str, str] = {
    "242": "BS", "246": "BB", "264": "AI", "268": "AG", "284": "VG", "345": "KY", "441": "BM",
    "473": "GD", "649": "TC", "658": "JM", "664": "MS", "721": "SX", "758": "LC", "767": "DM",
    "784": "VC", "809": "DO", "829": "DO", "849": "DO", "868": "TT", "869": "KN", "876": "JM",
    **dict.fromkeys((
        "204", "226", "236", "249", "250", "263", "289", "306", "343", "354", "365", "367",
        "368", "382", "403", "416", "418", "428", "431", "437", "438", "450", "468", "474",
        "506", "514", "519", "548", "579", "581", "584", "587", "604", "613", "639", "647",
        "672", "683", "705", "709", "742", "753", "778", "780", "782", "807", "819", "825",
        "867", "873", "879", "902", "905",
    ), "CA"),
}
"""Area codes of +1 outside the United States (the Caribbean, Bermuda and Canada); the US
territories count as the US."""
# fmt: on


def country_of(e164: str) -> str:
    """The country an E.164 number (`+...`) belongs to: ISO 3166 alpha-2 (`UK` for +44, as
    the office countries are keyed), `+881` and the like for codes of no country, and `+` with
    the first three digits for a code not assigned. Raises NumberError for other text."""
    if not e164.startswith("+") or not e164[1:].isdigit() or len(e164) < 4:
        raise NumberError(T("{number!r} is not an E.164 number (+ and digits)", number=e164))
    digits = e164[1:]
    if digits.startswith("1"):
        return _NANP_COUNTRIES.get(digits[1:4], "US")
    if digits.startswith("7"):
        return "KZ" if digits[1:2] in ("6", "7") else "RU"
    for length in (1, 2, 3):
        code = digits[:length]
        if code in _CALLING_CODES:
            return _CALLING_CODES[code]
        if code in _NON_GEOGRAPHIC:
            return "+" + code
    return "+" + digits[:3]
