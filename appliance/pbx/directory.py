"""The one directory of the numbers the box answers, in memory: extensions (name, permission
classes, caller ID) and the office's virtual numbers (DIDs). Loaded from the store at start
and on every reload; the engine, the dial plan and the destinations read only this."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.store import dids, extensions
from appliance.store.database import Database


@dataclass(frozen=True, slots=True)
class ExtensionEntry:
    number: str
    name: str
    permissions: frozenset[str]
    caller_id: str
    max_outbound_calls: int | None = None
    """Its own toll-fraud limit; None: the office's `tollfraud.max_outbound_calls`."""


@dataclass(frozen=True, slots=True)
class DidEntry:
    number: str
    label: str
    trunk: str
    """The trunk it arrives on, or '' for any."""
    destination: str


@dataclass(frozen=True, slots=True)
class Numbers:
    """What the directory holds, read from the store in one go (in any thread)."""

    extensions: dict[str, ExtensionEntry]
    dids: dict[str, DidEntry]

    @classmethod
    def read(cls, db: Database) -> Numbers:
        return cls(
            {e.number: ExtensionEntry(e.number, e.name, frozenset(e.permissions), e.caller_id,
                                      e.max_outbound_calls)
             for e in extensions.list_all(db)},
            {d.number: DidEntry(d.number, d.label, d.trunk, d.destination)
             for d in dids.list_all(db)},
        )  # fmt: skip


class Directory:
    def __init__(self) -> None:
        self._extensions: dict[str, ExtensionEntry] = {}
        self._dids: dict[str, DidEntry] = {}
        self._prefixes: frozenset[str] = frozenset()
        self._longest = 0

    def load(self, db: Database) -> None:
        self.use(Numbers.read(db))

    def use(self, numbers: Numbers) -> None:
        """Serve from `numbers` from now on (a swap: no lookup sees half of it)."""
        prefixes = {n[:i] for n in numbers.extensions for i in range(1, len(n))}
        longest = max((len(n) for n in numbers.extensions), default=0)
        self._extensions, self._dids = numbers.extensions, numbers.dids
        self._prefixes, self._longest = frozenset(prefixes), longest

    def has_extension_prefix(self, digits: str) -> bool:
        """Whether `digits` begin some extension's number (and are not all of it)."""
        return digits in self._prefixes

    def longest_extension(self) -> int:
        """The number of digits of the longest extension number."""
        return self._longest

    def extension(self, number: str) -> ExtensionEntry | None:
        return self._extensions.get(number)

    def name(self, number: str) -> str:
        entry = self._extensions.get(number)
        return entry.name if entry is not None else ""

    def did(self, number: str) -> DidEntry | None:
        return self._dids.get(number)

    def __len__(self) -> int:
        return len(self._extensions) + len(self._dids)
