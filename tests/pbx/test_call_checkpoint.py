"""The core's checkpoint of live calls (`appliance.pbx.checkpoint`), in process: a ringing call
is saved, saved again once answered, its row goes with its CDR; an idle box writes nothing; a
core started over rows a crash left closes them `interrupted` before it serves."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from appliance.store import cdrs, live_calls
from appliance.store.database import Database
from appliance.store.db import open_db
from tests.pbx.harness import Box, phone_sdp, run


def rows(box: Box) -> dict[str, tuple[float, dict[str, object]]]:
    """The checkpoint table: id -> (checkpoint time, the record saved)."""
    found = box.core.db.execute("SELECT id, checkpoint_at, record FROM live_calls").fetchall()
    return {call_id: (at, json.loads(record)) for call_id, at, record in found}


async def checkpoint(box: Box) -> None:
    """A checkpoint now, and wait until the writer thread has committed it."""
    box.core.call_checkpoint.tick()
    await asyncio.to_thread(box.core.writer.drain)


def test_live_calls_are_saved_as_they_change_and_go_with_their_cdr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        await checkpoint(box)
        assert rows(box) == {}  # nothing live: nothing written
        caller, phone = await box.ua("101"), await box.phone("102")
        out = caller.call("102", phone_sdp(4000))
        _invite, txn = await phone.next("INVITE")
        phone.respond(txn, 180)
        await out.status(180)
        before = time.time()
        await checkpoint(box)
        call = box.only_call()
        ((at, ringing),) = [rows(box)[call.id]]
        assert before <= at <= time.time()
        assert (ringing["caller"], ringing["dialled"], ringing["answered_at"]) == (
            "101", "102", None)  # fmt: skip

        phone.respond(txn, 200, phone_sdp(5000, session="5151"))
        await phone.ack()
        a_dialog = out.ack(await out.status(200))
        await caller.barrier()
        await checkpoint(box)
        (later, answered) = rows(box)[call.id]
        assert later > at and answered["answered_at"] == call.answered_at
        assert (answered["answered_by"], answered["codec_caller"]) == ("102", "PCMU")

        bye = caller.request(a_dialog, "BYE")
        assert (await caller.final(bye)).status == 200
        record = await box.cdr()
        await asyncio.to_thread(box.core.writer.drain)
        assert rows(box) == {}  # the CDR's transaction took the row away
        stored = cdrs.get(box.core.db, record.id)
        assert stored is not None and stored["disposition"] == "answered"
        await checkpoint(box)  # the ended call is no longer saved
        assert rows(box) == {}

    run(tmp_path, monkeypatch, body)


def test_a_core_started_over_a_crashed_ones_rows_closes_them_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "var"
    db: Database = open_db(data)
    left = cdrs.Cdr(
        id="c0ffee", started_at=1000.0, ended_at=0.0, caller="101", dialled="102",
        disposition="interrupted", hangup_side="system", hangup_cause="",
        answered_at=1001.0, answered_by="102",
    )  # fmt: skip
    live_calls.save(db, 1030.0, [left], [])
    db.conn.close()

    async def body(box: Box) -> None:
        assert [r.id for r in box.core.recovered] == ["c0ffee"]
        assert rows(box) == {}
        stored = cdrs.get(box.core.db, "c0ffee")
        assert stored is not None
        assert (stored["disposition"], stored["duration"], stored["billsec"]) == (
            "interrupted", 30.0, 29.0)  # fmt: skip

    run(tmp_path, monkeypatch, body)
