"""Overload control: notice that SIP arrives faster than the event loop serves it, and then
refuse new work early and cheaply (503 with Retry-After, RFC 3261 §21.5.4) so that what is
admitted is served at full speed instead of everything timing out together.

**The signal** is the depth of the SIP UDP socket's kernel receive queue (`SO_MEMINFO`, one
`getsockopt` every `SAMPLE_EVERY` datagrams and every `TICK` seconds). It is the work waiting,
and its delay is what makes phones and sipp retransmit (after T1, 500 ms), which is how a
saturated registrar used to collapse. A timer's own lateness says much less here: uvloop (libuv)
reads up to 32 datagrams per wake-up, so a timer is late by one batch, about 10 ms, whether the
offered load is 110 % or 300 % of what the loop can serve.

**The gate** refuses new requests while the queue is above `high` and admits again once it
has drained to `low` (half of it). The two thresholds are close on purpose: the queue never
empties while the load lasts, so the loop is never idle and what it serves is split between
full work and cheap refusals in just the proportion that holds the queue there. **The state**
(`overloaded`, shown by `pbx status` and logged once per episode) lasts from the first refusal
until `HOLD` seconds pass with none, so it does not flap with the gate.

**What is refused**: a new INVITE or REGISTER outside a dialog, read from the datagram's bytes
(`QuickRequest`) without the full parse, digest check or store access. A request carrying
credentials answers a challenge the box already spent work on, so it is admitted unless the
queue is `SEVERE` times deeper than `high`. Retransmissions of transactions the box holds,
in-dialog requests (ACK, BYE, re-INVITE) and all responses are never refused, and RTP has
sockets of its own: established calls keep working.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import struct
from typing import Any, NamedTuple

from appliance.sip.transaction import Destination

logger = logging.getLogger(__name__)

SO_MEMINFO = 55
"""Linux (4.6+) socket option: the socket's memory counters; the first is the receive queue
in bytes, skb overhead included (about 1,280 bytes for a 600-byte datagram on loopback)."""

QUEUE_KIB = 512
"""Default `sip.overload_queue_kib`: about 400 REGISTERs waiting, 80-100 ms of work at the
highest rate measured on the development machine (a box a few times slower waits a few times
longer), below the 500 ms after which clients retransmit, and above what a short stall of the
loop (a collection, a busy neighbour on the CPU) leaves behind."""

SEVERE = 4
"""Queue depth, in multiples of the threshold, beyond which even requests with credentials
are refused (an attacker could add a bogus Authorization header to every request)."""

SAMPLE_EVERY = 16
"""Datagrams between two readings of the queue depth."""

TICK = 0.1
"""Seconds between readings when few datagrams arrive (so the gate opens when a flood stops)."""

HOLD = 5.0
"""Seconds without a refusal after which the overload state ends."""

RETRY_AFTER = (5, 15)
"""Retry-After is drawn from this range (seconds), so refused phones do not return together."""

NEW_WORK = (b"INVITE ", b"REGISTER ")


class OverloadControl:
    """The overload detector and gate of one endpoint (see the module docstring)."""

    def __init__(self, queue_kib: int = QUEUE_KIB) -> None:
        self.high = queue_kib * 1024
        self.refusing = False
        """Whether new requests are refused now (the gate)."""
        self.severe = False
        """Whether requests with credentials are refused too."""
        self.overloaded = False
        """The state reported and logged: since the first refusal, until HOLD without one."""
        self.refused = 0
        self.episodes = 0
        self.depth = 0
        """The last reading of the queue, in bytes."""
        self.peak = 0
        """The deepest queue read since start-up, in bytes."""
        self._sock: socket.socket | None = None
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._last_refusal = 0.0
        self._episode_refused = 0
        self._episode_start = 0.0

    @property
    def low(self) -> int:
        return self.high // 2

    def set_threshold(self, queue_kib: int) -> None:
        self.high = queue_kib * 1024

    def watch(self, sock: Any) -> None:
        """Start reading the receive queue of `sock` (the SIP UDP socket; uvloop's stand-in
        socket object serves `getsockopt` too). A kernel without SO_MEMINFO disables the gate."""
        try:
            sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4)
        except OSError as exc:
            logger.warning("overload control off: cannot read the UDP receive queue (%s)", exc)
            return
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._tick = self._loop.call_later(TICK, self._on_tick)

    def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._sock = None

    def datagram(self) -> None:
        """Count one datagram received; every SAMPLE_EVERY, read the queue."""
        self._count += 1
        if self._count >= SAMPLE_EVERY:
            self._count = 0
            self.sample()

    def sample(self) -> None:
        """Read the queue depth and move the gate."""
        if self._sock is None:
            return
        try:
            depth = struct.unpack("I", self._sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4))[0]
        except OSError:  # the socket closed
            return
        self.update(depth)

    def update(self, depth: int) -> None:
        """Move the gate for a queue of `depth` bytes (the reading itself is `sample`)."""
        self.depth = depth
        self.peak = max(self.peak, depth)
        high = self.high
        if self.refusing:
            if depth <= self.low:
                self.refusing = False
        elif depth >= high:
            self.refusing = True
        if self.severe:
            self.severe = depth > high
        else:
            self.severe = depth >= SEVERE * high

    def note_refusal(self, now: float) -> None:
        self.refused += 1
        self._episode_refused += 1
        self._last_refusal = now
        if not self.overloaded:
            self.overloaded = True
            self.episodes += 1
            self._episode_start = now
            logger.warning(
                "overload: the SIP receive queue holds %d KiB; refusing new INVITEs and"
                " REGISTERs with 503 until it drains", self.depth // 1024,
            )  # fmt: skip

    def end_if_quiet(self, now: float) -> None:
        """End the overload state once HOLD seconds passed without a refusal."""
        if self.overloaded and now - self._last_refusal >= HOLD:
            self.overloaded = False
            logger.warning(
                "overload over: %d requests refused in %.1f s", self._episode_refused,
                self._last_refusal - self._episode_start,
            )  # fmt: skip
            self._episode_refused = 0

    def _on_tick(self) -> None:
        assert self._loop is not None
        self.sample()
        self.end_if_quiet(self._loop.time())
        self._tick = self._loop.call_later(TICK, self._on_tick)

    def status(self) -> dict[str, Any]:
        """For `pbx status` and the control socket's counters."""
        return {
            "state": "overloaded" if self.overloaded else "normal",
            "refusing": self.refusing,
            "refused": self.refused,
            "episodes": self.episodes,
            "queue_kib": self.depth // 1024,
            "peak_queue_kib": self.peak // 1024,
            "threshold_kib": self.high // 1024,
        }


_VIA = re.compile(
    rb"SIP/2\.0/[A-Za-z]+[ \t]+([A-Za-z0-9.\-]+)(?::([0-9]{1,5}))?((?:;[^;,\s]+)*)[ \t]*\Z"
)
"""The usual top Via (no IPv6 reference, no spaces in its parameters); others take the full
path. The host and port are those `Via.parse` finds, so the key is the same."""

_TAG = re.compile(rb";[ \t]*tag[ \t]*=", re.IGNORECASE)
_COPIED = (b"\r\nFrom:", b"\r\nTo:", b"\r\nCall-ID:", b"\r\nCSeq:")


class QuickRequest(NamedTuple):
    """What refusing a new request needs, read straight from its bytes: the transaction key
    (as `transaction.server_key` makes it), the lines a response copies (§8.2.6.2), whether
    it is in a dialog and whether it carries credentials.

    It looks only for the headers it needs, by their usual names (`Via`, `From`, `To`,
    `Call-ID`, `CSeq`, as phones write them), with `bytes.find`: 8-10 µs of CPU for a sipp
    REGISTER on the development machine, where the full parse and the key take 20-24 µs.
    `read` returns None for anything else (compact or odd-case names, folded lines, several
    Vias in one line, an RFC 2543 branch, a CSeq of another method, an IPv6 Via): the full
    parse then reads it, and the endpoint refuses it after that (`_refuse_parsed`)."""

    method: str
    key: tuple[str, ...]
    via_port: int | None
    rport: bool
    lines: tuple[bytes, ...]
    """The Via lines, then From, To, Call-ID and CSeq, as received."""
    to_index: int
    """Which of `lines` is To (the one a tag is added to)."""
    in_dialog: bool
    credentials: bool

    @classmethod
    def read(cls, data: bytes) -> QuickRequest | None:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = data[: end + 2]  # every line, the last too, ends with CRLF
        if b"\r\n " in head or b"\r\n\t" in head:
            return None  # a folded line
        lines: list[bytes] = []
        at = head.find(b"\r\nVia:")
        while at >= 0:
            eol = head.find(b"\r\n", at + 2)
            lines.append(head[at + 2 : eol])
            at = head.find(b"\r\nVia:", eol)
        vias = len(lines)
        if not vias:
            return None
        for name in _COPIED:
            at = head.find(name)
            if at < 0:
                return None
            lines.append(head[at + 2 : head.find(b"\r\n", at + 2)])
        method = head[: head.find(b" ")]
        cseq = lines[-1][5:].split()
        if len(cseq) != 2 or cseq[1] != method:
            return None
        via = _VIA.match(lines[0][4:].strip(b" \t"))
        if via is None:
            return None
        host, port_text, params = via.groups()
        branch = b""
        rport = False
        for param in params.split(b";")[1:]:
            name, _, value = param.partition(b"=")
            if name == b"branch":  # as Via.parse keys them: by the name as written
                branch = value
            elif name == b"rport":
                rport = True
        if not branch.startswith(b"z9hG4bK"):
            return None
        port = int(port_text) if port_text else None
        if port is not None and not 0 < port < 65536:
            return None
        text = method.decode("ascii", "replace")
        to = lines[vias + 1]
        tail = to.rfind(b">") + 1
        return cls(
            text,
            (branch.decode("ascii", "replace"), f"{host.decode().lower()}:{port or 5060}", text),
            port,
            rport,
            tuple(lines),
            vias + 1,
            b"ag" in to[tail:].lower() and _TAG.search(to, tail) is not None,  # (a To tag)
            b"\r\nAuthorization:" in head or b"\r\nProxy-Authorization:" in head,
        )

    def destination(self, source: Destination) -> Destination:
        """Where the answer goes (§18.2.2 with RFC 3581), as the endpoint's full path has it."""
        if source.reliable or self.rport:
            return source
        return Destination(source.transport, source.host, self.via_port or 5060)

    def refusal(self, to_tag: str, server: str) -> bytes:
        """The 503 with Retry-After: the request's lines copied, a To tag added. One tag for
        every such answer of a process keeps it the same for a retransmission (a stateless
        answer, §8.2.7); a 503 makes no dialog."""
        retry = random.randint(*RETRY_AFTER)
        out = [b"SIP/2.0 503 Service Unavailable (overloaded)"]
        out += self.lines
        out[1 + self.to_index] += b";tag=" + to_tag.encode()
        out.append(b"Retry-After: %d" % retry)
        out.append(b"Server: " + server.encode())
        out.append(b"Content-Length: 0\r\n\r\n")
        return b"\r\n".join(out)
