"""Toll-fraud limits on a real core (the in-process harness): concurrent outbound calls per
extension and per trunk, the daily ceiling of international minutes (refusal, and a live call
cut at it), the first call to a new country, and the outbox those write to (off the loop,
pruned).

The provider is a scripted user agent behind an IP trunk; its INVITEs are what went out."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.sip.dialog import Dialog
from appliance.store import cdrs, events, extensions, routes, settings, trunks
from appliance.store.database import Database
from appliance.store.db import open_db
from tests.pbx.harness import Box, Outgoing, Ua, phone_sdp, run

NATIONAL = "2125550101"
"""A long-distance number in the default office country (US): 101 may call it."""
UK = "011442079460958"
"""International: +44 20 7946 0958."""
DE = "01149301234567"


async def provider(box: Box, max_calls: int = 0) -> Ua:
    """A provider reached through the IP trunk `prov` and the route `out` (national and
    international numbers); 101 may call both."""
    prov = await box.ua("prov")
    db = box.core.db
    # An IP trunk is matched by its networks when it has any: 127.0.0.1 (every user agent
    # here) must not be taken for the provider calling in.
    trunks.add(db, "prov", kind="ip", server=f"127.0.0.1:{prov.port}", options_interval=0,
               match_cidrs="192.0.2.0/24", max_calls=max_calls)  # fmt: skip
    routes.add(db, "out", ["NXXNXXXXXX", "011X."], ["prov"])
    extensions.set_permissions(db, "101", ["local", "long-distance", "international"])
    extensions.set_permissions(db, "102", ["local", "long-distance", "international"])
    await box.core.reload({})
    return prov


async def call_out(box: Box, caller: Ua, prov: Ua, number: str) -> tuple[Outgoing, Dialog]:
    """`caller` calls `number`; the provider answers; both 2xx ACKed. Returns the call and
    the caller's dialog."""
    out = caller.call(number, phone_sdp(4000))
    _invite, txn = await prov.next("INVITE")
    prov.respond(txn, 200, phone_sdp(5000, session="5151"))
    await prov.ack()
    ok = await out.status(200)
    dialog = out.ack(ok)
    await caller.barrier()
    return out, dialog


async def hang_up(caller: Ua, prov: Ua, dialog: Dialog) -> None:
    assert (await caller.final(caller.request(dialog, "BYE"))).status == 200
    await prov.next("BYE")


async def refused(out: Outgoing) -> str:
    final = await out.final()
    assert final.status == 403, f"{final.status} {final.reason}"
    return final.reason


def stored_events(data: Path, kind: str) -> list[events.StoredEvent]:
    db = open_db(data)
    try:
        return list(reversed(events.recent(db, [kind])))
    finally:
        db.conn.close()


def test_an_extension_has_at_most_its_outbound_calls_up_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test(box: Box) -> None:
        prov = await provider(box)
        extensions.set_max_outbound_calls(box.core.db, "101", 2)
        await box.core.reload({})
        caller = await box.ua("101")
        _first, first = await call_out(box, caller, prov, NATIONAL)
        await call_out(box, caller, prov, "2125550102")
        while box.records.qsize():
            box.records.get_nowait()
        reason = await refused(caller.call("2125550103", phone_sdp(4000)))
        assert reason == "Forbidden (101 has 2 outbound calls up, its limit)"
        record = await box.cdr()
        assert (record.disposition, record.hangup_cause, record.direction) == (
            "failed", f"403 {reason}", "outbound"
        )  # fmt: skip
        assert prov.received("INVITE") == []  # the provider never saw it
        other = await box.ua("102")  # the office default (2) is per extension
        await call_out(box, other, prov, "2125550104")
        await hang_up(caller, prov, first)
        await call_out(box, caller, prov, "2125550105")  # one ended: room again

    data = run(tmp_path, monkeypatch, test)
    (event,) = stored_events(data, "tollfraud.limit")
    assert (event.subject, event.data["limit"], event.data["value"]) == (
        "101",
        "extension_calls",
        2,
    )
    assert event.data["number"] == "+12125550103"


def test_the_default_limit_and_no_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def test(box: Box) -> None:
        prov = await provider(box)
        settings.set_value(box.core.db, "tollfraud.max_outbound_calls", "1")
        extensions.set_max_outbound_calls(box.core.db, "102", 0)  # its own: no limit
        await box.core.reload({})
        caller, free = await box.ua("101"), await box.ua("102")
        await call_out(box, caller, prov, NATIONAL)
        assert "its limit" in await refused(caller.call("2125550102", phone_sdp(4000)))
        for n in range(3):
            await call_out(box, free, prov, f"212555011{n}")

    run(tmp_path, monkeypatch, test)


def test_a_trunk_takes_at_most_its_max_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test(box: Box) -> None:
        prov = await provider(box, max_calls=1)
        caller, other = await box.ua("101"), await box.ua("102")
        _out, first = await call_out(box, caller, prov, NATIONAL)
        reason = await refused(other.call("2125550102", phone_sdp(4000)))
        assert reason == "Forbidden (trunk at its limit of calls: prov (1))"
        assert prov.received("INVITE") == []
        await hang_up(caller, prov, first)
        await call_out(box, other, prov, "2125550103")

    data = run(tmp_path, monkeypatch, test)
    (event,) = stored_events(data, "tollfraud.limit")
    assert (event.subject, event.data["limit"], event.data["value"]) == ("prov", "trunk_calls", 1)


def _spent_today(seconds: float) -> Callable[[Database], None]:
    """A `prepare` that leaves a CDR of an international call of `seconds` that ended now, and
    sets the ceiling at one minute a day."""

    def prepare(db: Database) -> None:
        settings.set_value(db, "tollfraud.international_minutes_per_day", "1")
        now = time.time()
        cdrs.write(db, [cdrs.Cdr(
            id="earlier", started_at=now - seconds - 5, answered_at=now - seconds, ended_at=now,
            caller="101", dialled="011442079460000", disposition="answered",
            hangup_side="caller", hangup_cause="BYE", direction="outbound", trunk="prov",
            sent="+442079460000",
        )])  # fmt: skip

    return prepare


def test_a_live_international_call_is_cut_at_the_daily_ceiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """57 s were spent today (a CDR): a new international call has 3 s left and is cut then;
    the next one is refused, while national calls go on."""
    cut_after: list[float] = []

    async def test(box: Box) -> None:
        prov = await provider(box)
        caller = await box.ua("101")
        started = time.monotonic()
        await call_out(box, caller, prov, UK)
        await prov.next("BYE", timeout=10.0)
        await caller.next("BYE")
        cut_after.append(time.monotonic() - started)
        record = await box.cdr()
        assert (record.disposition, record.hangup_cause) == (
            "answered", "daily international minutes reached"
        )  # fmt: skip
        reason = await refused(caller.call(DE, phone_sdp(4000)))
        assert reason == "Forbidden (the daily limit of 1 international minutes is reached)"
        assert (await box.cdr()).hangup_cause == f"403 {reason}"
        await call_out(box, caller, prov, NATIONAL)  # not international: not limited
        assert prov.received("INVITE") == []

    data = run(tmp_path, monkeypatch, test, prepare=_spent_today(57.0))
    # Cut when the 60 s were reached: 3 s after the answer, give or take the set-up and the
    # loop's timer (checked no later than the remainder, here well under a second).
    print(f"cut {cut_after[0]:.3f} s after the call was placed (3 s were left)")
    assert 2.0 <= cut_after[0] <= 5.0, cut_after
    kinds = [(e.data["action"], e.data["limit"]) for e in stored_events(data, "tollfraud.limit")]
    assert kinds == [("cut", "international_minutes"), ("refused", "international_minutes")]


def test_an_international_call_is_refused_once_the_day_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test(box: Box) -> None:
        prov = await provider(box)
        caller = await box.ua("101")
        assert "international minutes" in await refused(caller.call(UK, phone_sdp(4000)))
        await call_out(box, caller, prov, NATIONAL)

    run(tmp_path, monkeypatch, test, prepare=_spent_today(60.0))


def test_a_call_to_a_new_country_is_an_event_once_written_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    write = events.write

    def spy(db: Database, batch: object) -> None:
        threads.append(threading.current_thread().name)
        write(db, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(events, "write", spy)

    def prepare(db: Database) -> None:  # a country called before this version
        events.add_country(db, "DE", "+49301234567", "103", time.time() - 86400)

    async def test(box: Box) -> None:
        prov = await provider(box)
        caller, other = await box.ua("101"), await box.ua("102")
        for who, number in ((caller, UK), (other, "011442079460959"), (caller, DE),
                            (caller, NATIONAL), (caller, "0112348012345678")):  # fmt: skip
            _out, dialog = await call_out(box, who, prov, number)
            await hang_up(who, prov, dialog)

    data = run(tmp_path, monkeypatch, test, prepare=prepare)
    found = [(e.subject, e.data["number"], e.data["caller"])
             for e in stored_events(data, "tollfraud.new_country")]  # fmt: skip
    assert found == [("UK", "+442079460958", "101"), ("NG", "+2348012345678", "101")]
    assert threads and set(threads) == {"store-writer"}
    db = open_db(data)
    assert events.countries_called(db) == {"DE", "UK", "NG"}


def test_old_events_are_pruned_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def prepare(db: Database) -> None:
        settings.set_value(db, "events.retention_days", "30")
        old, recent = time.time() - 31 * 86400, time.time() - 29 * 86400
        events.write(db, [events.Event("tollfraud.limit", "101", {"n": n}, old) for n in range(7)])
        events.write(db, [events.Event("tollfraud.limit", "102", {}, recent)])

    async def test(box: Box) -> None:
        deadline = time.monotonic() + 5.0
        while True:  # the core prunes on its writer thread at start
            await asyncio.to_thread(box.core.writer.drain)
            left = events.recent(box.core.db)
            if len(left) == 1 or time.monotonic() > deadline:
                break
        assert [e.subject for e in left] == ["102"]

    run(tmp_path, monkeypatch, test, prepare=prepare)
