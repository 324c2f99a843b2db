"""OPTIONS keep-alives (RFC 3261 §11): is a peer answering, and how fast.

Any response counts as an answer, even an error: it shows the peer is there. Only the silence of
a whole transaction (64·T1 over UDP) makes it unreachable. One periodic OPTIONS is outstanding
at a time; `ping()` sends one more on demand (the "test" button).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from appliance.sip.endpoint import SERVER, SipEndpoint, new_tag
from appliance.sip.message import Response
from appliance.sip.transaction import ClientTransaction, Destination
from appliance.sip.ua import uac

logger = logging.getLogger(__name__)


class KeepAlive:
    """Sends OPTIONS to `uri` at `dest` every `interval` seconds, from Via sent-by `via`.

    `reachable` is None until the first answer or timeout; `rtt_ms` is the round trip of the
    last answer (None after a timeout); `last_response` reads `200 OK` or `timeout`.
    `on_change(keepalive)` is called when `reachable` changes.
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        dest: Destination,
        uri: str,
        via: str,
        interval: float,
        on_change: Callable[[KeepAlive], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("keep-alive interval must be above 0")
        self.endpoint = endpoint
        self.dest = dest
        self.uri = uri
        self.via = via
        self.interval = interval
        self.on_change = on_change
        self.reachable: bool | None = None
        self.rtt_ms: float | None = None
        self.last_response = ""
        self.call_id = uac.new_call_id(via)
        self._from = f"<sip:{via.split()[1]}>;tag={new_tag()}"
        self._cseq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._periodic: ClientTransaction | None = None
        self._sent_at = 0.0
        self._pings: dict[str, tuple[ClientTransaction, asyncio.Future[float]]] = {}

    def start(self) -> None:
        """Send the first OPTIONS now, and one every `interval` seconds after."""
        if self._timer is None and self._periodic is None:
            self._tick()

    def stop(self) -> None:
        """Send no more; answers still on their way are ignored, pings waiting get TimeoutError."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._periodic is not None:
            self._periodic.on_response = None
            self._periodic = None
        for txn, future in self._pings.values():
            txn.on_response = None
            if not future.done():
                future.set_exception(TimeoutError("keep-alive stopped"))
        self._pings.clear()

    async def ping(self) -> float:
        """Send one OPTIONS now; the round trip in milliseconds of its answer, whatever it is.

        Raises TimeoutError when no answer comes within the transaction's time (64·T1)."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        txn = self._send(lambda txn, response, rtt: self._pinged(txn, future, response, rtt))
        self._pings[txn.branch] = (txn, future)
        return await future

    # -- internals -----------------------------------------------------------------------

    def _send(
        self, done: Callable[[ClientTransaction, Response, float | None], None]
    ) -> ClientTransaction:
        self._cseq += 1
        request = uac.request(
            "OPTIONS", self.uri, via=self.via, from_=self._from, to=f"<{self.uri}>",
            call_id=self.call_id, cseq=self._cseq,
            headers=[("Accept", "application/sdp"), ("User-Agent", SERVER)],
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        sent = loop.time()
        txn: ClientTransaction | None = None

        def on_response(response: Response) -> None:
            if response.status < 200 or txn is None:
                return
            txn.on_response = None  # one final answer is all we want (and no cycle is left)
            rtt = None if uac.timed_out(txn, response) else (loop.time() - sent) * 1000.0
            self._record(response, rtt)
            done(txn, response, rtt)

        txn = self.endpoint.request(request, self.dest, on_response)
        return txn

    def _record(self, response: Response, rtt: float | None) -> None:
        was = self.reachable
        self.reachable = rtt is not None
        self.rtt_ms = rtt
        self.last_response = "timeout" if rtt is None else uac.status_text(response)
        if rtt is None:
            logger.info("OPTIONS to %s at %s: no answer", self.uri, self.dest)
        if was is not self.reachable and self.on_change is not None:
            self.on_change(self)

    def _tick(self) -> None:
        self._timer = None
        self._sent_at = asyncio.get_running_loop().time()
        self._periodic = self._send(self._ticked)

    def _ticked(self, txn: ClientTransaction, response: Response, rtt: float | None) -> None:
        if txn is not self._periodic:
            return
        self._periodic = None
        loop = asyncio.get_running_loop()
        wait = self.interval - (loop.time() - self._sent_at)
        self._timer = loop.call_later(max(wait, 0.0), self._tick)

    def _pinged(
        self,
        txn: ClientTransaction,
        future: asyncio.Future[float],
        response: Response,
        rtt: float | None,
    ) -> None:
        self._pings.pop(txn.branch, None)
        if future.done():
            return
        if rtt is None:
            future.set_exception(TimeoutError(f"no answer from {self.uri}"))
        else:
            future.set_result(rtt)
