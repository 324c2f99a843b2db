"""Dialogs (RFC 3261 §12): the state two user agents share, and the requests built from it.

A `Dialog` is one side's view: Call-ID, tags, CSeq counters, the remote target and the route
set. It builds in-dialog requests and the ACK for a 2xx (§13.2.2.4), and `Reliable` retransmits
what the transaction layer leaves to the user agent core: a UAS's 2xx until the ACK arrives
(§13.3.1.4) and reliable provisional responses until their PRACK (RFC 3262 §3).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from appliance.sip.headers import MAGIC_COOKIE, split_list
from appliance.sip.message import HeaderField, Request, Response, make_response
from appliance.sip.transaction import Destination, Timers

logger = logging.getLogger(__name__)

DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag): how a request or response finds its dialog (§12)."""


def new_branch() -> str:
    return MAGIC_COOKIE + os.urandom(8).hex()


def request_dialog_id(req: Request) -> DialogId:
    """The id of the dialog a request received by us belongs to: our tag is in To."""
    return (req.call_id, req.to.tag or "", req.from_.tag or "")


@dataclass(slots=True)
class Dialog:
    """One side of a dialog. `local` and `remote` are the From/To header values (with tags)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local: str
    remote: str
    remote_target: str
    dest: Destination
    via: str
    """Our sent-by for Via, `TRANSPORT host:port` as in `SIP/2.0/UDP host:port`."""
    contact: str
    local_seq: int = 1
    remote_seq: int | None = None
    route_set: list[str] = field(default_factory=list)

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(
        cls, req: Request, local_tag: str, dest: Destination, via: str, contact: str
    ) -> Dialog:
        """§12.1.1: the dialog a UAS makes by answering `req` (an INVITE) with a tag."""
        remote_target = req.contacts[0].uri if req.contacts else None
        return cls(
            call_id=req.call_id,
            local_tag=local_tag,
            remote_tag=req.from_.tag or "",
            local=f"{req.get('To')};tag={local_tag}",
            remote=req.get("From") or "",
            remote_target=str(remote_target) if remote_target else req.uri,
            dest=dest,
            via=via,
            contact=contact,
            local_seq=0,
            remote_seq=req.cseq.number,
            route_set=[r for h in req.fields("record-route") for r in _split(h.value)],
        )

    @classmethod
    def as_uac(cls, req: Request, resp: Response, dest: Destination, via: str) -> Dialog:
        """§12.1.2: the dialog a UAC has once `resp` (a 101-299 with a To tag) arrives."""
        target = resp.contacts[0].uri if resp.contacts else None
        routes = [r for h in resp.fields("record-route") for r in _split(h.value)]
        return cls(
            call_id=req.call_id,
            local_tag=req.from_.tag or "",
            remote_tag=resp.to.tag or "",
            local=req.get("From") or "",
            remote=resp.get("To") or "",
            remote_target=str(target) if target else req.uri,
            dest=dest,
            via=via,
            contact=req.get("Contact") or "",
            local_seq=req.cseq.number,
            route_set=routes[::-1],
        )

    def request(
        self,
        method: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        cseq: int | None = None,
    ) -> Request:
        """A new in-dialog request (§12.2.1.1); takes the next local CSeq unless given one."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        uri = self.remote_target
        routes = list(self.route_set)
        if routes and ";lr" not in routes[0]:
            # Strict router (RFC 2543): it becomes the Request-URI, the target the last route.
            uri, routes = routes[0].strip("<>"), [*routes[1:], f"<{self.remote_target}>"]
        fields = [
            HeaderField("Via", f"SIP/2.0/{self.via};branch={new_branch()};rport"),
            HeaderField("Max-Forwards", "70"),
            HeaderField("From", self.local),
            HeaderField("To", self.remote),
            HeaderField("Call-ID", self.call_id),
            HeaderField("CSeq", f"{cseq} {method}"),
        ]
        fields.extend(HeaderField("Route", r) for r in routes)
        if method not in ("ACK", "CANCEL", "BYE"):
            fields.append(HeaderField("Contact", self.contact))
        fields.extend(HeaderField(n, v) for n, v in headers)
        fields.append(HeaderField("Content-Length", str(len(body))))
        return Request(headers=fields, body=body, method=method, uri=uri)

    def ack(self, cseq: int, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()) -> Request:
        """§13.2.2.4: the ACK for a 2xx, with the INVITE's CSeq number."""
        return self.request("ACK", headers, body, cseq=cseq)

    def response(
        self,
        req: Request,
        status: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """A response in this dialog: our tag in To and, for INVITE-like requests, our Contact."""
        extra = list(headers)
        if req.method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER") and 100 < status < 300:
            extra.insert(0, ("Contact", self.contact))
            if req.method == "INVITE":
                extra[1:1] = [("Record-Route", r) for r in req.get_all("record-route")]
        return make_response(req, status, reason, to_tag=self.local_tag, headers=extra, body=body)

    def accept_remote_seq(self, req: Request) -> bool:
        """§12.2.2: a request with a CSeq below the last one is out of order (answer 500)."""
        number = req.cseq.number
        if req.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and number <= self.remote_seq:
            return False
        self.remote_seq = number
        return True

    def refresh_target(self, msg: Request | Response) -> None:
        """A target refresh (re-INVITE, UPDATE, their 2xx) may move the remote target."""
        if msg.contacts and msg.contacts[0].uri is not None:
            self.remote_target = str(msg.contacts[0].uri)


def _split(value: str) -> list[str]:
    return [v.strip() for v in split_list(value)]


class Reliable:
    """Retransmits one message at T1, 2·T1 … capped at T2 until stopped or 64·T1 passes.

    Used for a UAS's 2xx to INVITE (stopped by the ACK) and reliable provisional responses
    (stopped by the PRACK). The first transmission is the caller's (through the transaction);
    this sends the repeats. Over a reliable transport there are none, and only the overall timer
    runs. `on_timeout` runs if no one stopped it in time.
    """

    __slots__ = ("_data", "_deadline", "_dest", "_handle", "_interval", "_loop", "_send",
                 "_timers", "done", "on_timeout")  # fmt: skip

    def __init__(
        self,
        send: Callable[[bytes, Destination], None],
        data: bytes,
        dest: Destination,
        timers: Timers,
        on_timeout: Callable[[], None] | None = None,
    ) -> None:
        self._send, self._data, self._dest, self._timers = send, data, dest, timers
        self._loop = asyncio.get_running_loop()
        self.on_timeout = on_timeout
        self.done = False
        self._interval = timers.t1
        self._deadline = self._loop.time() + timers.b
        self._handle = self._loop.call_later(timers.b if dest.reliable else timers.t1, self._tick)

    def _tick(self) -> None:
        if self.done:
            return
        if self._loop.time() >= self._deadline - 1e-3:
            self.done = True
            on_timeout, self.on_timeout = self.on_timeout, None
            if on_timeout is not None:
                on_timeout()
            return
        self._send(self._data, self._dest)
        self._interval = min(2 * self._interval, self._timers.t2)
        delay = min(self._interval, max(self._deadline - self._loop.time(), 0.0))
        self._handle = self._loop.call_later(delay, self._tick)

    def resend(self) -> None:
        """The peer retransmitted its request: send our answer again now."""
        if not self.done:
            self._send(self._data, self._dest)

    def stop(self) -> None:
        self.done = True
        self._handle.cancel()
        self.on_timeout = None  # (often a closure over the call: no cycle outlives the call)
