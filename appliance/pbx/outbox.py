"""The core's side of the event outbox (`appliance.store.events`): features call `emit`, and
the event is written by the store's writer thread, in order with the call records, so the
event loop never waits for SQLite."""

from __future__ import annotations

import logging
from typing import Any

from appliance.store import events
from appliance.store.db import Writer

logger = logging.getLogger(__name__)


class Outbox:
    def __init__(self, writer: Writer | None) -> None:
        self.writer = writer
        """None: events are only logged (a dial plan without a store, in tests and benches)."""
        self.emitted = 0

    def emit(self, kind: str, subject: str = "", **data: Any) -> events.Event:
        """Queue one event for the store; returns it (already timed)."""
        event = events.Event(kind, subject, data)
        self.emitted += 1
        logger.info("event %s %s %s", kind, subject, data)
        if self.writer is not None:
            self.writer.submit(f"event {kind} {subject}", lambda db: events.write(db, [event]))
        return event
