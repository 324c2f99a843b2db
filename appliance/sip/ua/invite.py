"""The client side of one INVITE (RFC 3261 §13.2, §9.1): digest retries and CANCEL.

The B2BUA uses it toward phones and trunks. A 401 or 407 is answered with a new INVITE when
credentials are given, and is then never seen by the user; every other response is. The ACK
for a non-2xx final is sent by the transaction (§17.1.1.3); the ACK for a 2xx, and the dialog,
belong to the user, which builds them from `request` (the INVITE that was answered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import HeaderField, Request, Response, make_response
from appliance.sip.transaction import ClientTransaction, Destination
from appliance.sip.ua.auth import ClientAuth, Credentials

logger = logging.getLogger(__name__)

MAX_CHALLENGES = 4
"""401s and 407s answered for one INVITE before the next one is handed to the user."""


def cancel_request(invite: Request) -> Request:
    """§9.1: the CANCEL for `invite`: its Request-URI, Call-ID, From, To, CSeq number, top
    Via (alone), Route headers and Max-Forwards, no body."""
    headers = [HeaderField("Via", invite.get_all("via")[0])]
    headers += [
        HeaderField(h.name, h.value)
        for h in invite.headers
        if h.key in ("max-forwards", "from", "to", "call-id", "route")
    ]
    headers += [
        HeaderField("CSeq", f"{invite.cseq.number} CANCEL"),
        HeaderField("Content-Length", "0"),
    ]
    return Request(headers=headers, method="CANCEL", uri=invite.uri)


class OutgoingInvite:
    """Sends one INVITE to `dest` and hands its responses to `on_response`.

    `request` is always the INVITE outstanding: after a digest retry, the new one (next CSeq,
    new branch, credentials), which is what a dialog is built from. Every provisional and final
    response but answered challenges reaches `on_response`, including 2xx retransmissions (the
    user re-sends its ACK for those) and a 408 made up when nothing answered in time.
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        request: Request,
        dest: Destination,
        on_response: Callable[[Response], None],
        credentials: Credentials | None = None,
    ) -> None:
        if request.method != "INVITE":
            raise ValueError(f"OutgoingInvite sends an INVITE, not {request.method}")
        self.endpoint = endpoint
        self.request = request
        self.dest = dest
        self.on_response = on_response
        self.provisional = False
        """A provisional response to the current INVITE has arrived."""
        self.final: Response | None = None
        """The final response handed to the user, once there is one."""
        self.cancelled = False
        """`cancel()` was called."""
        self.cancel_sent = False
        self._auth = ClientAuth(credentials) if credentials is not None else None
        self._txn: ClientTransaction | None = None
        self._branch = ""
        self._challenges = 0
        self._give_up: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._send()

    def cancel(self) -> None:
        """§9.1: CANCEL the INVITE: now if a provisional response came, else when the first
        one comes; never once a final response has come.

        A 2xx may still cross the CANCEL; it reaches `on_response` like any other, and the user
        must ACK it and end the call with a BYE (§15). If no final response comes within 64·T1
        of the CANCEL, the INVITE transaction is dropped and a 408 handed over instead (§9.1).
        """
        if self.cancelled:
            return
        self.cancelled = True
        if self.final is None and self.provisional:
            self._send_cancel()

    # -- internals -----------------------------------------------------------------------

    def _send(self) -> None:
        self.provisional = False
        self._txn = self.endpoint.request(self.request, self.dest, self._receive)
        self._branch = self._txn.branch

    def _send_cancel(self) -> None:
        if self.cancel_sent:
            return
        self.cancel_sent = True
        self.endpoint.request(cancel_request(self.request), self.dest)
        layer = self.endpoint.transactions
        self._give_up = layer.loop.call_later(layer.timers.b, self._cancel_unanswered)

    def _cancel_unanswered(self) -> None:
        self._give_up = None
        txn, self._txn = self._txn, None
        if txn is None or self.final is not None:
            return
        logger.info("INVITE %s: no final response to the CANCEL", self.request.call_id)
        txn.on_response = None
        self.endpoint.transactions.forget_client(txn)
        self._finish(make_response(self.request, 408, "Request Timeout (no answer to CANCEL)"))

    def _finish(self, response: Response) -> None:
        """The final response: the last thing we need the transaction or the timer for."""
        self.final = response
        self._txn = None  # (the transaction keeps calling us for 2xx retransmissions)
        if self._give_up is not None:
            self._give_up.cancel()
            self._give_up = None
        self.on_response(response)

    def _receive(self, response: Response) -> None:
        if response.via.branch != self._branch:
            return  # the INVITE that a digest retry replaced
        status = response.status
        if status < 200:
            self.provisional = True
            if self.cancelled and self.final is None:
                self._send_cancel()
            self.on_response(response)
            return
        if status in (401, 407) and self._retry(response):
            return
        if self.final is None:
            self._finish(response)
        else:
            self.on_response(response)  # a 2xx again, for the user to ACK again

    def _retry(self, response: Response) -> bool:
        """Answer a challenge with a new INVITE; False if it is for the user to see."""
        if self._auth is None or self.cancelled or self.final is not None:
            return False
        if self._challenges >= MAX_CHALLENGES:
            return False
        retry = self._auth.authorize(self.request, response)
        if retry is None:
            return False
        self._challenges += 1
        logger.debug("INVITE %s: answering %s", self.request.call_id, response.status)
        self.request = retry
        self._send()
        return True
