"""Toll-fraud limits, checked where an outbound call is routed (`destinations/route.py`),
beyond the route permissions the dial plan checks:

- concurrent outbound calls per extension (its own value, else `tollfraud.max_outbound_calls`);
- concurrent calls per trunk (the trunk's `max_calls`, `TrunkLine.has_room`);
- a daily ceiling of international minutes for the office
  (`tollfraud.international_minutes_per_day`, the day in `office.timezone`): the talk time of
  today's international calls (from the CDRs at start, then as calls end) plus that of the
  live ones. When it is reached, new international calls are refused and the live ones are
  cut, at the ceiling: a stolen password must not run up a bill while the call lasts.
  `calls.max_duration` is the other bound, per call;
- an event (and the dashboard's alert) on the first call to a country never called from the
  box before (`numbering.country_of`; the office's own country is known from the start).

A refusal is a 403 with the reason in its phrase, written in the CDR's cause (as a permission
refusal is), and an event in the outbox (`tollfraud.limit`, at most one a minute per limit and
subject, with how many were refused in between). Emergency calls are never limited.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance import numbering
from appliance.pbx.outbox import Outbox
from appliance.store import cdrs, events, settings
from appliance.store.database import Database

if TYPE_CHECKING:
    from appliance.pbx.directory import Directory
    from appliance.pbx.legs import Call
    from appliance.pbx.trunks import TrunkLine

logger = logging.getLogger(__name__)

EVENT_EVERY = 60.0
"""Refusals for one limit and subject make at most one event this often (seconds)."""
CHECK_EVERY = 1.0
"""How often the international ceiling is looked at while no call is near it (seconds)."""
CUT_CAUSE = "daily international minutes reached"


@dataclass(frozen=True, slots=True)
class Limits:
    """The office's toll-fraud settings, read with the rest of the core's configuration."""

    max_outbound_calls: int = 0
    """Per extension, when the extension has no value of its own; 0: no limit."""
    international_minutes: int = 0
    """Per day, for the whole office; 0: no limit."""
    timezone: str = "UTC"
    country: str = "US"
    area_code: str = ""
    max_duration: float = 10800.0

    @classmethod
    def read(cls, db: Database) -> Limits:
        return cls(
            settings.get_int(db, "tollfraud.max_outbound_calls"),
            settings.get_int(db, "tollfraud.international_minutes_per_day"),
            settings.get_str(db, "office.timezone"),
            settings.get_str(db, "office.country"),
            settings.get_str(db, "office.area_code"),
            settings.get_int(db, "calls.max_duration"),
        )

    def midnight(self, now: float) -> float:
        """The start of the office's day that `now` is in (Unix seconds)."""
        import zoneinfo

        zone = zoneinfo.ZoneInfo(self.timezone)
        day = datetime.datetime.fromtimestamp(now, zone).date()
        return datetime.datetime.combine(day, datetime.time(), zone).timestamp()

    def is_international(self, number: str) -> bool:
        try:
            return numbering.classify(number, self.country, self.area_code) == "international"
        except numbering.NumberError:
            return False


@dataclass(frozen=True, slots=True)
class History:
    """What the store knows when the core starts: today's international talk time (from the
    CDRs) and the countries called so far."""

    midnight: float
    international_seconds: float
    countries: frozenset[str]

    @classmethod
    def read(cls, db: Database, limits: Limits, now: float) -> History:
        midnight = limits.midnight(now)
        seconds = 0.0
        for sent, answered, ended in cdrs.answered_outbound(db, midnight, limits.max_duration):
            if limits.is_international(sent):
                seconds += max(0.0, ended - max(answered, midnight))
        return cls(midnight, seconds, frozenset(events.countries_called(db)))


class Guard:
    """The limits at run time: the live outbound calls it admitted, today's international
    talk time, the countries called."""

    def __init__(self, directory: Directory, outbox: Outbox | None = None) -> None:
        self.directory = directory
        self.outbox = outbox or Outbox(None)
        self.limits = Limits()
        self._outbound: dict[str, Call] = {}
        """Live outbound calls by call id (ended ones are dropped as they are met)."""
        self._international: dict[str, Call] = {}
        self._ended_seconds = 0.0
        """International talk time of the calls that ended today."""
        self._midnight = 0.0
        self._next_midnight = 0.0
        self._countries: set[str] = set()
        self._last_event: dict[tuple[str, str], tuple[float, int]] = {}
        self._timer: asyncio.TimerHandle | None = None

    # -- set-up ------------------------------------------------------------------------------

    def use(self, limits: Limits) -> None:
        """Apply new settings (a reload); a lower ceiling applies at the next check."""
        self.limits = limits
        self._countries.add(limits.country)

    def load(self, history: History) -> None:
        self._midnight = history.midnight
        self._next_midnight = self.limits.midnight(history.midnight + 90_000.0)
        self._ended_seconds = history.international_seconds
        self._countries = set(history.countries) | {self.limits.country}

    def start(self) -> None:
        self._schedule(CHECK_EVERY)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- admission -----------------------------------------------------------------------------

    def admit(self, call: Call, number: str, number_class: str) -> str | None:
        """Whether an extension's outbound call to `number` (E.164 as sent, of `number_class`)
        may go out: None, and the call is counted; else the 403's reason phrase."""
        if number_class == "emergency" or call.origin.kind != "extension":
            return None
        caller = call.a.number
        limit = self.extension_limit(caller)
        if limit:
            live = self._live(self._outbound)
            up = sum(1 for c in live if c.a.number == caller)
            if up >= limit:
                self._refused("extension_calls", caller, number=number, value=limit)
                return f"Forbidden ({caller} has {up} outbound calls up, its limit)"
        international = number_class == "international"
        if international and self.limits.international_minutes:
            used = self.international_seconds()
            ceiling = 60.0 * self.limits.international_minutes
            if used >= ceiling:
                self._refused("international_minutes", caller, number=number,
                              value=self.limits.international_minutes)  # fmt: skip
                return (f"Forbidden (the daily limit of {self.limits.international_minutes}"
                        " international minutes is reached)")  # fmt: skip
        self._outbound[call.id] = call
        if international:
            self._international[call.id] = call
        self._first_call_to(call, number)
        return None

    def trunk_full(self, call: Call, lines: list[TrunkLine]) -> str:
        """Every trunk of a route is at its call limit: the 403's reason phrase (the event)."""
        for line in lines:
            self._refused("trunk_calls", line.name, number=call.sent or "",
                          value=line.config.max_calls)  # fmt: skip
        names = ", ".join(f"{line.name} ({line.config.max_calls})" for line in lines)
        return f"Forbidden (trunk at its limit of calls: {names})"

    def extension_limit(self, number: str) -> int:
        entry = self.directory.extension(number)
        own = entry.max_outbound_calls if entry is not None else None
        return self.limits.max_outbound_calls if own is None else own

    # -- the international ceiling ---------------------------------------------------------------

    def ended(self, record: cdrs.Cdr) -> None:
        """A call ended (its CDR is being written): its international talk time counts."""
        self._outbound.pop(record.id, None)
        call = self._international.pop(record.id, None)
        if call is None or record.answered_at is None:
            return
        self._roll(time.time())
        self._ended_seconds += max(0.0, record.ended_at - max(record.answered_at,
                                                              self._midnight))  # fmt: skip

    def international_seconds(self, now: float | None = None) -> float:
        """Today's international talk time: of the calls that ended, and of the live ones."""
        now = time.time() if now is None else now
        self._roll(now)
        live = 0.0
        for call in self._live(self._international):
            if call.answered_at is not None:
                live += now - max(call.answered_at, self._midnight)
        return self._ended_seconds + live

    def _roll(self, now: float) -> None:
        """A new day in the office's time zone: the count starts again."""
        if self._midnight <= now < self._next_midnight:
            return
        midnight = self.limits.midnight(now)
        if midnight != self._midnight:
            self._midnight, self._ended_seconds = midnight, 0.0
        # (25 hours on: the next day's midnight, whatever daylight saving does)
        self._next_midnight = self.limits.midnight(midnight + 90_000.0)

    def check(self) -> None:
        """Cut the live international calls once the ceiling is reached; look again when the
        ceiling could be reached next (at most CHECK_EVERY from now)."""
        minutes = self.limits.international_minutes
        delay = CHECK_EVERY
        if minutes:
            now = time.time()
            left = 60.0 * minutes - self.international_seconds(now)
            talking = [c for c in self._live(self._international) if c.answered_at is not None]
            if left <= 0 and talking:
                for call in talking:
                    logger.warning("call %s cut: %s (%d minutes)", call.id, CUT_CAUSE, minutes)
                    self._international.pop(call.id, None)
                    self._ended_seconds += now - max(call.answered_at or now, self._midnight)
                    self.outbox.emit(
                        "tollfraud.limit", call.a.number, limit="international_minutes",
                        action="cut", value=minutes, number=call.sent or "", call=call.id,
                    )  # fmt: skip
                    call.engine.hangup_all(call, "system", CUT_CAUSE)
            elif talking:
                delay = min(CHECK_EVERY, max(0.02, left / len(talking)))
        self._schedule(delay)

    def _schedule(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self.check)

    # -- events ----------------------------------------------------------------------------------

    def _first_call_to(self, call: Call, number: str) -> None:
        try:
            country = numbering.country_of(number)
        except numbering.NumberError:
            return  # not E.164: a national number of the office's own country
        if country in self._countries:
            return
        self._countries.add(country)
        caller, now = call.a.number, time.time()
        self.outbox.emit("tollfraud.new_country", country, number=number, caller=caller,
                         call=call.id)  # fmt: skip
        writer = self.outbox.writer

        def remember(db: Database) -> None:
            events.add_country(db, country, number, caller, now)

        if writer is not None:
            writer.submit(f"country {country}", remember)

    def _refused(self, limit: str, subject: str, **data: object) -> None:
        """An event for a refusal, at most one per EVENT_EVERY per limit and subject."""
        now = time.monotonic()
        key = (limit, subject)
        last, skipped = self._last_event.get(key, (None, 0))
        if last is not None and now - last < EVENT_EVERY:
            self._last_event[key] = (last, skipped + 1)
            return
        if len(self._last_event) > 10_000:
            self._last_event.clear()  # bounded memory, whatever is refused
        self._last_event[key] = (now, 0)
        self.outbox.emit("tollfraud.limit", subject, limit=limit, action="refused",
                         refused_before=skipped, **data)  # fmt: skip

    @staticmethod
    def _live(calls: dict[str, Call]) -> list[Call]:
        for key in [k for k, c in calls.items() if c.ended]:
            del calls[key]
        return list(calls.values())
