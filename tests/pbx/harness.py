"""An in-process pbx-core and scripted SIP user agents around it, for tests of the call engine.

`run(tmp_path, monkeypatch, test)` starts the real `Core` in the test's own event loop, over a
real SQLite file with extensions 101-103, listening on 127.0.0.1 (a free port) with shortened
SIP timers and a random RTP port range, and hands `test` a `Box`. User agents (`Ua`) are our own
`SipEndpoint`s on loopback: they register, call with digest credentials, and answer what the box
sends them as the test scripts it. Every wait is an awaited event bounded by a timeout; a test
fails if anything logged an error or a traceback, raised in a callback of the loop, or killed a
thread (tests/pbx/test_harness.py shows each is caught).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import ssl
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from appliance import certs
from appliance.pbx import core as core_module
from appliance.pbx.core import Core, CoreError, CoreOptions
from appliance.pbx.legs import Call, Leg
from appliance.sip import sdp
from appliance.sip.dialog import Dialog
from appliance.sip.endpoint import SipEndpoint, new_tag
from appliance.sip.message import Request, Response, make_response
from appliance.sip.transaction import (
    ClientTransaction,
    Destination,
    ServerTransaction,
    State,
    Timers,
)
from appliance.sip.ua import uac
from appliance.sip.ua.auth import ClientAuth, Credentials
from appliance.sip.ua.invite import OutgoingInvite
from appliance.store import cdrs, extensions, settings
from appliance.store.database import Database
from appliance.store.db import open_db

HOST = "127.0.0.1"
PASSWORD = "Secret123456"
NUMBERS = ("101", "102", "103")
TIMERS = Timers(t1=0.04, t2=0.16, t4=0.2)
"""Shortened as RFC 3261 allows on a LAN: 64·T1 (Timers B, F, H and the 2xx retransmission
limit) is 2.56 s."""
WAIT = 5.0
"""The longest any single expected event may take."""
LISTEN_ATTEMPTS = 5
"""An endpoint listens on UDP port 0, then on TCP at the port number it got, which a TCP
socket may already hold when many tests run at once: then it is tried again, on a new port."""

Incoming = tuple[Request, ServerTransaction | None]
"""A request a user agent received, with its server transaction (None for an ACK)."""


def phone_sdp(
    port: int,
    version: int = 1,
    codecs: Iterable[str] = ("PCMU", "PCMA"),
    *,
    direction: str = "sendrecv",
    proto: str = "RTP/AVP",
    session: str = "4242",
    video: str | None = None,
) -> bytes:
    """A phone's SDP: one audio stream at 127.0.0.1:`port` with `codecs` and RFC 4733 events;
    `video` ("before" or "after") adds a video stream on that side of it."""
    types = {"PCMU": 0, "PCMA": 8, "G722": 9}
    pts = [types[c] for c in codecs]
    audio = [f"m=audio {port} {proto} {' '.join(map(str, [*pts, 101]))}"]
    audio += [f"a=rtpmap:{pt} {name}/8000" for name, pt in zip(codecs, pts, strict=True)]
    audio += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20"]
    audio.append(f"a={direction}")
    media = [audio]
    if video is not None:
        stream = [f"m=video {port + 2} {proto} 96", "a=rtpmap:96 H264/90000", f"a={direction}"]
        media = [stream, audio] if video == "before" else [audio, stream]
    lines = [
        "v=0", f"o=phone {session} {version} IN IP4 {HOST}", "s=phone", f"c=IN IP4 {HOST}",
        "t=0 0", *(line for section in media for line in section),
    ]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n").encode()


def parse_sdp(message: Request | Response) -> sdp.SessionDescription:
    assert message.body, f"{message.start_line()} carries no SDP"
    return sdp.SessionDescription.parse(message.body)


def top_via(message: Request | Response) -> str:
    return message.get_all("via")[0]


class Outgoing:
    """An INVITE a user agent sent (digest answered by `OutgoingInvite`), and its responses.

    Once `ack` has ACKed a 2xx, retransmissions of that 2xx are ACKed again and not queued."""

    def __init__(self, ua: Ua, request: Request, password: str = PASSWORD) -> None:
        self.ua = ua
        self.responses: asyncio.Queue[Response] = asyncio.Queue()
        self.invite = OutgoingInvite(
            ua.ep, request, ua.box, self._on_response, Credentials(ua.number, password)
        )
        self.dialog: Dialog | None = None
        self._ack: Request | None = None
        self.invite.start()

    def _on_response(self, resp: Response) -> None:
        if self._ack is not None and 200 <= resp.status < 300:
            self.ua.ep.send(bytes(self._ack), self.ua.box)
            return
        self.responses.put_nowait(resp)

    async def next(self, timeout: float = WAIT) -> Response:
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def status(self, status: int, timeout: float = WAIT) -> Response:
        """The next response other than 100 Trying, which must have `status`."""
        while True:
            resp = await self.next(timeout)
            if resp.status != 100:
                break
        assert resp.status == status, f"expected {status}, got {resp.status} {resp.reason}"
        return resp

    async def final(self, timeout: float = WAIT) -> Response:
        while True:
            resp = await self.next(timeout)
            if resp.status >= 200:
                return resp

    def early_dialog(self, resp: Response) -> Dialog:
        return Dialog.as_uac(self.invite.request, resp, self.ua.box, self.ua.via)

    def ack(self, resp: Response) -> Dialog:
        """ACK a 2xx (§13.2.2.4); the dialog it set up."""
        dialog = Dialog.as_uac(self.invite.request, resp, self.ua.box, self.ua.via)
        self._ack = dialog.ack(self.invite.request.cseq.number)
        self.ua.ep.send(bytes(self._ack), self.ua.box)
        self.dialog = dialog
        return dialog


class Ua:
    """A scripted user agent (a phone, or a caller) on its own endpoint.

    Requests it receives are queued per method (`next`); BYE, PRACK, INFO and NOTIFY are answered
    200 at once, a CANCEL 200 and its INVITE 487 (unless `on_cancel` says otherwise); INVITE and
    UPDATE wait for the test to answer them (`respond`)."""

    def __init__(self, ep: SipEndpoint, number: str, transport: str, box: Destination) -> None:
        self.ep, self.number, self.transport, self.box = ep, number, transport, box
        self.port = ep.local[1]
        self.via = f"{transport} {HOST}:{self.port}"
        tp = "" if transport == "UDP" else f";transport={transport.lower()}"
        self.contact = f"<sip:{number}@{HOST}:{self.port}{tp}>"
        self.inbox: defaultdict[str, asyncio.Queue[Incoming]] = defaultdict(asyncio.Queue)
        self.on_cancel: Callable[[Request, ServerTransaction], None] | None = None
        self._tags: dict[str, str] = {}
        for method in ("INVITE", "UPDATE", "BYE", "CANCEL", "PRACK", "INFO", "NOTIFY"):
            ep.handlers[method] = self._receive
        ep.supported = frozenset({"100rel", "timer"})
        ep.on_ack = lambda req: self.inbox["ACK"].put_nowait((req, None))

    @classmethod
    async def open(
        cls, number: str, box: Destination, transport: str = "UDP", data: Path | None = None
    ) -> Ua:
        """`data`: the box's data directory, whose certificate a TLS user agent serves with
        too (it trusts any: the box's is self-signed)."""
        for _ in range(LISTEN_ATTEMPTS):
            ep = SipEndpoint(timers=TIMERS)
            try:
                await ep.listen(HOST, 0, tcp=transport == "TCP")
                if transport == "TLS":
                    assert data is not None
                    client = ssl.create_default_context()
                    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
                    server = certs.server_context(*certs.certificate(data))
                    await ep.listen_tls(HOST, 0, server, client)
            except OSError as exc:
                ep.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue  # (see LISTEN_ATTEMPTS)
            return cls(ep, number, transport, box)
        raise AssertionError(f"no port free for UDP and TCP at once in {LISTEN_ATTEMPTS} tries")

    def close(self) -> None:
        self.ep.close()

    # -- receiving --------------------------------------------------------------------------

    def _receive(self, req: Request, txn: ServerTransaction) -> None:
        method = req.method
        if method == "CANCEL":
            if self.on_cancel is not None:
                self.on_cancel(req, txn)
            else:
                self.respond(txn, 200)
                invite = self.ep.transactions.match_server((*txn.key[:-1], "INVITE"))
                if invite is not None and invite.state is State.PROCEEDING:
                    self.respond(invite, 487)
        elif method in ("BYE", "PRACK", "INFO", "NOTIFY"):
            self.respond(txn, 200)
        self.inbox[method].put_nowait((req, txn))

    async def next(self, method: str, timeout: float = WAIT) -> tuple[Request, ServerTransaction]:
        """The next `method` request received (not an ACK: see `ack`)."""
        req, txn = await asyncio.wait_for(self.inbox[method].get(), timeout)
        assert txn is not None
        return req, txn

    async def ack(self, timeout: float = WAIT) -> Request:
        return (await asyncio.wait_for(self.inbox["ACK"].get(), timeout))[0]

    def received(self, method: str) -> list[Request]:
        """What is queued of `method` now (taken off the queue)."""
        out = []
        queue = self.inbox[method]
        while not queue.empty():
            out.append(queue.get_nowait()[0])
        return out

    # -- answering ----------------------------------------------------------------------------

    def tag_for(self, req: Request) -> str:
        """Our To tag for the dialog `req` belongs to (one per Call-ID)."""
        return self._tags.setdefault(req.call_id, req.to.tag or new_tag())

    def respond(
        self, txn: ServerTransaction, status: int, body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:  # fmt: skip
        req = txn.request
        extra = list(headers)
        if 100 < status < 300 and req.method in ("INVITE", "UPDATE"):
            extra.insert(0, ("Contact", self.contact))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        resp = make_response(req, status, to_tag=self.tag_for(req), headers=extra, body=body)
        txn.respond(resp)
        return resp

    def dialog_of(self, req: Request, txn: ServerTransaction) -> Dialog:
        """The dialog we are the UAS of, once we answered `req` (an INVITE) with a 2xx."""
        return Dialog.as_uas(req, self.tag_for(req), txn.dest, self.via, self.contact)

    # -- sending ------------------------------------------------------------------------------

    def request(
        self, dialog: Dialog, method: str, body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> ClientTransaction:  # fmt: skip
        """Send an in-dialog request; its final response is `txn.final`."""
        hdrs = list(headers)
        if body:
            hdrs.append(("Content-Type", "application/sdp"))
        return self.ep.request(dialog.request(method, hdrs, body), dialog.dest)

    async def final(self, txn: ClientTransaction, timeout: float = WAIT) -> Response:
        return await asyncio.wait_for(asyncio.shield(txn.final), timeout)

    def ack_2xx(self, dialog: Dialog, txn: ClientTransaction) -> None:
        """ACK the 2xx to our re-INVITE `txn`."""
        self.ep.send(bytes(dialog.ack(txn.request.cseq.number)), dialog.dest)

    async def reinvite(self, dialog: Dialog, body: bytes) -> Response:
        """A re-INVITE, its final response awaited, a 2xx ACKed."""
        txn = self.request(dialog, "INVITE", body)
        resp = await self.final(txn)
        if resp.status < 300:
            self.ack_2xx(dialog, txn)
        return resp

    def invite_request(
        self, number: str, body: bytes, headers: Iterable[tuple[str, str]] = ()
    ) -> Request:
        hostport = f"{self.box.host}:{self.box.port}"
        hdrs = [("Contact", self.contact), *headers]
        if body:
            hdrs.append(("Content-Type", "application/sdp"))
        return uac.request(
            "INVITE", f"sip:{number}@{hostport}", via=self.via,
            from_=f'"Ext {self.number}" <sip:{self.number}@{HOST}>;tag={new_tag()}',
            to=f"<sip:{number}@{hostport}>", call_id=uac.new_call_id(self.via), cseq=1,
            headers=hdrs, body=body,
        )  # fmt: skip

    def call(
        self, number: str, body: bytes, headers: Iterable[tuple[str, str]] = (),
        *, max_forwards: int | None = None, password: str = PASSWORD,
    ) -> Outgoing:  # fmt: skip
        """INVITE `number` at the box (with our extension's credentials for its 407, or
        `password` for our number)."""
        request = self.invite_request(number, body, headers)
        if max_forwards is not None:
            request.set("Max-Forwards", str(max_forwards))
        return Outgoing(self, request, password)

    async def register(self) -> None:
        """Bind our contact for our extension (digest answered), and wait for the 200."""
        hostport = f"{self.box.host}:{self.box.port}"
        aor = f"<sip:{self.number}@{HOST}>"
        request = uac.request(
            "REGISTER", f"sip:{hostport}", via=self.via, from_=f"{aor};tag={new_tag()}", to=aor,
            call_id=uac.new_call_id(self.via), cseq=1,
            headers=[("Contact", self.contact), ("Expires", "300")],
        )  # fmt: skip
        resp = await self.final(self.ep.request(request, self.box))
        if resp.status == 401:
            retry = ClientAuth(Credentials(self.number, PASSWORD)).authorize(request, resp)
            assert retry is not None
            resp = await self.final(self.ep.request(retry, self.box))
        assert resp.status == 200, f"REGISTER {self.number}: {resp.status} {resp.reason}"

    async def barrier(self) -> None:
        """An OPTIONS round trip to the box: what either side sent the other before it has
        been received and handled (one socket pair, or one TCP connection, keeps order)."""
        request = uac.request(
            "OPTIONS", f"sip:{self.box.host}:{self.box.port}", via=self.via,
            from_=f"<sip:{self.number}@{HOST}>;tag={new_tag()}", to=f"<sip:{self.box.host}>",
            call_id=uac.new_call_id(self.via), cseq=1,
        )  # fmt: skip
        assert (await self.final(self.ep.request(request, self.box))).status == 200


class Box:
    """The running core, seen by a test: its engine, its records, and user agents beside it."""

    def __init__(
        self, core: Core, errors: list[logging.LogRecord], loop_errors: list[dict[str, Any]]
    ) -> None:
        self.core = core
        self.engine = core.calls
        host, port = core.endpoint.local
        self.dest = Destination("UDP", host, port)
        self.records: asyncio.Queue[cdrs.Cdr] = asyncio.Queue()
        self.uas: list[Ua] = []
        self.errors = errors
        """Records logged at ERROR or above so far."""
        self.loop_errors = loop_errors
        """Exceptions the event loop caught in callbacks (a handler that raised) so far."""
        write = self.engine.record

        def record(cdr: cdrs.Cdr) -> None:
            write(cdr)  # to the store, as ever
            self.records.put_nowait(cdr)

        self.engine.record = record

    async def ua(self, number: str, transport: str = "UDP") -> Ua:
        dest = self.dest._replace(transport=transport)
        if transport == "TLS":
            assert self.core.endpoint.tls is not None
            dest = dest._replace(port=self.core.endpoint.tls.local[1])
        ua = await Ua.open(number, dest, transport, self.core.options.data_dir)
        self.uas.append(ua)
        return ua

    async def phone(self, number: str, transport: str = "UDP") -> Ua:
        """A user agent registered as `number`."""
        ua = await self.ua(number, transport)
        await ua.register()
        return ua

    async def cdr(self, timeout: float = WAIT) -> cdrs.Cdr:
        """The next call record the engine writes."""
        return await asyncio.wait_for(self.records.get(), timeout)

    def counters(self) -> dict[str, Any]:
        return self.core.counters({})

    def only_call(self) -> Call:
        calls = list(self.engine.calls.values())
        assert len(calls) == 1, f"expected one call, the engine has {len(calls)}"
        return calls[0]

    def legs(self) -> tuple[Leg, Leg]:
        call = self.only_call()
        assert call.b is not None, "the call has no callee leg"
        return call.a, call.b


class Established:
    """A call set up between a caller and a phone: each side's dialog, and the engine's legs."""

    def __init__(self, out: Outgoing, ok: Response, a: Dialog, b: Dialog, invite: Request) -> None:
        self.out, self.ok, self.a_dialog, self.b_dialog = out, ok, a, b
        """`ok`: the box's 2xx to the caller."""
        self.invite = invite
        """The INVITE the phone got from the box."""


async def connect(
    box: Box, caller: Ua, phone: Ua, offer: bytes | None = None, answer: bytes | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Established:  # fmt: skip
    """Caller INVITEs the phone's number through the box; the phone rings and answers; both
    2xx are ACKed, and the caller's ACK has reached the box when this returns."""
    out = caller.call(phone.number, phone_sdp(4000) if offer is None else offer, headers)
    invite, txn = await phone.next("INVITE")
    phone.respond(txn, 180)
    phone.respond(txn, 200, phone_sdp(5000, session="5151") if answer is None else answer)
    b_dialog = phone.dialog_of(invite, txn)
    await phone.ack()
    await out.status(180)
    ok = await out.status(200)
    a_dialog = out.ack(ok)
    await caller.barrier()
    return Established(out, ok, a_dialog, b_dialog, invite)


def run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    test: Callable[[Box], Awaitable[None]],
    *,
    timeout: float = 30.0,
    prepare: Callable[[Database], None] | None = None,
) -> Path:
    """Run `test` against a core over `tmp_path`, and fail if anything logged an error or
    raised in the loop; return the data directory (the core stopped, its records written).
    `prepare` writes to the store before the core starts (what it reads at start)."""
    data = tmp_path / "var"
    db = open_db(data)
    for number in NUMBERS:
        extensions.add(db, number, f"Ext {number}", PASSWORD)
    base = random.randrange(30000, 60000, 2)  # not the default range a running box may hold
    settings.set_value(db, "rtp.port_min", str(base))
    settings.set_value(db, "rtp.port_max", str(base + 200))
    if prepare is not None:
        prepare(db)
    db.conn.close()
    ready: list[asyncio.Future[None]] = []

    def notify(message: str) -> None:
        if message == "READY=1" and ready and not ready[0].done():
            ready[0].set_result(None)

    monkeypatch.setattr(core_module, "sd_notify", notify)
    monkeypatch.setattr(core_module, "tune_gc", lambda: None)  # the test process's collector
    errors: list[logging.LogRecord] = []
    catcher = _Catcher(errors)
    loop_errors: list[dict[str, Any]] = []
    thread_errors: list[str] = []

    def on_thread_error(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        thread_errors.append(f"{name}: {args.exc_type.__name__}: {args.exc_value}")

    monkeypatch.setattr(threading, "excepthook", on_thread_error)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def on_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            loop_errors.append(context)
            _loop.default_exception_handler(context)

        loop.set_exception_handler(on_error)
        core, task = await _start(data, ready)
        box = Box(core, errors, loop_errors)
        try:
            await asyncio.wait_for(test(box), timeout)
        finally:
            core._stop.set()
            await asyncio.wait_for(task, WAIT)
            for ua in box.uas:
                ua.close()

    root = logging.getLogger()
    root.addHandler(catcher)
    try:
        asyncio.run(main())
    finally:
        root.removeHandler(catcher)
    assert not loop_errors, f"exceptions in the event loop: {loop_errors}"
    assert not errors, f"errors or tracebacks logged: {[r.getMessage() for r in errors]}"
    assert not thread_errors, f"threads died of exceptions: {thread_errors}"
    return data


async def _start(data: Path, ready: list[asyncio.Future[None]]) -> tuple[Core, asyncio.Task[None]]:
    """A core running over `data`, once it said it is ready."""
    loop = asyncio.get_running_loop()
    for _ in range(LISTEN_ATTEMPTS):
        ready[:] = [loop.create_future()]
        core = Core(CoreOptions(data, HOST, 0))
        core.endpoint._timers = TIMERS  # read when it listens, in run()
        task = loop.create_task(core.run())
        await asyncio.wait({task, ready[0]}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            assert ready[0].done(), "the core did not become ready"
            return core, task
        exc = task.exception()
        if not isinstance(exc, CoreError) or "already in use" not in str(exc):
            task.result()  # raises why the core did not start
        core.writer.stop()  # what the core had started before it tried to listen
        core.media.close()
        core.db.conn.close()
    raise AssertionError(f"no port free for UDP and TCP at once in {LISTEN_ATTEMPTS} tries")


class _Catcher(logging.Handler):
    """Keeps every record at ERROR or above, and every record with a traceback."""

    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.NOTSET)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.into.append(record)
