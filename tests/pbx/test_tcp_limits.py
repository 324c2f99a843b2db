"""The core's TCP caps come from the settings `sip.tcp_max_per_source` and `sip.tcp_max_total`,
and a reload changes them for new connections while a phone on TCP stays registered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.sip.transport import TcpLimits
from appliance.store import settings
from appliance.store.db import open_db
from tests.pbx.harness import HOST, WAIT, Box, run


async def refused(address: tuple[str, int]) -> bool:
    """Whether a new connection from 127.0.0.1 is reset or closed without a word."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(*address, local_addr=(HOST, 0)), WAIT
        )
    except ConnectionResetError:
        return True  # reset while it was still being set up
    try:
        return await asyncio.wait_for(reader.read(), WAIT) == b""
    except ConnectionResetError:
        return True
    finally:
        writer.close()


def test_the_caps_follow_the_settings_and_a_reload_while_a_tcp_phone_stays_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        tcp = box.core.endpoint.tcp
        assert tcp is not None
        # The settings' defaults are the transport's own.
        assert tcp.limits == TcpLimits() == TcpLimits(max_per_source=100, max_total=500)
        phone = await box.phone("101", "TCP")
        db = open_db(box.core.options.data_dir, migrate_schema=False)
        settings.set_value(db, "sip.tcp_max_per_source", "1")
        settings.set_value(db, "sip.tcp_max_total", "20")
        db.conn.close()
        await box.core.reload({})
        assert tcp.limits == TcpLimits(max_per_source=1, max_total=20)

        # The phone's connection holds the one place of its address: another is refused.
        assert await refused(box.core.endpoint.local)
        await phone.register()  # on its own connection, as before
        counters = box.counters()
        assert (counters["tcp_inbound"], counters["tcp_refused"]) == (1, 1), counters

    run(tmp_path, monkeypatch, body)
