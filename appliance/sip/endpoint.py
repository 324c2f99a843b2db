"""The SIP endpoint: transports in, transactions, and dispatch of requests to their handlers.

It answers what no handler needs to see: retransmissions (absorbed by the transaction layer),
malformed requests (400 naming the problem), oversize ones (513), unsupported methods (405/501
with Allow), unsupported extensions (420) and OPTIONS (200 with Allow). Nothing a peer sends
makes it raise: every `SipParseError` becomes an answer or a logged drop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable

from appliance.sip.headers import split_list
from appliance.sip.message import (
    MAX_MESSAGE_SIZE,
    HeaderField,
    Request,
    Response,
    SipParseError,
    canonical_name,
    make_response,
    parse,
)
from appliance.sip.transaction import (
    ClientTransaction,
    Destination,
    ServerTransaction,
    Timers,
    TransactionLayer,
    server_key,
)
from appliance.sip.transport import Address, TcpLimits, TcpTransport, UdpTransport

logger = logging.getLogger(__name__)

SERVER = "pbx-appliance/0.1"

KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    }
)  # fmt: skip
"""Methods this stack knows (RFC 3261 and extensions): others get 501, these 405 if unhandled."""

Handler = Callable[[Request, ServerTransaction], None]

BIND_ATTEMPTS = 10
"""Tries at a free UDP+TCP port pair when listening on port 0."""


_TAG_BYTES = 6
_random_pool = b""


def new_tag() -> str:
    """A From/To tag: 48 cryptographically random bits (RFC 3261 §19.3 asks for 32 or more).

    Random bytes are drawn from the kernel 256 tags at a time: one getrandom() call per tag
    showed in profiles of the registrar under load."""
    global _random_pool
    if not _random_pool:
        _random_pool = os.urandom(_TAG_BYTES * 256)
    tag, _random_pool = _random_pool[:_TAG_BYTES], _random_pool[_TAG_BYTES:]
    return tag.hex()


class SipEndpoint:
    def __init__(self, *, timers: Timers | None = None, supported: Iterable[str] = ()) -> None:
        self.handlers: dict[str, Handler] = {"OPTIONS": self._options}
        self.on_ack: Callable[[Request], None] | None = None
        """Where an ACK that matches no transaction goes: the ACK for a 2xx (§13.2.2.4)
        belongs to its dialog, which the user of the endpoint keeps."""
        self.supported = frozenset(supported)
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self._tcp_limits = TcpLimits()
        self._timers = timers
        self._layer: TransactionLayer | None = None

    # -- life cycle ----------------------------------------------------------------------

    async def listen(self, host: str, port: int, *, tcp: bool = True) -> None:
        """Serve UDP (and TCP) on host:port. Must run inside the event loop that will serve."""
        loop = asyncio.get_running_loop()
        self._layer = TransactionLayer(self.send, self._timers)
        for attempt in range(BIND_ATTEMPTS):
            _, udp = await loop.create_datagram_endpoint(
                lambda: UdpTransport(self.receive), local_addr=(host, port)
            )
            self.udp = udp
            if not tcp:
                return
            self.tcp = TcpTransport(self.receive, self._tcp_limits)
            try:
                await self.tcp.listen(host, udp.local[1])
                return
            except OSError:
                # Port 0: the UDP port the kernel chose may be a TCP connection's local port;
                # take another pair. A port that was asked for is refused as it is.
                udp.close()
                self.tcp.close()
                self.udp = self.tcp = None
                if port != 0 or attempt == BIND_ATTEMPTS - 1:
                    raise

    @property
    def tcp_limits(self) -> TcpLimits:
        """The caps and timeouts of TCP connections from outside (see `TcpTransport`)."""
        return self._tcp_limits

    @tcp_limits.setter
    def tcp_limits(self, limits: TcpLimits) -> None:
        self._tcp_limits = limits
        if self.tcp is not None:
            self.tcp.limits = limits

    @property
    def transactions(self) -> TransactionLayer:
        assert self._layer is not None, "endpoint not listening"
        return self._layer

    @property
    def local(self) -> Address:
        assert self.udp is not None
        return self.udp.local

    def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
        if self._layer is not None:
            self._layer.close()

    # -- sending -------------------------------------------------------------------------

    def send(self, data: bytes, dest: Destination) -> None:
        transport = self.udp if dest.transport == "UDP" else self.tcp
        if transport is None:
            logger.info("no %s transport for %s", dest.transport, dest)
            return
        transport.send(data, (dest.host, dest.port))

    def request(
        self,
        request: Request,
        dest: Destination,
        on_response: Callable[[Response], None] | None = None,
    ) -> ClientTransaction:
        """Send a request in a new client transaction."""
        return self.transactions.new_client(request, dest, on_response)

    def response(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        return make_response(
            request, status, reason, to_tag=new_tag(),
            headers=[*headers, ("Server", SERVER)], body=body,
        )  # fmt: skip

    # -- receiving -----------------------------------------------------------------------

    def receive(
        self, transport: str, data: bytes, addr: Address, error: tuple[int, str] | None = None
    ) -> bool:
        """Entry point for every message a transport delivers. Return whether it was SIP this
        endpoint could read: a request with the mandatory headers (whatever its answer), or a
        response to one of its requests; not a keep-alive, nor anything answered 400 or 513."""
        if not data.strip(b"\r\n"):
            return False  # keep-alive (RFC 5626 §3.5.1 over UDP): nothing to answer
        source = Destination(transport, addr[0], addr[1])
        if error is not None:
            self._answer_unparsed(data, source, *error)
            return False
        if len(data) > MAX_MESSAGE_SIZE:
            self._answer_unparsed(data[:MAX_MESSAGE_SIZE], source, 513, "Message Too Large")
            return False
        try:
            msg = parse(data)
            if isinstance(msg, Response):
                return self._receive_response(msg)
            self._check(msg)
            key = server_key(msg)
        except SipParseError as exc:
            self._answer_unparsed(data, source, 400, f"Bad Request ({exc})")
            return False
        self._receive_request(msg, source, key)
        return True

    def _check(self, req: Request) -> None:
        """Mandatory headers (RFC 3261 §8.1.1) must be present; raises SipParseError.

        What the transaction layer matches on (Via, CSeq, Call-ID) is parsed here; From, To and
        the rest are parsed by whoever reads them, and a SipParseError there also becomes a 400.
        """
        req.vias  # noqa: B018
        cseq = req.cseq
        if cseq.method != req.method:
            raise SipParseError("CSeq method does not match the request")
        req.call_id  # noqa: B018
        for name in ("From", "To"):
            if not req.fields(name):
                raise SipParseError(f"missing {name} header")
        req.int_header("Max-Forwards")

    def _receive_response(self, response: Response) -> bool:
        txn = self.transactions.match_client(response)
        if txn is None:
            logger.debug("stray response %s dropped", response.status)
            return False
        txn.receive(response)
        return True

    def _receive_request(self, req: Request, source: Destination, key: tuple[str, ...]) -> None:
        layer = self.transactions
        live = layer.match_server(key)
        if live is not None:
            live.receive_retransmission(req)
            return
        if req.method == "ACK":
            if self.on_ack is not None:
                self.on_ack(req)
            return
        if layer.absorb(key):
            return
        dest = _response_destination(req, source)
        txn = layer.new_server(req, dest, key)
        txn.source = source
        handler = self.handlers.get(req.method)
        if handler is None:
            allow = ", ".join(sorted(self.handlers))
            status = 405 if req.method in KNOWN_METHODS else 501
            txn.respond(self.response(req, status, headers=[("Allow", allow)]))
            return
        unsupported = [ext for ext in req.get_all("require") if ext.lower() not in self.supported]
        if unsupported and req.method != "CANCEL":
            txn.respond(self.response(req, 420, headers=[("Unsupported", ", ".join(unsupported))]))
            return
        try:
            handler(req, txn)
        except SipParseError as exc:
            if txn.last_response is not None:
                raise  # a handler bug: it answered, then read a bad header
            txn.respond(self.response(req, 400, f"Bad Request ({exc})"))

    def _options(self, req: Request, txn: ServerTransaction) -> None:
        headers = [("Allow", ", ".join(sorted(self.handlers))), ("Accept", "application/sdp")]
        if self.supported:
            headers.append(("Supported", ", ".join(sorted(self.supported))))
        txn.respond(self.response(req, 200, headers=headers))

    def _answer_unparsed(self, data: bytes, source: Destination, status: int, reason: str) -> None:
        """Answer a request that did not parse, if it carries enough to be answered (§8.2.6)."""
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        lines = head.split("\r\n")
        start = lines[0].split(" ")
        if len(start) != 3 or start[0][:4].upper() == "SIP/" or start[0] == "ACK":
            logger.info("unanswerable message from %s:%s dropped: %s", source.host, source.port,
                        reason)  # fmt: skip
            return
        copied = [
            HeaderField(name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:])
            if canonical_name(name.strip()) in ("via", "from", "to", "call-id", "cseq")
        ]
        if not any(h.key == "via" for h in copied):
            logger.info("request without Via from %s:%s dropped: %s", source.host, source.port,
                        reason)  # fmt: skip
            return
        logger.info("%s from %s:%s: %s", status, source.host, source.port, reason)
        request = Request(headers=copied, method=start[0], uri=start[1])
        response = make_response(request, status, reason, to_tag=new_tag(),
                                 headers=[("Server", SERVER)])  # fmt: skip
        self.send(bytes(response), source)


def _response_destination(req: Request, source: Destination) -> Destination:
    """§18.2.2 with RFC 3581: stamp `received`/`rport` on the top Via and answer there."""
    via = req.via
    changed = False
    if via.host != source.host:
        via.params["received"] = source.host
        changed = True
    if "rport" in via.params:
        via.params["rport"] = str(source.port)
        changed = True
    if changed:
        for h in req.headers:
            if h.key == "via":
                rest = split_list(h.value)[1:]
                h.value = ", ".join([str(via), *rest])
                h.raw = None
                break
    if source.reliable:
        return source
    port = source.port if "rport" in via.params else (via.port or 5060)
    return Destination(source.transport, source.host, port)
