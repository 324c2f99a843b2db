"""A registration client (RFC 3261 §10.2): keep one contact bound at a registrar.

One Call-ID and a rising CSeq for the client's lifetime (§10.2.4); 401 and 407 answered with
digest; 423 answered with the registrar's Min-Expires (§10.2.8); the binding refreshed before
the granted expiry runs out; failures retried with exponential back-off and jitter, and a
Retry-After honoured. Timers run on the event loop; nothing blocks.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.sip.endpoint import SERVER, SipEndpoint, new_tag
from appliance.sip.message import Request, Response, SipParseError
from appliance.sip.transaction import ClientTransaction, Destination
from appliance.sip.ua import uac
from appliance.sip.ua.auth import ClientAuth, Credentials
from appliance.sip.uri import SipUri

logger = logging.getLogger(__name__)

REFRESH_MARGIN = 60.0
"""A binding is refreshed this many seconds before it runs out, or halfway for short ones:
after max(granted / 2, granted - 60) seconds. A refresh over UDP that times out (32 s) then
still leaves time for a retry before the binding is gone."""

MAX_RETRY_AFTER = 3600
"""A Retry-After is honoured up to an hour; a longer one is read as an hour."""

MAX_ROUNDS = 6
"""Challenges and 423s answered for one attempt before it counts as failed."""


class RegistrationState(enum.Enum):
    IDLE = "idle"
    """Not started, or stopped."""
    REGISTERING = "registering"
    """The first attempt since `start()` is under way."""
    REGISTERED = "registered"
    """The registrar accepted the binding (refreshes in flight keep this state)."""
    FAILED = "failed"
    """The registrar refused (a 3xx-6xx, or a challenge we could not answer); retrying later."""
    UNREACHABLE = "unreachable"
    """The last attempt had no answer at all; retrying later."""


@dataclass(frozen=True, slots=True)
class RegistrationConfig:
    """What a registration needs to know; checked when made (a ValueError says what is wrong)."""

    registrar: str
    """The Request-URI, `sip:host[:port]`."""
    dest: Destination
    """Where requests go: the registrar, or the outbound proxy if there is one."""
    aor: str
    """The address of record, `user@domain`, in From and To."""
    credentials: Credentials
    contact: str
    """Our contact URI, e.g. `sip:user@box:5060;line=abc123`, as the registrar will call it."""
    via: str
    """Our Via sent-by, `UDP host:port` (as in `Dialog.via`)."""
    expires: int = 300
    user_agent: str = SERVER
    retry_min: float = 5.0
    """The first retry after a failure comes after this long; each further one doubles it."""
    retry_max: float = 300.0
    """The cap of the back-off."""
    stop_timeout: float = 5.0
    """How long `stop()` waits for the answer to the un-REGISTER."""

    def __post_init__(self) -> None:
        uri = SipUri.parse(self.registrar, "registrar")
        if uri.scheme not in ("sip", "sips") or not uri.host:
            raise ValueError(f"registrar must be a sip: URI, not {self.registrar!r}")
        user, at, domain = self.aor.partition("@")
        if not (user and at and domain):
            raise ValueError(f"address of record must read user@domain, not {self.aor!r}")
        SipUri.parse(self.contact, "contact")
        uac.via_host(self.via)
        if self.expires < 1:
            raise ValueError("expires must be at least 1 second")
        if not 0 < self.retry_min <= self.retry_max:
            raise ValueError("retry_min must be above 0 and at most retry_max")


def retry_delay(failures: int, first: float, cap: float, jitter: float) -> float:
    """Back-off after `failures` failures in a row: `first` doubling up to `cap`, times a
    random factor from [0.5, 1] (`jitter` in [0, 1] picks it), as RFC 5626 §4.5 does, so that
    boxes that lost their registrar together do not come back together."""
    ceiling = min(cap, first * 2.0 ** max(failures - 1, 0))
    return ceiling * (0.5 + 0.5 * jitter)


class RegistrationClient:
    """Registers `config.contact` for `config.aor`, and keeps it registered until stopped.

    `on_change(client)` is called whenever `state`, `last_response` or `expires_at` changes.
    `registered_at` and `expires_at` are wall-clock times (time.time()), set only while
    REGISTERED: since when the registration has held, and when the binding last granted ends.
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        config: RegistrationConfig,
        on_change: Callable[[RegistrationClient], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.config = config
        self.on_change = on_change
        self.state = RegistrationState.IDLE
        self.last_response = ""
        self.registered_at: float | None = None
        self.expires_at: float | None = None
        self.call_id = uac.new_call_id(config.via)
        self.failures = 0
        """Failed attempts in a row (the back-off grows with them)."""
        self._tag = new_tag()
        self._cseq = 0
        self._expires = config.expires
        self._contact_key = SipUri.parse(config.contact).key()
        self._auth = ClientAuth(config.credentials)
        self._request: Request | None = None
        self._txn: ClientTransaction | None = None
        self._rounds = 0
        self._timer: asyncio.TimerHandle | None = None
        self._bound_until = 0.0
        """Loop time until which the registrar may hold our binding."""
        self._running = False
        self._unregistered: asyncio.Future[None] | None = None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Register now, and keep registered (refresh, retry) until `stop()`."""
        if self._unregistered is not None:
            raise RuntimeError("registration is being stopped; await stop() first")
        if self._running:
            return
        self._running = True
        self._update(RegistrationState.REGISTERING, self.last_response)
        self._attempt()

    def refresh_now(self) -> None:
        """Register again at once (not waiting for the refresh or the back-off): for when the
        registrar is known to have come back and may have lost our binding."""
        if not self._running or self._txn is not None or self._unregistered is not None:
            return
        self._cancel_timer()
        self._attempt()

    async def stop(self) -> None:
        """Stop refreshing and retrying, and remove our binding (Expires: 0) if the registrar
        may hold it, waiting for the answer at most `config.stop_timeout` seconds."""
        if not self._running:
            return
        self._running = False
        self._cancel_timer()
        in_flight = self._detach()
        loop = asyncio.get_running_loop()
        if in_flight or self._bound_until > loop.time():
            done = self._unregistered = loop.create_future()
            self._rounds = 0
            self._send(self._register(0))
            try:
                await asyncio.wait_for(asyncio.shield(done), self.config.stop_timeout)
            except TimeoutError:
                logger.info("registration %s: no answer to the un-REGISTER", self.config.aor)
            finally:
                self._detach()
                self._unregistered = None
        self._bound_until = 0.0
        self.registered_at = None
        self.expires_at = None
        self._update(RegistrationState.IDLE, self.last_response)

    # -- requests ------------------------------------------------------------------------

    def _register(self, expires: int) -> Request:
        cfg = self.config
        self._cseq += 1
        request = uac.request(
            "REGISTER", cfg.registrar, via=cfg.via, from_=f"<sip:{cfg.aor}>;tag={self._tag}",
            to=f"<sip:{cfg.aor}>", call_id=self.call_id, cseq=self._cseq,
            headers=[
                ("Contact", f"<{cfg.contact}>"),
                ("Expires", str(expires)),
                ("User-Agent", cfg.user_agent),
            ],
        )  # fmt: skip
        return self._auth.with_credentials(request)

    def _send(self, request: Request) -> None:
        self._request = request
        self._cseq = request.cseq.number
        self._txn = self.endpoint.request(request, self.config.dest, self._receive)

    def _attempt(self) -> None:
        self._timer = None  # (a fired handle still holds its callback: no cycle through it)
        self._rounds = 0
        self._send(self._register(self._expires))

    def _detach(self) -> bool:
        """Stop listening to the transaction in flight; True if there was one."""
        txn, self._txn = self._txn, None
        if txn is None:
            return False
        txn.on_response = None
        return True

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- responses -----------------------------------------------------------------------

    def _receive(self, response: Response) -> None:
        txn, request = self._txn, self._request
        if txn is None or request is None or response.status < 200:
            return
        if response.via.branch != txn.branch:
            return
        self._detach()  # the final answer: nothing more is wanted from this transaction
        try:
            if self._unregistered is not None:
                self._unregister_answered(request, response, txn)
            else:
                self._answered(request, response, txn)
        except SipParseError as exc:
            logger.info("registration %s: unreadable %s: %s", self.config.aor,
                        response.status, exc)  # fmt: skip
            text = f"{uac.status_text(response)} (unreadable: {exc})"
            if self._unregistered is not None:
                self._unregistered.set_result(None)
            else:
                self._failed(RegistrationState.FAILED, text)

    def _answered(self, request: Request, response: Response, txn: ClientTransaction) -> None:
        status = response.status
        if uac.timed_out(txn, response):
            self._failed(RegistrationState.UNREACHABLE, "timeout")
            return
        if 200 <= status < 300:
            self._registered(response)
            return
        self._rounds += 1
        if status in (401, 407) and self._rounds <= MAX_ROUNDS:
            retry = self._auth.authorize(request, response)
            if retry is not None:
                self._send(retry)
                return
        if status == 423 and self._rounds <= MAX_ROUNDS:
            minimum = response.int_header("Min-Expires")
            if minimum is not None and minimum > self._expires:
                logger.info("registration %s: expires raised to %d (423)", self.config.aor,
                            minimum)  # fmt: skip
                self._expires = minimum
                self._send(self._register(self._expires))
                return
        self._failed(RegistrationState.FAILED, uac.status_text(response), _retry_after(response))

    def _unregister_answered(
        self, request: Request, response: Response, txn: ClientTransaction
    ) -> None:
        assert self._unregistered is not None
        self._rounds += 1
        if response.status in (401, 407) and self._rounds <= MAX_ROUNDS:
            retry = self._auth.authorize(request, response)
            if retry is not None:
                self._send(retry)
                return
        if uac.timed_out(txn, response):
            logger.info("registration %s: un-REGISTER timed out", self.config.aor)
        elif response.status >= 300:
            logger.info("registration %s: un-REGISTER answered %s", self.config.aor,
                        uac.status_text(response))  # fmt: skip
        if not self._unregistered.done():
            self._unregistered.set_result(None)

    def _granted(self, response: Response) -> int:
        """§10.2.4: the expiry of our contact in the 200, else its Expires, else what we asked."""
        for contact in response.contacts:
            if contact.uri is not None and contact.uri.key() == self._contact_key:
                value = contact.expires
                if value is not None and value.isdigit() and value.isascii():
                    return int(value)
        header = response.int_header("Expires")
        return self._expires if header is None else header

    def _registered(self, response: Response) -> None:
        granted = self._granted(response)
        if granted <= 0:
            self._failed(RegistrationState.FAILED, f"{uac.status_text(response)} (not bound)")
            return
        loop = asyncio.get_running_loop()
        now = time.time()
        self.failures = 0
        self._bound_until = loop.time() + granted
        refresh = max(granted / 2, granted - REFRESH_MARGIN)
        self._cancel_timer()
        self._timer = loop.call_later(refresh, self._attempt)
        if self.state is not RegistrationState.REGISTERED:
            self.registered_at = now
        self.expires_at = now + granted
        self._update(RegistrationState.REGISTERED, uac.status_text(response), changed=True)

    def _failed(
        self, state: RegistrationState, text: str, retry_after: float | None = None
    ) -> None:
        cfg = self.config
        self.failures += 1
        if retry_after is not None and retry_after > 0:
            delay = retry_after
        else:
            delay = retry_delay(self.failures, cfg.retry_min, cfg.retry_max, random.random())
        self._cancel_timer()
        logger.info("registration %s at %s: %s; retrying in %.1f s", cfg.aor, cfg.registrar,
                    text, delay)  # fmt: skip
        self._timer = asyncio.get_running_loop().call_later(delay, self._attempt)
        self.registered_at = None
        self.expires_at = None
        self._update(state, text)

    def _update(self, state: RegistrationState, text: str, *, changed: bool = False) -> None:
        if state is self.state and text == self.last_response and not changed:
            return
        self.state, self.last_response = state, text
        if self.on_change is not None:
            self.on_change(self)


def _retry_after(response: Response) -> float | None:
    """RFC 3261 §20.33: `Retry-After: 120 (comment);duration=…` in seconds, or None."""
    value = response.get("Retry-After")
    if value is None:
        return None
    digits = value.strip().split(";")[0].split("(")[0].strip()
    if not digits.isdigit() or not digits.isascii():
        return None
    return float(min(int(digits), MAX_RETRY_AFTER))
