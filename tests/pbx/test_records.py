"""What the core records of call attempts, and how long it keeps it: an INVITE that never
authenticated is counted by the gate, not written as a CDR (a scanner must not fill the SD
card), while an authenticated caller's failed call keeps its record; records past the
retention settings are pruned at start-up, periodically and when the settings change, on the
store's writer thread in batches."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance.pbx import core as core_module
from appliance.pbx.core import Core
from appliance.sip.message import Response
from appliance.store import cdrs, settings
from appliance.store.db import open_db
from tests.pbx.harness import WAIT, Box, phone_sdp, run

DAY = cdrs.DAY


async def final(box: Box, caller_number: str, headers: list[tuple[str, str]]) -> Response:
    """An INVITE sent as is (no digest answered), and the box's final response to it."""
    ua = await box.ua(caller_number)
    request = ua.invite_request("102", phone_sdp(4000), headers)
    return await ua.final(ua.ep.request(request, box.dest))


def test_invites_that_never_authenticate_are_counted_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        # A wrong password for an extension: 403, counted as such.
        wrong = caller.call("102", phone_sdp(4000), password="Wr0ngPassw0rd99")
        assert (await wrong.final()).status == 403
        # Credentials of no extension at all (a stranger, or a provider's account): 403 alike.
        stranger = await box.ua("5555")
        guess = stranger.call("102", phone_sdp(4000), password="Guess12345678")
        assert (await guess.final()).status == 403
        # Credentials that cannot even be checked: 400.
        broken = await final(box, "5556", [("Proxy-Authorization", 'Digest username="5556"')])
        assert broken.status == 400, broken.reason
        # No credentials: the challenge, which every phone's call starts with, is no refusal.
        assert (await final(box, "5557", [])).status == 407
        assert phone.received("INVITE") == []
        counters = box.counters()
        assert (counters["refused.wrong_password"], counters["refused.unauthenticated"]) == (1, 2)
        status = box.core.status({})
        assert status["refused"] == 3
        assert status["refused_by"] == {
            "wrong_password": 1, "unauthenticated": 2, "unknown_number": 0,
        }  # fmt: skip

        # An authenticated caller's failed calls are recorded as ever: the first records the
        # engine writes are these, so none was written for the attempts above.
        assert (await caller.call("999", phone_sdp(4000)).final()).status == 404
        cdr = await box.cdr()
        assert (cdr.caller, cdr.dialled, cdr.disposition) == ("101", "999", "failed")
        assert cdr.hangup_cause == "404 Not Found (no extension 999)"
        busy = caller.call("102", phone_sdp(4000))
        _, txn = await phone.next("INVITE")
        phone.respond(txn, 486)
        assert (await busy.final()).status == 486
        assert (await box.cdr()).disposition == "busy"
        assert box.counters()["refused.wrong_password"] == 1

    data = run(tmp_path, monkeypatch, body)
    db = open_db(data)
    try:
        rows = cdrs.recent(db)
    finally:
        db.conn.close()
    assert sorted(r["hangup_cause"] for r in rows) == [
        "404 Not Found (no extension 999)", "486 Busy Here",
    ]  # fmt: skip


def old_and_new(data: Path, now: float, old: int, days: str = "30") -> None:
    """A data directory whose records are `old` ones of 40 days ago, one of 10 and one of
    now, with `cdrs.retention_days` = `days`."""
    db = open_db(data)
    settings.set_value(db, "cdrs.retention_days", days)
    rows = [record(f"old{i}", now - 40 * DAY - i) for i in range(old)]
    cdrs.write(db, [*rows, record("recent", now - 10 * DAY), record("new", now)])
    db.conn.close()


def record(call_id: str, started: float) -> cdrs.Cdr:
    return cdrs.Cdr(
        id=call_id, started_at=started, ended_at=started + 30, caller="101", dialled="102",
        disposition="answered", hangup_side="caller", hangup_cause="BYE",
    )  # fmt: skip


def kept(data: Path) -> list[str]:
    db = open_db(data)
    try:
        return [r["id"] for r in cdrs.recent(db)]
    finally:
        db.conn.close()


def watch_prunings(monkeypatch: pytest.MonkeyPatch) -> asyncio.Queue[asyncio.Future[int]]:
    """Each pruning the core starts, as the future of how many records it deleted."""
    prunings: asyncio.Queue[asyncio.Future[int]] = asyncio.Queue()
    prune = Core.prune_cdrs

    def watched(core: Core) -> asyncio.Future[int]:
        done = prune(core)
        prunings.put_nowait(done)
        return done

    monkeypatch.setattr(Core, "prune_cdrs", watched)
    return prunings


async def next_pruning(prunings: asyncio.Queue[asyncio.Future[int]]) -> int:
    return await asyncio.wait_for(await asyncio.wait_for(prunings.get(), WAIT), WAIT)


def test_the_core_prunes_old_records_at_start_and_then_every_interval_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_and_new(tmp_path / "var", time.time(), old=7)
    monkeypatch.setattr(cdrs, "PRUNE_BATCH", 2)  # 7 old records: four batches
    monkeypatch.setattr(core_module, "CDR_PRUNE_INTERVAL", 0.05)
    prunings = watch_prunings(monkeypatch)

    async def body(box: Box) -> None:
        assert await next_pruning(prunings) == 7  # at start-up
        assert await next_pruning(prunings) == 0  # an interval later: nothing more is old

    assert kept(run(tmp_path, monkeypatch, body)) == ["new", "recent"]


def test_a_reload_that_shortens_the_retention_prunes_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_and_new(tmp_path / "var", time.time(), old=1)
    prunings = watch_prunings(monkeypatch)

    async def body(box: Box) -> None:
        assert await next_pruning(prunings) == 1  # at start-up; the next is an hour away
        db = open_db(box.core.options.data_dir, migrate_schema=False)
        settings.set_value(db, "cdrs.retention_days", "5")
        db.conn.close()
        await box.core.reload({})
        assert box.core.cdr_retention == cdrs.Retention(days=5, max_rows=1_000_000)
        assert await next_pruning(prunings) == 1  # the record of 10 days ago

    assert kept(run(tmp_path, monkeypatch, body)) == ["new"]


def test_retention_zero_keeps_every_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_and_new(tmp_path / "var", time.time(), old=3, days="0")
    prunings = watch_prunings(monkeypatch)

    async def body(box: Box) -> None:
        assert await next_pruning(prunings) == 0

    assert len(kept(run(tmp_path, monkeypatch, body))) == 5
