"""Voicemail as a feature of the core: the mailboxes the dial plan knows, where a message's file
goes, and who is told when one arrives or goes (the store, message-waiting indication, e-mail,
the event outbox).

The destinations (`destinations/voicemail.py` leaves a message, `destinations/voicemail_main.py`
plays them back) reach it as `engine.dialplan.voicemail`. Store work runs on the store's writer
thread, in order with everything else the core writes; its result comes back to the loop as a
future (`store`), so the loop never waits for SQLite. The counts of new and saved messages per
mailbox are kept in memory for MWI, read once at start and updated by every change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from appliance.media import prompts
from appliance.pbx.mail import Letter, Mailer
from appliance.store import voicemail as vm_store
from appliance.store.database import Database

if TYPE_CHECKING:
    from appliance.pbx.mwi import MessageWaiting
    from appliance.pbx.outbox import Outbox
    from appliance.store.db import Writer

logger = logging.getLogger(__name__)

R = TypeVar("R")

MIN_SECONDS = 1.0
"""A message shorter than this is dropped (a caller who hung up at the beep)."""
SILENCE_SECONDS = 5.0
"""A message ends after this long without sound."""


class VoicemailUnavailable(RuntimeError):
    """The store did not do what voicemail asked (the writer failed); `str()` says why."""


class Voicemail:
    """The mailboxes and their messages, for the destinations; one per core."""

    def __init__(
        self, data_dir: Path, writer: Writer | None, *, outbox: Outbox | None = None,
        mailer: Mailer | None = None,
    ) -> None:  # fmt: skip
        self.data_dir = data_dir
        self.writer = writer
        self.outbox = outbox
        self.mailer = mailer
        self.mwi: MessageWaiting | None = None
        self.mailboxes: dict[str, vm_store.Mailbox] = {}
        self.language = "en"
        self.feature_code = "*97"
        self.silence_seconds = SILENCE_SECONDS
        self._counts: dict[str, tuple[int, int]] = {}

    # -- configuration --------------------------------------------------------------------

    def use(self, mailboxes: dict[str, vm_store.Mailbox], language: str, feature_code: str) -> None:
        """The mailboxes and settings as the store has them now (a reload)."""
        self.mailboxes = mailboxes
        self.language = language if language in prompts.PACKS else "en"
        self.feature_code = feature_code

    def load_counts(self, db: Database) -> None:
        """Read every mailbox's counts (at start, before the loop serves calls)."""
        for box in vm_store.mailboxes(db):
            self._counts[box.number] = vm_store.counts(db, box.number)

    def mailbox(self, number: str) -> vm_store.Mailbox | None:
        box = self.mailboxes.get(number)
        return box if box is not None and box.enabled else None

    def counts(self, number: str) -> tuple[int, int]:
        """(new, saved) messages in the mailbox, as MWI reports them."""
        return self._counts.get(number, (0, 0))

    def unsolicited(self, number: str) -> bool:
        box = self.mailboxes.get(number)
        return box is not None and box.unsolicited_mwi

    def path(self, relative: str) -> Path:
        return self.data_dir / relative

    # -- the store, off the loop ----------------------------------------------------------

    def store(self, what: str, work: Callable[[Database], R]) -> asyncio.Future[R]:
        """Run `work(db)` on the store's writer thread; its result (or error) in the future."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()

        def settle(result: R | None, error: BaseException | None) -> None:
            if done.done():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)  # type: ignore[arg-type]

        def job(db: Database) -> None:
            try:
                result = work(db)
            except Exception as exc:  # noqa: BLE001 (handed to the awaiting side, which logs it)
                loop.call_soon_threadsafe(settle, None, VoicemailUnavailable(f"{what}: {exc}"))
                return
            loop.call_soon_threadsafe(settle, result, None)

        if self.writer is None:
            done.set_exception(VoicemailUnavailable(f"{what}: no store"))
        else:
            self.writer.submit(f"voicemail: {what}", job)
        return done

    def _counted(self, number: str, counts: tuple[int, int]) -> None:
        before = self._counts.get(number)
        self._counts[number] = counts
        if counts != before and self.mwi is not None:
            self.mwi.changed(number)

    # -- what the destinations ask --------------------------------------------------------

    @staticmethod
    def new_path(number: str, started_at: float) -> str:
        return vm_store.message_path(number, started_at, uuid.uuid4().hex[:8])

    async def deliver(
        self, number: str, relative: str, *, seconds: float, started_at: float,
        caller: str, caller_name: str,
    ) -> vm_store.Message | None:  # fmt: skip
        """A message whose file is complete: its row, MWI, the e-mail and the event. One
        shorter than `MIN_SECONDS` is dropped (its file removed)."""
        file = self.path(relative)
        if seconds < MIN_SECONDS:
            logger.info("voicemail for %s from %s: %.1f s, dropped", number, caller, seconds)
            await asyncio.to_thread(file.unlink, True)
            return None

        def write(db: Database) -> tuple[vm_store.Message, tuple[int, int]]:
            message = vm_store.add_message(
                db, number, path=relative, started_at=started_at, seconds=seconds,
                caller=caller, caller_name=caller_name,
            )  # fmt: skip
            return message, vm_store.counts(db, number)

        message, counts = await self.store(f"message for {number}", write)
        logger.info("voicemail %d for %s from %s: %.1f s", message.id, number, caller, seconds)
        self._counted(number, counts)
        if self.outbox is not None:
            self.outbox.emit("voicemail.message", number, id=message.id, caller=caller,
                             seconds=round(seconds, 1), path=relative)  # fmt: skip
        box = self.mailboxes.get(number)
        if box is not None and box.email and self.mailer is not None:
            self.mailer.submit(Letter(
                to=box.email, mailbox=number, caller=caller_name or caller, seconds=seconds,
                received_at=started_at, language=self.language,
                attachment=file if box.attach else None, feature_code=self.feature_code,
            ))  # fmt: skip
        return message

    async def messages(self, number: str) -> list[vm_store.Message]:
        """The mailbox's messages, new then saved, oldest first."""
        return await self.store(f"messages of {number}", lambda db: vm_store.messages(db, number))

    async def save(self, message: vm_store.Message) -> None:
        """Move a heard message to the saved folder."""
        if message.folder == "saved":
            return
        number = message.mailbox

        def write(db: Database) -> tuple[int, int]:
            vm_store.move(db, message.id, "saved")
            return vm_store.counts(db, number)

        self._counted(number, await self.store(f"saving message {message.id}", write))

    async def delete(self, message: vm_store.Message) -> None:
        """Delete a message: its row marked, its file removed, then the row forgotten."""
        number, file = message.mailbox, self.path(message.path)

        def write(db: Database) -> tuple[int, int]:
            if vm_store.delete_message(db, message.id) is not None:
                try:
                    os.unlink(file)
                except FileNotFoundError:
                    pass
                vm_store.forget_message(db, message.id)
            return vm_store.counts(db, number)

        self._counted(number, await self.store(f"deleting message {message.id}", write))
        if self.outbox is not None:
            self.outbox.emit("voicemail.deleted", number, id=message.id)

    async def verify_pin(self, number: str, pin: str) -> bool:
        """Whether `pin` opens the mailbox (scrypt: on a thread of its own, not the loop's)."""
        from appliance.store.db import open_db

        def check() -> bool:
            db = open_db(self.data_dir, migrate_schema=False)
            try:
                return vm_store.verify_pin(db, number, pin)
            finally:
                db.conn.close()

        return await asyncio.to_thread(check)

    def close(self) -> None:
        if self.mailer is not None:
            self.mailer.close()
