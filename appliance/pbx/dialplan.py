"""The dial plan: a dialled number, in the context it came from, resolves to a destination.

Contexts today: an extension (its permission classes and caller ID) and a trunk (the DID it
called). Routing is data from the store, held in memory: DIDs and extensions in the directory
(dicts, O(1)), outbound routes in a `PatternTable` (a trie: the lookup walks the number once,
whatever the number of routes). Emergency numbers are matched before any route and go out on
every trunk in turn, whatever the caller's permissions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appliance import numbering
from appliance.pbx.destinations import Destination, kinds
from appliance.pbx.destinations.extension import Extension
from appliance.pbx.destinations.hangup import Hangup
from appliance.pbx.destinations.route import Outbound
from appliance.pbx.directory import Directory
from appliance.pbx.legs import Origin
from appliance.pbx.speech import Prompts
from appliance.pbx.tollfraud import Guard
from appliance.store import menus as menu_store
from appliance.store import routes, settings
from appliance.store import voicemail as voicemail_store
from appliance.store.database import Database

if TYPE_CHECKING:
    from appliance.pbx.legs import Call
    from appliance.pbx.trunks import Trunks
    from appliance.pbx.voicemail import Voicemail

logger = logging.getLogger(__name__)

CLASS_NAMES = {
    "local": "local",
    "mobile": "mobile",
    "long-distance": "long-distance",
    "international": "international",
    "premium": "premium-rate",
}


@dataclass(frozen=True, slots=True)
class RouteEntry:
    name: str
    prepend: str
    trunks: tuple[str, ...]
    caller_id: str


@dataclass(frozen=True, slots=True)
class Rules:
    """The dial plan's data, read from the store in one go (in any thread): the office's
    numbering settings and the routes, their pattern table built."""

    country: str
    area_code: str
    unknown_did: str
    routes: numbering.PatternTable[RouteEntry]
    by_name: dict[str, RouteEntry]
    language: str = "en"
    menus: dict[str, menu_store.Menu] = field(default_factory=dict)
    announcements: dict[str, menu_store.Announcement] = field(default_factory=dict)
    custom_prompts: dict[str, str] = field(default_factory=dict)
    """Custom prompts' files (relative to the data directory), by name."""
    mailboxes: dict[str, voicemail_store.Mailbox] = field(default_factory=dict)
    features: dict[str, str] = field(default_factory=dict)
    """Feature codes a phone dials, each with its destination (`FEATURES`)."""

    @classmethod
    def read(cls, db: Database) -> Rules:
        table: list[tuple[str, RouteEntry]] = []
        by_name = {}
        for r in routes.list_all(db):
            entry = RouteEntry(r.name, r.prepend, tuple(r.trunks), r.caller_id)
            by_name[r.name] = entry
            table += [(pattern, entry) for pattern in r.patterns]
        return cls(
            settings.get_str(db, "office.country"),
            settings.get_str(db, "office.area_code"),
            settings.get_str(db, "dialplan.unknown_did"),
            numbering.PatternTable(table),
            by_name,
            settings.get_str(db, "office.language"),
            {m.name: m for m in menu_store.list_menus(db)},
            {a.name: a for a in menu_store.list_announcements(db)},
            _custom_prompts(db),
            {b.number: b for b in voicemail_store.mailboxes(db)},
            _features(db),
        )


FEATURES = {"features.voicemail": "voicemail-main:own"}
"""The feature codes a phone dials as a call, by their setting (`settings.feature_codes` lists
every code, with those used during a call: `recording.feature_code`), and where each goes.
A code starts with * or #, so it never shadows an extension or a DID (those are digits)."""


def _features(db: Database) -> dict[str, str]:
    codes = settings.feature_codes(db)
    return {codes[key]: destination for key, destination in FEATURES.items() if key in codes}


def _custom_prompts(db: Database) -> dict[str, str]:
    from appliance.store import prompts

    return {p.name: p.path for p in prompts.list_all(db)}


class DialPlan:
    def __init__(self, directory: Directory, trunks: Trunks) -> None:
        self.directory = directory
        self.trunks = trunks
        self.country = "US"
        self.area_code = ""
        self.unknown_did = "hangup:not-found"
        self._routes: numbering.PatternTable[RouteEntry] = numbering.PatternTable([])
        self._by_name: dict[str, RouteEntry] = {}
        self._kinds = kinds()
        self.menus: dict[str, menu_store.Menu] = {}
        self.announcements: dict[str, menu_store.Announcement] = {}
        self.prompts = Prompts()
        """Where the prompts menus name are (the core sets its data directory)."""
        self.tollfraud = Guard(directory)
        """The toll-fraud limits an outbound route checks (`tollfraud.py`)."""
        self.features: dict[str, str] = {}
        """Feature codes dialled as calls (`*97`), with their destinations."""
        self.voicemail: Voicemail | None = None
        """The voicemail feature (the core sets it): mailboxes, messages, MWI."""

    def load(self, db: Database) -> None:
        """Re-read routes and settings (the directory is loaded beside it)."""
        self.use(Rules.read(db))

    def use(self, rules: Rules) -> None:
        """Route by `rules` from now on (between two calls: nothing is awaited here)."""
        self.country, self.area_code = rules.country, rules.area_code
        self.unknown_did = rules.unknown_did
        self._routes, self._by_name = rules.routes, rules.by_name
        self.menus, self.announcements = rules.menus, rules.announcements
        self.prompts.language = rules.language
        self.prompts.custom = rules.custom_prompts
        self.features = rules.features
        if self.voicemail is not None:
            code = next((c for c, d in rules.features.items() if d.startswith("voicemail-")), "")
            self.voicemail.use(rules.mailboxes, rules.language, code)

    def route_named(self, name: str) -> RouteEntry | None:
        return self._by_name.get(name)

    def normalize(self, number: str) -> str:
        try:
            return numbering.normalize(number, self.country, self.area_code)
        except numbering.NumberError:
            return number

    def from_provider(self, number: str) -> str:
        """A number as a provider wrote it, in the office's form: providers often send E.164
        without its plus (74951234567), which national dialling rules would not recognise."""
        normal = self.normalize(number)
        code = numbering.country_code(self.country)
        if normal == number and number.isdigit() and len(number) > 10 and (
            number.startswith(code)
        ):  # fmt: skip
            return "+" + number
        return normal

    def inbound_origin(self, trunk: str, did: str) -> Origin:
        """A trunk's call to `did`: the DID as the office knows it, with its label."""
        number = self.from_provider(did)
        if self.directory.did(number) is None and did.isdigit():
            number = "+" + did  # a foreign provider's E.164 without its plus (12125550100)
        entry = self.directory.did(number)
        label = entry.label if entry is not None and entry.trunk in ("", trunk) else ""
        return Origin("trunk", trunk, number, label)

    def resolve(self, number: str, call: Call) -> Destination:
        """Where a call to `number` goes; `call.origin` says where it comes from."""
        if call.origin.kind == "trunk":
            entry = self.directory.did(number)
            if entry is not None and entry.trunk in ("", call.origin.trunk):
                return self.stored(entry.destination)
            logger.info("call to unknown DID %s on trunk %s", number, call.origin.trunk)
            return self.stored(self.unknown_did)
        feature = self.features.get(number)
        if feature is not None:
            return self.stored(feature)
        if self.directory.extension(number) is not None:
            return Extension(number)
        did = self.directory.did(number) or self.directory.did(self.normalize(number))
        if did is not None:  # the office's own number, dialled from inside
            return self.stored(did.destination)
        return self._outbound(number, call)

    def stored(self, text: str) -> Destination:
        """A destination from its stored text (`extension:101`)."""
        kind, _, target = text.partition(":")
        factory = self._kinds.get(kind)
        if factory is None:
            logger.error("unknown destination %r: refused", text)
            return Hangup(404, "Not Found")
        return factory(target, self)

    def _outbound(self, number: str, call: Call) -> Destination:
        caller = self.directory.extension(call.a.number)
        caller_id = caller.caller_id if caller is not None else ""
        if numbering.is_emergency(number, self.country):
            # An extension of the same number wins above: it was configured so on purpose
            # (101-104 are extensions in many Russian offices); 112 and 9 + the number remain.
            return Outbound(number, self.trunks.names(), caller_id, "emergency")
        found = self._routes.lookup(number)
        if found is None:  # counted per source (a caller that authenticated is never banned)
            self.trunks.gate.refused(
                call.a.media.signalled_from or "", f"call from {call.a.number} to unknown"
                f" number {number}", "unknown_number",
            )  # fmt: skip
            return Hangup(404, f"Not Found (no extension {number})")
        route, stripped, _pattern = found
        dialled = route.prepend + stripped
        if numbering.is_emergency(dialled, self.country):  # 9 + 112: as urgent as 112
            return Outbound(dialled, self.trunks.names(), caller_id, "emergency")
        try:
            sent = numbering.normalize(dialled, self.country, self.area_code)
            kind = numbering.classify(dialled, self.country, self.area_code)
        except numbering.NumberError as exc:
            return Hangup(484, f"Address Incomplete ({exc})")
        allowed = caller.permissions if caller is not None else frozenset()
        if kind not in ("internal", "emergency") and kind not in allowed:
            what = CLASS_NAMES.get(kind, kind)
            return Hangup(403, f"Forbidden ({what} calls are not allowed for {call.a.number})")
        return Outbound(sent, route.trunks, route.caller_id or caller_id, kind)
