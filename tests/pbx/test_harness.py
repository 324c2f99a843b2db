"""The in-process harness fails a test for every kind of fault a core can hide: an exception in
a callback of the loop (a SIP datagram's handler, a media socket's reader, a plain callback),
an error logged, a traceback logged at a lower level, a thread that died (issue 13: tests must
see the core's tracebacks). A test whose core is faultless passes."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from appliance.sip.message import Request
from appliance.sip.transaction import ServerTransaction
from tests.pbx import harness
from tests.pbx.harness import Box
from tests.sip.peer import request_bytes

logger = logging.getLogger(__name__)


class Boom(Exception):
    """What the faults raise."""


async def handler_raises(box: Box) -> None:
    """An OPTIONS whose handler raises inside the SIP transport's datagram callback."""
    loop = asyncio.get_running_loop()
    reached: asyncio.Future[None] = loop.create_future()

    def options(_req: Request, _txn: ServerTransaction) -> None:
        reached.set_result(None)
        raise Boom("in a SIP handler")

    box.core.endpoint.handlers["OPTIONS"] = options
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((harness.HOST, 0))
        sock.sendto(request_bytes("OPTIONS", sock.getsockname()[1]), box.core.endpoint.local)
        await asyncio.wait_for(reached, harness.WAIT)
    await _next_turn()  # the raise unwinds into the loop's exception handler first


async def reader_raises(box: Box) -> None:
    """A socket watched with add_reader (as the media engine's are) whose reader raises."""
    loop = asyncio.get_running_loop()
    reached: asyncio.Future[None] = loop.create_future()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((harness.HOST, 0))
        sock.setblocking(False)

        def read() -> None:
            sock.recv(2048)
            loop.remove_reader(sock.fileno())
            reached.set_result(None)
            raise Boom("in a media reader")

        loop.add_reader(sock.fileno(), read)
        sock.sendto(b"x", sock.getsockname())
        await asyncio.wait_for(reached, harness.WAIT)
        await _next_turn()


async def callback_raises(_box: Box) -> None:
    asyncio.get_running_loop().call_soon(_raise)
    await _next_turn()


async def error_logged(_box: Box) -> None:
    logger.error("a fault the core logged")


async def traceback_logged_as_warning(_box: Box) -> None:
    try:
        _raise()
    except Boom:
        logger.warning("a fault logged below ERROR, with its traceback", exc_info=True)


async def thread_dies(_box: Box) -> None:
    thread = threading.Thread(target=_raise, name="doomed")
    thread.start()
    await asyncio.to_thread(thread.join, harness.WAIT)


def _raise() -> None:
    raise Boom("boom")


async def _next_turn() -> None:
    """Return after every callback queued before this call has run."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done


@pytest.mark.parametrize(
    ("fault", "reported"),
    [
        (handler_raises, "exceptions in the event loop"),
        (reader_raises, "exceptions in the event loop"),
        (callback_raises, "exceptions in the event loop"),
        (error_logged, "a fault the core logged"),
        (traceback_logged_as_warning, "a fault logged below ERROR"),
        (thread_dies, "doomed: Boom: boom"),
    ],
)
def test_the_harness_fails_a_test_whose_core_hid_a_fault(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[Box], Awaitable[None]],
    reported: str,
) -> None:
    with pytest.raises(AssertionError, match=reported):
        harness.run(tmp_path, monkeypatch, fault)


def test_a_faultless_test_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def registers(box: Box) -> None:
        await box.phone("101")

    harness.run(tmp_path, monkeypatch, registers)
