"""A reload of the running core: read off the event loop, applied whole between two messages,
calls in progress untouched."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from appliance.pbx import core as core_module
from appliance.store import dids, extensions
from appliance.store.db import open_db
from tests.pbx.harness import PASSWORD, Box, connect, run


def test_a_reload_reads_in_a_thread_and_changes_routing_while_a_call_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers: list[int] = []
    read_from = core_module.Config.read_from.__func__  # type: ignore[attr-defined]

    def recorded(cls: type[core_module.Config], data_dir: Path) -> core_module.Config:
        readers.append(threading.get_ident())
        return read_from(cls, data_dir)  # type: ignore[no-any-return]

    monkeypatch.setattr(core_module.Config, "read_from", classmethod(recorded))

    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        leaving = await box.phone("103")
        await connect(box, caller, phone)
        db = open_db(box.core.options.data_dir, migrate_schema=False)
        extensions.add(db, "104", "Ext 104", PASSWORD)
        extensions.remove(db, "103")
        dids.add(db, "+74951234567", "extension:104", label="Moscow")
        db.conn.close()
        answer = await box.core.reload({})
        assert answer["reloaded"] is True and answer["read_ms"] >= 0 <= answer["apply_ms"]
        assert readers and threading.get_ident() not in readers  # read off the loop's thread
        assert box.core.directory.extension("104") is not None
        assert box.core.directory.did("+74951234567") is not None
        assert box.core.directory.extension("103") is None
        assert box.core.registrar.bindings(leaving.number) == []  # deleted with its extension
        assert box.only_call() is not None  # the call in progress goes on
        # The new extension registers with the credentials the reload brought.
        await box.phone("104")
        assert len(box.core.registrar.bindings("104")) == 1

    run(tmp_path, monkeypatch, body)
