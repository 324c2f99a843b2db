"""Message-waiting indication (RFC 3842): phones learn whether their mailbox holds new voicemail.

A phone SUBSCRIBEs to the `message-summary` event package (RFC 6665) of its own mailbox,
authenticated with its extension's digest credentials like its INVITEs (407). The box answers
200 with the granted Expires and sends a NOTIFY at once, then one on every change of the
mailbox, with an `application/simple-message-summary` body:

    Messages-Waiting: yes
    Message-Account: sip:101@box
    Voice-Message: 1/0 (0/0)

(new/old, then the urgent ones of each: the box has no urgent messages). A refresh SUBSCRIBE
in the dialog renews it; `Expires: 0` ends it with a last NOTIFY (`terminated`). A phone that
does not subscribe gets an unsolicited NOTIFY (out of any dialog) at each of its registered
contacts when its mailbox has `unsolicited_mwi`, the way many desk phones expect.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.sip.dialog import Dialog, DialogId, new_branch, request_dialog_id
from appliance.sip.digest import Verdict
from appliance.sip.endpoint import SERVER, new_tag
from appliance.sip.headers import NameAddr
from appliance.sip.message import HeaderField, Request, Response
from appliance.sip.transaction import Destination, ServerTransaction

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine

logger = logging.getLogger(__name__)

EVENT = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"
MIN_EXPIRES = 60
"""Shorter subscriptions are refused with 423 and this Min-Expires (RFC 6665 §4.2.1.1)."""
MAX_EXPIRES = 3600
DEFAULT_EXPIRES = 3600


def summary(account: str, new: int, old: int) -> bytes:
    """The RFC 3842 §5.2 body for a mailbox with `new` and `old` messages."""
    waiting = "yes" if new else "no"
    return (
        f"Messages-Waiting: {waiting}\r\nMessage-Account: {account}\r\n"
        f"Voice-Message: {new}/{old} (0/0)\r\n"
    ).encode()


@dataclass(slots=True)
class Subscription:
    """One phone's subscription to one mailbox."""

    mailbox: str
    dialog: Dialog
    expires: int
    timer: asyncio.TimerHandle | None = None
    ended: bool = False


class MessageWaiting:
    """Serves SUBSCRIBE for `message-summary` and NOTIFYs the phones; `counts(mailbox)` gives
    (new, old) as the box knows them now (the voicemail feature's in-memory counts)."""

    def __init__(self, engine: CallEngine, counts: Callable[[str], tuple[int, int]]) -> None:
        self.engine = engine
        self.counts = counts
        self.subscriptions: dict[DialogId, Subscription] = {}
        self.unsolicited: Callable[[str], bool] = lambda _mailbox: False
        """Whether a mailbox wants unsolicited NOTIFYs (its `unsolicited_mwi`)."""
        self.sent = 0

    # -- SUBSCRIBE ------------------------------------------------------------------------

    def on_subscribe(self, req: Request, txn: ServerTransaction) -> None:
        event = (req.get("Event") or "").split(";")[0].strip().lower()
        if event != EVENT:
            txn.respond(self._response(req, 489, headers=[("Allow-Events", EVENT)]))
            return
        expires = req.int_header("Expires")
        expires = DEFAULT_EXPIRES if expires is None else min(expires, MAX_EXPIRES)
        if req.to.tag:
            self._refresh(req, txn, expires)
            return
        user = self._authenticate(req, txn)
        if user is None:
            return
        uri = req.to.uri
        mailbox = uri.user if uri is not None and uri.user else user
        if mailbox != user:
            txn.respond(self._response(req, 403, "Forbidden (only your own mailbox)"))
            return
        if 0 < expires < MIN_EXPIRES:
            txn.respond(self._response(req, 423, headers=[("Min-Expires", str(MIN_EXPIRES))]))
            return
        transport = txn.dest.transport
        dialog = Dialog.as_uas(req, new_tag(), txn.dest, self.engine.via(transport),
                               self.engine.contact(transport))  # fmt: skip
        txn.respond(dialog.response(req, 200, headers=self._granted(expires)))
        sub = Subscription(mailbox, dialog, expires)
        if expires == 0:  # a fetch (RFC 6665 §4.4.3): one NOTIFY, no subscription
            self._notify(sub, "terminated;reason=timeout")
            return
        self.subscriptions[dialog.id] = sub
        self._arm(sub)
        logger.info("extension %s subscribed to its voicemail (%d s)", mailbox, expires)
        self._notify(sub)

    def _refresh(self, req: Request, txn: ServerTransaction, expires: int) -> None:
        sub = self.subscriptions.get(request_dialog_id(req))
        if sub is None:
            txn.respond(self._response(req, 481))
            return
        if not sub.dialog.accept_remote_seq(req):
            txn.respond(sub.dialog.response(req, 500, "Server Internal Error (CSeq out of order)"))
            return
        if 0 < expires < MIN_EXPIRES:
            txn.respond(sub.dialog.response(req, 423, headers=[("Min-Expires", str(MIN_EXPIRES))]))
            return
        sub.dialog.refresh_target(req)
        txn.respond(sub.dialog.response(req, 200, headers=self._granted(expires)))
        sub.expires = expires
        if expires == 0:
            self._end(sub, "terminated;reason=timeout")
            logger.info("extension %s unsubscribed from its voicemail", sub.mailbox)
            return
        self._arm(sub)
        self._notify(sub)

    def _authenticate(self, req: Request, txn: ServerTransaction) -> str | None:
        """The subscriber's extension, proven by digest (RFC 7616) as for a call; else the
        request is answered (407 challenge, 403, 400)."""
        engine = self.engine
        auth = req.get("Proxy-Authorization")
        claimed = req.from_.uri.user if req.from_.uri else None
        if auth is None:
            self._challenge(req, txn)
            return None
        result = engine.digest.verify(
            auth, "SUBSCRIBE", engine.registrar.ha1, expected_user=claimed or ""
        )
        if result.verdict in (Verdict.CHALLENGE, Verdict.STALE):
            self._challenge(req, txn, stale=result.verdict is Verdict.STALE)
            return None
        if result.verdict is Verdict.OK:
            return claimed
        if result.verdict is Verdict.BAD_REQUEST:
            txn.respond(self._response(req, 400, f"Bad Request ({result.reason})"))
        else:
            engine.trunks.gate.refused(txn.dest.host, f"SUBSCRIBE from {claimed}: "
                                       f"{result.reason}", "unauthenticated")  # fmt: skip
            txn.respond(self._response(req, 403))
        return None

    def _challenge(self, req: Request, txn: ServerTransaction, stale: bool = False) -> None:
        headers = [("Proxy-Authenticate", c) for c in self.engine.digest.challenges(stale=stale)]
        txn.respond(self._response(req, 407, headers=headers))

    def _response(
        self, req: Request, status: int, reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:  # fmt: skip
        return self.engine.endpoint.response(req, status, reason, headers or [])

    @staticmethod
    def _granted(expires: int) -> list[tuple[str, str]]:
        return [("Expires", str(expires)), ("Event", EVENT), ("Server", SERVER)]

    def _arm(self, sub: Subscription) -> None:
        if sub.timer is not None:
            sub.timer.cancel()
        sub.timer = asyncio.get_running_loop().call_later(sub.expires, self._expired, sub)

    def _expired(self, sub: Subscription) -> None:
        sub.timer = None
        if not sub.ended:
            logger.info("voicemail subscription of %s expired", sub.mailbox)
            self._end(sub, "terminated;reason=timeout")

    def _end(self, sub: Subscription, state: str) -> None:
        sub.ended = True
        if sub.timer is not None:
            sub.timer.cancel()
            sub.timer = None
        self.subscriptions.pop(sub.dialog.id, None)
        self._notify(sub, state)

    # -- NOTIFY ---------------------------------------------------------------------------

    def account(self, mailbox: str) -> str:
        return f"sip:{mailbox}@{self.engine.box}"

    def _notify(self, sub: Subscription, state: str | None = None) -> None:
        new, old = self.counts(sub.mailbox)
        if state is None:
            remaining = sub.expires
            if sub.timer is not None:
                loop = asyncio.get_running_loop()
                remaining = max(int(sub.timer.when() - loop.time()), 0)
            state = f"active;expires={remaining}"
        body = summary(self.account(sub.mailbox), new, old)
        req = sub.dialog.request("NOTIFY", [
            ("Event", EVENT), ("Subscription-State", state),
            ("Content-Type", CONTENT_TYPE), ("Server", SERVER),
        ], body)  # fmt: skip

        def answered(resp: Response) -> None:
            if resp.status in (481, 408) or resp.status >= 500:
                logger.info("voicemail subscription of %s gone (%d to NOTIFY)",
                            sub.mailbox, resp.status)  # fmt: skip
                sub.ended = True
                if sub.timer is not None:
                    sub.timer.cancel()
                self.subscriptions.pop(sub.dialog.id, None)

        self.sent += 1
        self.engine.endpoint.request(req, sub.dialog.dest, answered)

    def changed(self, mailbox: str) -> None:
        """The mailbox's counts changed: NOTIFY its subscribers, or its phones unsolicited."""
        subscribed = [s for s in self.subscriptions.values() if s.mailbox == mailbox]
        for sub in subscribed:
            self._notify(sub)
        if not subscribed and self.unsolicited(mailbox):
            self._unsolicited(mailbox)

    def _unsolicited(self, mailbox: str) -> None:
        """An out-of-dialog NOTIFY to each registered contact of the extension (the flow it
        registered from, as calls to it go)."""
        engine = self.engine
        new, old = self.counts(mailbox)
        body = summary(self.account(mailbox), new, old)
        for reg in engine.registrar.bindings(mailbox):
            transport, _, hostport = reg.source.partition(" ")
            host, _, port = hostport.rpartition(":")
            contact = NameAddr.parse(reg.contact, "Contact").uri
            if contact is None:
                continue
            headers = [
                ("Via", f"SIP/2.0/{engine.via(transport)};branch={new_branch()};rport"),
                ("Max-Forwards", "70"),
                ("From", f"<{self.account(mailbox)}>;tag={new_tag()}"),
                ("To", f"<sip:{mailbox}@{engine.box}>"),
                ("Call-ID", f"{uuid.uuid4().hex}@{engine.advertised}"),
                ("CSeq", "1 NOTIFY"),
                ("Contact", engine.contact(transport)),
                ("Event", EVENT),
                ("Subscription-State", "active"),
                ("Content-Type", CONTENT_TYPE),
                ("Server", SERVER),
                ("Content-Length", str(len(body))),
            ]
            req = Request(headers=[HeaderField(n, v) for n, v in headers], body=body,
                          method="NOTIFY", uri=str(contact))  # fmt: skip
            self.sent += 1
            engine.endpoint.request(req, Destination(transport, host.strip("[]"), int(port)))

    def close(self) -> None:
        for sub in list(self.subscriptions.values()):
            if sub.timer is not None:
                sub.timer.cancel()
        self.subscriptions.clear()
