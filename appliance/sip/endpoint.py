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
import random
import ssl
from collections.abc import Callable, Iterable

from appliance.sip.guard import Guard
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
from appliance.sip.overload import NEW_WORK, RETRY_AFTER, OverloadControl, QuickRequest
from appliance.sip.transaction import (
    ClientTransaction,
    Destination,
    ServerTransaction,
    Timers,
    TransactionLayer,
    server_key,
)
from appliance.sip.transport import (
    Address,
    TcpLimits,
    TcpTransport,
    TlsTransport,
    UdpTransport,
)

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
    def __init__(
        self, *, timers: Timers | None = None, supported: Iterable[str] = (),
        guard: Guard | None = None,
    ) -> None:  # fmt: skip
        self.guard = guard
        """Bans and rate limits applied to every source before its messages are parsed (the
        registrar and the call engine report refusals to it); None: none (user agents)."""
        self.handlers: dict[str, Handler] = {"OPTIONS": self._options}
        self.on_ack: Callable[[Request], None] | None = None
        """Where an ACK that matches no transaction goes: the ACK for a 2xx (§13.2.2.4)
        belongs to its dialog, which the user of the endpoint keeps."""
        self.supported = frozenset(supported)
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self.tls: TlsTransport | None = None
        self._tcp_limits = TcpLimits()
        self._timers = timers
        self._layer: TransactionLayer | None = None
        self.overload = OverloadControl()
        """Refuses new INVITEs and REGISTERs with 503 while the UDP receive queue is deep."""
        self._overload_tag = new_tag()

    # -- life cycle ----------------------------------------------------------------------

    async def listen(self, host: str, port: int, *, tcp: bool = True) -> None:
        """Serve UDP (and TCP) on host:port. Must run inside the event loop that will serve."""
        loop = asyncio.get_running_loop()
        self._layer = TransactionLayer(self.send, self._timers)
        for attempt in range(BIND_ATTEMPTS):
            datagrams, udp = await loop.create_datagram_endpoint(
                lambda: UdpTransport(self.receive), local_addr=(host, port)
            )
            self.udp = udp
            udp.guard = self.guard
            self.overload.close()
            self.overload.watch(datagrams.get_extra_info("socket"))
            if not tcp:
                return
            self.tcp = TcpTransport(self.receive, self._tcp_limits)
            self.tcp.guard = self.guard
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

    async def listen_tls(
        self,
        host: str,
        port: int,
        server: ssl.SSLContext,
        client: ssl.SSLContext | None = None,
    ) -> None:
        """Serve SIP over TLS on host:port (port 0: a free one), after `listen`."""
        tls = TlsTransport(self.receive, server, client, self._tcp_limits)
        tls.guard = self.guard
        try:
            await tls.listen(host, port)
        except OSError:
            tls.close()
            raise
        self.tls = tls

    @property
    def tcp_limits(self) -> TcpLimits:
        """The caps and timeouts of TCP connections from outside (see `TcpTransport`)."""
        return self._tcp_limits

    @tcp_limits.setter
    def tcp_limits(self, limits: TcpLimits) -> None:
        self._tcp_limits = limits
        if self.tcp is not None:
            self.tcp.limits = limits
        if self.tls is not None:
            self.tls.limits = limits

    @property
    def transactions(self) -> TransactionLayer:
        assert self._layer is not None, "endpoint not listening"
        return self._layer

    @property
    def local(self) -> Address:
        assert self.udp is not None
        return self.udp.local

    def close(self) -> None:
        self.overload.close()
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
        if self.tls is not None:
            self.tls.close()
        if self._layer is not None:
            self._layer.close()

    # -- sending -------------------------------------------------------------------------

    def send(self, data: bytes, dest: Destination) -> None:
        transport: UdpTransport | TcpTransport | None
        if dest.transport == "UDP":
            transport = self.udp
        elif dest.transport == "TLS":
            transport = self.tls
        else:
            transport = self.tcp
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
        overload = self.overload
        if transport == "UDP":
            overload.datagram()
        if overload.refusing and data.startswith(NEW_WORK) and self._refuse(data, addr, transport):
            return True  # before anything else: while overloaded, every microsecond counts
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

    def _refuse(self, data: bytes, addr: Address, transport: str) -> bool:
        """Overloaded: answer a new INVITE or REGISTER with 503 from its bytes alone (see
        `appliance.sip.overload`). False for what must take the full path: a retransmission
        of a transaction held, a request in a dialog, one with credentials (unless the queue
        is severe), or one too unusual to read quickly."""
        request = QuickRequest.read(data)
        if request is None or request.in_dialog:
            return False
        if request.credentials and not self.overload.severe:
            return False
        layer = self.transactions
        if request.key in layer.server or request.key in layer.completed:
            return False
        source = Destination(transport, addr[0], addr[1])
        self.send(request.refusal(self._overload_tag, SERVER), request.destination(source))
        self.overload.note_refusal(layer.loop.time())
        return True

    def _refuse_parsed(self, req: Request, dest: Destination) -> bool:
        """Overloaded: refuse a new INVITE or REGISTER that `QuickRequest` could not read (a
        compact header, an odd Via), now that it is parsed, on the same terms as `_refuse`."""
        overload = self.overload
        if req.method not in ("INVITE", "REGISTER"):
            return False
        try:
            if req.to.tag is not None:
                return False  # in a dialog
        except SipParseError:
            return False  # the handler answers it 400
        if not overload.severe and ("authorization" in req or "proxy-authorization" in req):
            return False
        retry = str(random.randint(*RETRY_AFTER))
        headers = [("Retry-After", retry), ("Server", SERVER)]
        refusal = make_response(req, 503, "Service Unavailable (overloaded)",
                                to_tag=self._overload_tag, headers=headers)  # fmt: skip
        self.send(bytes(refusal), dest)
        overload.note_refusal(self.transactions.loop.time())
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
            if req.method == "ACK":  # to an INVITE's 2xx (Accepted state): its dialog reads it
                self._deliver_ack(live.receive_retransmission, req, source)
            else:
                live.receive_retransmission(req)
            return
        if req.method == "ACK":
            if self.on_ack is not None:
                self._deliver_ack(self.on_ack, req, source)
            return
        if layer.absorb(key):
            return
        dest = _response_destination(req, source)
        if self.overload.refusing and self._refuse_parsed(req, dest):
            return
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

    def _deliver_ack(
        self, deliver: Callable[[Request], None], req: Request, source: Destination
    ) -> None:
        """Hand an ACK to whoever reads it; one whose headers do not parse there (its To, say)
        is dropped and logged, since an ACK is never answered (RFC 3261 §17.2.1): a fuzzed
        ACK made the call engine raise out of the transport (tests/interop/test_malformed_sip)."""
        try:
            deliver(req)
        except SipParseError as exc:
            logger.info("ACK from %s:%s dropped: %s", source.host, source.port, exc)

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
