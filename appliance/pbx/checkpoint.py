"""The core's periodic checkpoint of live calls (`appliance.store.live_calls`): what a crash
of pbx-core would otherwise lose of the calls it carried.

Every `INTERVAL` seconds, while calls are up, the loop builds each call's CDR as it stands
(a few microseconds a call) and hands the writer thread one transaction: rows for the calls
new or changed since the last checkpoint, none for the ended ones, and the checkpoint's time
on all. An idle box writes nothing; a box with calls whose state does not change writes one
small UPDATE a checkpoint. The next start closes what is left as `interrupted`, ended at the
last checkpoint, so a crash shortens a call's recorded duration by at most `INTERVAL`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from appliance.store import cdrs, live_calls
from appliance.store.db import Writer

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine

INTERVAL = 2.0
"""Seconds between checkpoints: the most of a call's duration a crash can cost its CDR. At 2 s
the writes are one small transaction (an fsync) every 2 s while calls are up."""


class CallCheckpoint:
    def __init__(self, calls: CallEngine, writer: Writer, interval: float = INTERVAL) -> None:
        self.calls = calls
        self.writer = writer
        self.interval = interval
        self._saved: dict[str, cdrs.Cdr] = {}
        """What the last checkpoint wrote of each call, to write only what changed."""

    def tick(self) -> None:
        """Checkpoint the live calls now (queued to the writer thread)."""
        now = time.time()
        cause = live_calls.INTERRUPTED_CAUSE
        current = {
            call_id: call.cdr("interrupted", "system", cause, 0.0, stats=False)
            for call_id, call in self.calls.calls.items()
            if not call.ended
        }
        if not current and not self._saved:
            return
        changed = [r for call_id, r in current.items() if self._saved.get(call_id) != r]
        gone = [call_id for call_id in self._saved if call_id not in current]
        self._saved = current
        self.writer.submit(
            f"checkpoint of {len(current)} live calls",
            lambda db: live_calls.save(db, now, changed, gone),
        )

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.tick()
