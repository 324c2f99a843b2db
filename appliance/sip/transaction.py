"""The transaction layer (RFC 3261 §17, with the RFC 6026 Accepted states).

Client and server state machines for INVITE and non-INVITE transactions, timers A–K (and L, M
from RFC 6026), retransmission over unreliable transports and absorption of retransmitted
requests. The layer owns no sockets: it sends through a `Sender` and is fed by the endpoint.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from appliance.sip.headers import MAGIC_COOKIE
from appliance.sip.message import HeaderField, Request, Response, make_response

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 §17.1.1.1 / Table 4 base values; tests may shorten them, as the RFC allows."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def b(self) -> float:  # also F, H, J, L, M
        return 64 * self.t1


class Destination(NamedTuple):
    """Where a message goes: a transport (by name) and an address on it."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


Sender = Callable[[bytes, Destination], None]


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


def server_key(request: Request) -> tuple[str, ...]:
    """§17.2.3 matching key; ACK and CANCEL match the INVITE by branch, CANCEL kept apart."""
    via = request.via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch and branch.startswith(MAGIC_COOKIE):
        return (branch, via.sent_by, method)
    # RFC 2543 peers: Request-URI, tags, Call-ID, CSeq number and top Via (§17.2.3 end).
    uri = request.uri if request.method != "ACK" else ""
    return (
        uri, request.from_.tag or "", request.call_id, str(request.cseq.number),
        str(via), method,
    )  # fmt: skip


class _TimerOwner:
    """The timers of one transaction: started with `_after`, all cancelled together."""

    __slots__ = ()
    _handles: list[asyncio.TimerHandle]
    _layer: TransactionLayer

    def _after(self, delay: float, fn: Callable[..., None], *args: object) -> None:
        self._handles.append(self._layer.loop.call_later(delay, fn, *args))

    def _cancel_timers(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()


class ServerTransaction(_TimerOwner):
    """§17.2: INVITE (Figure 7 + RFC 6026) and non-INVITE (Figure 8) server transactions."""

    __slots__ = (
        "_handles", "_layer", "dest", "invite", "key", "last_response", "on_ack",
        "on_terminated", "request", "source", "state",
    )  # fmt: skip

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        dest: Destination,
        key: tuple[str, ...] | None = None,
    ) -> None:
        self._layer = layer
        self.request = request
        self.dest = dest
        self.source = dest
        """Where the request came from (transport, address, port), as the socket saw it;
        `dest`, where answers go, may take its port from the Via (§18.2.2)."""
        self.key = server_key(request) if key is None else key
        self.invite = request.method == "INVITE"
        self.state = State.PROCEEDING if self.invite else State.TRYING
        self.last_response: bytes | None = None
        self._handles: list[asyncio.TimerHandle] = []
        self.on_ack: Callable[[Request], None] | None = None
        self.on_terminated: Callable[[ServerTransaction, bool], None] | None = None

    def respond(self, response: Response) -> None:
        """Send a response from the TU, moving the state machine accordingly."""
        if self.state in (State.COMPLETED, State.CONFIRMED, State.TERMINATED):
            raise RuntimeError(f"response {response.status} after the final one")
        data = bytes(response)
        self.last_response = data
        self._layer.send(data, self.dest)
        if response.status < 200:
            if self.state is State.TRYING:
                self.state = State.PROCEEDING
            return
        timers = self._layer.timers
        reliable = self.dest.reliable
        if not self.invite:
            self.state = State.COMPLETED
            self._layer.forget_server(self)
            if not reliable:
                # Timer J: the layer keeps only what absorbing retransmissions needs; this
                # object is done with (it does not report termination to the TU).
                self._layer.remember_completed(self.key, data, self.dest, timers.b)
        elif response.status < 300:
            self.state = State.ACCEPTED
            self._after(timers.b, self._terminate)  # Timer L
        else:
            self.state = State.COMPLETED
            if not reliable:
                self._after(timers.t1, self._timer_g, timers.t1)
            self._after(timers.b, self._timer_h)

    def receive_retransmission(self, request: Request) -> None:
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._cancel_timers()
                t4 = 0.0 if self.dest.reliable else self._layer.timers.t4
                self._after(t4, self._terminate)  # Timer I
            elif self.state is State.ACCEPTED and self.on_ack is not None:
                self.on_ack(request)
            return
        if self.last_response is not None and self.state in (
            State.PROCEEDING, State.COMPLETED,
        ):  # fmt: skip
            self._layer.send(self.last_response, self.dest)

    def _timer_g(self, interval: float) -> None:
        if self.state is State.COMPLETED and self.last_response is not None:
            self._layer.send(self.last_response, self.dest)
            nxt = min(2 * interval, self._layer.timers.t2)
            self._after(nxt, self._timer_g, nxt)

    def _timer_h(self) -> None:
        if self.state is State.COMPLETED:
            logger.info("no ACK for %s (Timer H)", self.request.call_id)
            self._terminate(timed_out=True)

    def _terminate(self, timed_out: bool = False) -> None:
        if self.state is State.TERMINATED:
            return
        self.state = State.TERMINATED
        self._cancel_timers()
        self._layer.forget_server(self)
        if self.on_terminated is not None:
            self.on_terminated(self, timed_out)


class ClientTransaction(_TimerOwner):
    """§17.1: INVITE (Figure 5 + RFC 6026) and non-INVITE (Figure 6) client transactions."""

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        dest: Destination,
        on_response: Callable[[Response], None] | None = None,
    ) -> None:
        self._layer = layer
        self.request = request
        self.dest = dest
        self.invite = request.method == "INVITE"
        self.branch = request.via.branch or ""
        self.state = State.CALLING if self.invite else State.TRYING
        self.on_response = on_response
        self.final: asyncio.Future[Response] = layer.loop.create_future()
        self._data = bytes(request)
        self._ack: bytes | None = None
        self._handles: list[asyncio.TimerHandle] = []

    @property
    def key(self) -> tuple[str, str]:
        return (self.branch, self.request.method)

    def start(self) -> None:
        self._layer.send(self._data, self.dest)
        timers = self._layer.timers
        if not self.dest.reliable:
            self._after(timers.t1, self._retransmit, timers.t1)  # Timer A / E
        self._after(timers.b, self._timeout)  # Timer B / F

    def receive(self, response: Response) -> None:
        status = response.status
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            if status < 200:
                if self.invite:
                    self._cancel_timers()  # §17.1.1.2: no retransmission, no Timer B
                self.state = State.PROCEEDING
                self._deliver(response)
                return
            self._cancel_timers()
            if self.invite and status < 300:
                self.state = State.ACCEPTED
                self._after(self._layer.timers.b, self._terminate)  # Timer M
            elif self.invite:
                self.state = State.COMPLETED
                self._ack = bytes(self._make_ack(response))
                self._layer.send(self._ack, self.dest)
                d = 0.0 if self.dest.reliable else max(32.0, self._layer.timers.b)
                self._after(d, self._terminate)  # Timer D
            else:
                self.state = State.COMPLETED
                k = 0.0 if self.dest.reliable else self._layer.timers.t4
                self._after(k, self._terminate)  # Timer K
            self._deliver(response)
            if not self.final.done():
                self.final.set_result(response)
        elif self.state is State.ACCEPTED and status < 300:
            self._deliver(response)  # 2xx retransmission: the TU (dialog) re-sends its ACK
        elif self.state is State.COMPLETED and self._ack is not None:
            self._layer.send(self._ack, self.dest)

    def _make_ack(self, response: Response) -> Request:
        """§17.1.1.3: the ACK for a non-2xx final response, sent by the transaction."""
        req = self.request
        headers = [HeaderField("Via", req.get_all("via")[0])]
        for h in req.headers:
            if h.key in ("from", "call-id", "route", "max-forwards"):
                headers.append(HeaderField(h.name, h.value))
        headers.append(HeaderField("To", response.get("to") or ""))
        headers.append(HeaderField("CSeq", f"{req.cseq.number} ACK"))
        headers.append(HeaderField("Content-Length", "0"))
        return Request(headers=headers, method="ACK", uri=req.uri)

    def _deliver(self, response: Response) -> None:
        if self.on_response is not None:
            self.on_response(response)

    def _retransmit(self, interval: float) -> None:
        if self.state not in (State.CALLING, State.TRYING, State.PROCEEDING):
            return
        self._layer.send(self._data, self.dest)
        t2 = self._layer.timers.t2
        if self.invite:
            nxt = 2 * interval  # Timer A doubles without a cap
        else:
            nxt = t2 if self.state is State.PROCEEDING else min(2 * interval, t2)  # Timer E
        self._after(nxt, self._retransmit, nxt)

    def _timeout(self) -> None:
        if self.state in (State.CALLING, State.TRYING, State.PROCEEDING):
            logger.info("%s to %s timed out", self.request.method, self.dest)
            timeout = make_response(self.request, 408, "Request Timeout (no response)")
            self._terminate()
            self._deliver(timeout)
            if not self.final.done():
                self.final.set_result(timeout)

    def _terminate(self) -> None:
        if self.state is not State.TERMINATED:
            self.state = State.TERMINATED
            self._cancel_timers()
            self._layer.forget_client(self)


COMPLETED_LIMIT = 40_000
"""Completed non-INVITE transactions kept at most (about 30 MiB: ten seconds of the highest
REGISTER rate measured, each registration two transactions). Past it the oldest go before
their Timer J ends: a retransmission that late is then served as a new request, which for
REGISTER, OPTIONS and an in-dialog request is harmless."""

EXPIRY_BUCKET = 1.0
"""Completed transactions expire in buckets of this many seconds, one timer for all: an
entry lives between Timer J and Timer J plus one bucket."""


class CompletedTransactions:
    """Completed non-INVITE server transactions over UDP, kept only to answer retransmissions
    with the same response until Timer J (§17.2.2), in a form that costs little memory.

    At 2,000 registrations a second a 32 s Timer J holds 128,000 of them: each is one `str`
    key and one `bytes` value (the destination in front of the response), with no parsed
    message, timer handle or transaction object, and no object the cyclic collector tracks.
    Expiry is a FIFO of one-second buckets swept by one loop timer. The number held is capped
    (`COMPLETED_LIMIT`), so memory under any load is bounded; `on_drained` is called when a
    load that filled it ends (what held it is free again: a moment to give memory back)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = COMPLETED_LIMIT) -> None:
        self.loop = loop
        self.limit = limit
        self.evicted = 0
        """Entries dropped before their Timer J ended because the cap was reached."""
        self.high_water = 0
        """The most held since the last drain (or start)."""
        self._drained = 0
        """Set when the first drain stage of the load at `high_water` was reported."""
        self.on_drained: Callable[[], None] | None = None
        self._entries: dict[str, bytes] = {}
        self._buckets: collections.deque[tuple[float, collections.deque[str]]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and _joined(key) in self._entries

    def add(
        self, key: tuple[str, ...], response: bytes, dest: Destination, lifetime: float
    ) -> None:
        """Keep `response` for `key` for `lifetime` seconds (rounded up to the next bucket)."""
        entries, buckets = self._entries, self._buckets
        while len(entries) >= self.limit and buckets:
            self._evict_oldest()
        text = _joined(key)
        entries[text] = f"{dest.transport} {dest.host} {dest.port}\n".encode() + response
        self.high_water = max(self.high_water, len(entries))
        deadline = math.ceil((self.loop.time() + lifetime) / EXPIRY_BUCKET) * EXPIRY_BUCKET
        if buckets and buckets[-1][0] >= deadline:
            buckets[-1][1].append(text)  # never expires earlier than asked for
        else:
            buckets.append((deadline, collections.deque((text,))))
            if self._timer is None:
                self._timer = self.loop.call_at(deadline, self._expire)

    def get(self, key: tuple[str, ...]) -> tuple[bytes, Destination] | None:
        """The response kept for `key` and where it goes, or None."""
        value = self._entries.get(_joined(key))
        if value is None:
            return None
        head, _, response = value.partition(b"\n")
        transport, host, port = head.decode().split(" ")
        return response, Destination(transport, host, int(port))

    def _evict_oldest(self) -> None:
        """Drop the entry due first."""
        buckets = self._buckets
        keys = buckets[0][1]
        if self._entries.pop(keys.popleft(), None) is not None:
            self.evicted += 1
        if not keys:
            buckets.popleft()

    def _expire(self) -> None:
        now = self.loop.time()
        buckets, entries = self._buckets, self._entries
        while buckets and buckets[0][0] <= now:
            for text in buckets.popleft()[1]:
                entries.pop(text, None)
        self._timer = self.loop.call_at(buckets[0][0], self._expire) if buckets else None
        peak, held = self.high_water, len(entries)
        if peak < DRAIN_HIGH_WATER or held > peak // DRAINED[0]:
            return
        if held <= peak // DRAINED[1]:
            self.high_water, self._drained = held, 0  # this load is over
        elif self._drained < peak // DRAINED[0]:
            self._drained = peak // DRAINED[0]  # most of it gone: give back what it held now
        else:
            return
        self._entries = dict(entries)  # a dict never shrinks its table as keys go: copy it
        if self.on_drained is not None:
            self.on_drained()

    def clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._entries.clear()
        self._buckets.clear()


DRAIN_HIGH_WATER = 4_096
"""`CompletedTransactions.on_drained` follows only a load that filled the store this much."""
DRAINED = (8, 64)
"""... and is called twice: when the store is back to an eighth of that peak (most of what the
load held is free), and when it is back to a 64th (the load is over; what the last of it held is
free too). A steady load calls it never."""


def _joined(key: tuple[str, ...]) -> str:
    return "\x00".join(key)


class TransactionLayer:
    """Holds live transactions, matches messages to them, and the completed ones (Timer J)."""

    def __init__(self, send: Sender, timers: Timers | None = None) -> None:
        self.send = send
        self.timers = timers or Timers()
        self.loop = asyncio.get_running_loop()
        self.server: dict[tuple[str, ...], ServerTransaction] = {}
        self.client: dict[tuple[str, str], ClientTransaction] = {}
        self.completed = CompletedTransactions(self.loop)

    # -- server side ---------------------------------------------------------------------

    def match_server(self, key: tuple[str, ...]) -> ServerTransaction | None:
        """The live server transaction with this key (see `server_key`), if any."""
        return self.server.get(key)

    def new_server(
        self, request: Request, dest: Destination, key: tuple[str, ...] | None = None
    ) -> ServerTransaction:
        txn = ServerTransaction(self, request, dest, key)
        self.server[txn.key] = txn
        return txn

    def forget_server(self, txn: ServerTransaction) -> None:
        if self.server.get(txn.key) is txn:
            del self.server[txn.key]

    def remember_completed(
        self, key: tuple[str, ...], response: bytes, dest: Destination, delay: float
    ) -> None:
        """Keep a completed non-INVITE server transaction for `delay` (Timer J) as plain data
        (see `CompletedTransactions`)."""
        self.completed.add(key, response, dest, delay)

    def absorb(self, key: tuple[str, ...]) -> bool:
        """Answer a retransmission of a completed request again; False if it is not one."""
        entry = self.completed.get(key)
        if entry is None:
            return False
        self.send(*entry)
        return True

    # -- client side ---------------------------------------------------------------------

    def new_client(
        self,
        request: Request,
        dest: Destination,
        on_response: Callable[[Response], None] | None = None,
    ) -> ClientTransaction:
        txn = ClientTransaction(self, request, dest, on_response)
        self.client[txn.key] = txn
        txn.start()
        return txn

    def match_client(self, response: Response) -> ClientTransaction | None:
        """§17.1.3: top Via branch and CSeq method."""
        return self.client.get((response.via.branch or "", response.cseq.method))

    def forget_client(self, txn: ClientTransaction) -> None:
        if self.client.get(txn.key) is txn:
            del self.client[txn.key]

    def close(self) -> None:
        for s in list(self.server.values()):
            s._cancel_timers()
        for c in list(self.client.values()):
            c._cancel_timers()
        self.server.clear()
        self.client.clear()
        self.completed.clear()
