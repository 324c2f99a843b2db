"""The registrar (RFC 3261 §10.3) with digest authentication (RFC 7616/8760).

The registrar serves from in-memory copies of the credentials and bindings and writes every
binding change through to the store (committed before the 200 OK goes out), so the store is the
one truth that survives restarts and that every other part of the box reads. Given the store's
`Writer`, it commits from the writer's thread, and the event loop never waits for SQLite.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appliance.sip.digest import DigestServer, Verdict
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request, Response, SipParseError
from appliance.sip.transaction import ServerTransaction
from appliance.store import extensions, registrations
from appliance.store.database import Database
from appliance.store.registrations import Registration

if TYPE_CHECKING:
    from appliance.store.db import Writer

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RegistrarConfig:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_contacts: int = 10


COMMIT_DELAY = 0.005
"""Group commit: bindings changed within this many seconds share one SQLite commit, and their
200 OKs are sent once it is done, so a phone is never told of a binding that a crash could lose."""


Held = tuple[Request, ServerTransaction, Response]
"""A REGISTER whose 200 OK waits for its bindings' commit."""


class Registrar:
    """Handles REGISTER for the extensions in the store; plug into `SipEndpoint.handlers`."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        db: Database,
        digest: DigestServer,
        config: RegistrarConfig | None = None,
        clock: Callable[[], float] = time.time,
        writer: Writer | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.db = db
        self.digest = digest
        self.config = config or RegistrarConfig()
        self._clock = clock
        self._writer = writer
        self._held: list[Held] = []
        self._pending: dict[tuple[str, str], Registration | None] = {}
        self._commit_timer: asyncio.TimerHandle | None = None
        self._credentials: dict[str, extensions.Credentials] = {}
        self._bindings: dict[str, dict[str, Registration]] = {}
        self.reload()

    def reload(self) -> None:
        """Re-read credentials and bindings from the store (after the CLI or web changed them).

        The registrar serves from these copies and writes every change through to the store
        before answering, so the store stays the truth that other processes read.
        """
        self.flush(wait=True)  # pending changes first, or the copies would lose them
        self._credentials = extensions.all_credentials(self.db)
        bindings: dict[str, dict[str, Registration]] = {}
        for r in registrations.all_current(self.db, self._clock()):
            bindings.setdefault(r.aor, {})[r.contact_key] = r
        self._bindings = bindings

    def use_credentials(self, credentials: dict[str, extensions.Credentials]) -> None:
        """Serve from `credentials` (read by `extensions.all_credentials` in any thread).

        The bindings in memory stay: only this registrar changes them, except that deleting
        an extension (or restoring a backup without it) deletes its bindings in the store, so
        here they go with the credentials."""
        self._credentials = credentials
        for aor in [aor for aor in self._bindings if aor not in credentials]:
            del self._bindings[aor]

    def bindings(self, aor: str) -> list[Registration]:
        """The current bindings of an extension."""
        now = self._clock()
        return [r for r in self._bindings.get(aor, {}).values() if r.expires_at > now]

    def summary(self) -> list[dict[str, Any]]:
        """Every current binding as people read them, from memory (no SQLite read)."""
        now = self._clock()
        current = [r for contacts in self._bindings.values() for r in contacts.values()
                   if r.expires_at > now]  # fmt: skip
        current.sort(key=lambda r: (r.aor, r.registered_at))
        return registrations.describe(current, now)

    def purge(self) -> int:
        """Forget expired bindings here and in the store; return how many."""
        now = self._clock()
        for aor, contacts in list(self._bindings.items()):
            for key in [k for k, r in contacts.items() if r.expires_at <= now]:
                del contacts[key]
            if not contacts:
                del self._bindings[aor]
        return registrations.purge_expired(self.db, now)

    def ha1(self, user: str, algorithm: str) -> str | None:
        """An extension's digest HA1 for `algorithm`, for whoever checks its credentials."""
        creds = self._credentials.get(user)
        if creds is None or creds.realm != self.digest.realm:
            return None
        return creds.ha1[algorithm]

    def __call__(self, req: Request, txn: ServerTransaction) -> None:
        self._register(req, txn)

    def _reply(
        self, req: Request, txn: ServerTransaction, status: int, reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:  # fmt: skip
        txn.respond(self.endpoint.response(req, status, reason, headers or []))

    def _challenge(self, req: Request, txn: ServerTransaction, stale: bool = False) -> None:
        headers = [("WWW-Authenticate", c) for c in self.digest.challenges(stale=stale)]
        self._reply(req, txn, 401, None, headers)

    def _register(self, req: Request, txn: ServerTransaction) -> None:
        # §10.3 steps 1-3: this registrar serves any domain it is reached at; authenticate
        # first (a challenge needs nothing else of the request), then step 4: the To user.
        auth = req.get("Authorization")
        if auth is None:
            self._challenge(req, txn)
            return
        to_uri = req.to.uri
        if to_uri is None or to_uri.scheme not in ("sip", "sips") or not to_uri.user:
            self._reply(req, txn, 404, "Not Found (To must be sip:EXTENSION@...)")
            return
        aor = to_uri.user
        result = self.digest.verify(auth, "REGISTER", self.ha1, expected_user=aor)
        if result.verdict is Verdict.CHALLENGE:
            self._challenge(req, txn)
            return
        if result.verdict is Verdict.STALE:
            self._challenge(req, txn, stale=True)
            return
        guard = self.endpoint.guard
        if result.verdict is Verdict.BAD_REQUEST:
            if guard is not None:
                guard.refused(txn.dest.host, f"REGISTER {aor}: {result.reason}", "unauthenticated")
            self._reply(req, txn, 400, f"Bad Request ({result.reason})")
            return
        if result.verdict is Verdict.FORBIDDEN:
            logger.info("REGISTER %s from %s: %s", aor, txn.dest.host, result.reason)
            if guard is not None:  # the same reasons as the call engine's (`Guard.refused`)
                known = self.ha1(result.username or "", "MD5") is not None
                guard.refused(
                    txn.dest.host, f"REGISTER {aor}: {result.reason}",
                    "wrong_password" if known else "unauthenticated",
                )  # fmt: skip
            self._reply(req, txn, 403)
            return
        if guard is not None:
            guard.authenticated(txn.dest.host)
        self._bind(req, txn, aor)

    def _expires_of(self, req: Request, contact: NameAddr, header: int | None) -> int:
        value = contact.expires
        if value is not None:
            if not value.isdigit() or not value.isascii() or len(value) > 10:
                raise SipParseError("invalid expires parameter in Contact")
            return int(value)
        return self.config.default_expires if header is None else header

    def _bind(self, req: Request, txn: ServerTransaction, aor: str) -> None:
        """§10.3 steps 5-8."""
        cfg = self.config
        now = self._clock()
        header_expires = req.int_header("Expires")
        contacts = req.contacts
        call_id, cseq = req.call_id, req.cseq.number
        existing = {r.contact_key: r for r in self.bindings(aor)}
        deletes: list[str] = []
        upserts: list[Registration] = []
        if any(c.is_star for c in contacts):
            # Step 6: `*` only alone and with Expires: 0.
            if len(contacts) != 1 or header_expires != 0:
                self._reply(req, txn, 400, "Bad Request (Contact: * needs Expires: 0 alone)")
                return
            for key, r in existing.items():
                if r.call_id == call_id and cseq <= r.cseq:
                    self._reply(req, txn, 400, "Bad Request (CSeq not above the last one)")
                    return
                deletes.append(key)
        else:
            source = f"{txn.dest.transport} {txn.dest.host}:{txn.dest.port}"
            user_agent = (req.get("User-Agent") or "")[:200]
            seen: set[str] = set()
            for contact in contacts:
                assert contact.uri is not None
                expires = self._expires_of(req, contact, header_expires)
                if 0 < expires < cfg.min_expires:
                    self._reply(req, txn, 423, headers=[("Min-Expires", str(cfg.min_expires))])
                    return
                key = contact.uri.key()
                if key in seen:
                    continue
                seen.add(key)
                old = existing.get(key)
                if old is not None and old.call_id == call_id and cseq <= old.cseq:
                    self._reply(req, txn, 400, "Bad Request (CSeq not above the last one)")
                    return
                if expires == 0:
                    if old is not None:
                        deletes.append(key)
                    continue
                expires = min(expires, cfg.max_expires)
                q = _q_value(contact)
                contact.params.pop("expires", None)
                upserts.append(
                    Registration(
                        aor, key, str(contact), now + expires, call_id, cseq, q,
                        txn.dest.transport, source, user_agent,
                        old.registered_at if old is not None else now,
                    )
                )  # fmt: skip
            kept = (set(existing) - set(deletes)) | {u.contact_key for u in upserts}
            if len(kept) > cfg.max_contacts:
                self._reply(req, txn, 403, f"Forbidden (at most {cfg.max_contacts} contacts)")
                return
        for key in deletes:
            self._pending[aor, key] = None
        for u in upserts:
            self._pending[aor, u.contact_key] = u
        for key in deletes:
            existing.pop(key, None)
        for u in upserts:
            existing[u.contact_key] = u
        if existing:
            self._bindings[aor] = dict(existing)
        else:
            self._bindings.pop(aor, None)
        # Stored contacts are name-addrs without `expires`: a header parameter appends.
        headers = [
            ("Contact", f"{r.contact};expires={max(int(r.expires_at - now + 0.5), 0)}")
            for r in existing.values()
        ]
        headers.append(("Date", _http_date(int(now))))
        response = self.endpoint.response(req, 200, None, headers)
        if not self._pending:
            txn.respond(response)  # nothing to store, nothing waiting: answer now
            return
        self._held.append((req, txn, response))
        if self._commit_timer is None:
            loop = asyncio.get_running_loop()
            self._commit_timer = loop.call_later(COMMIT_DELAY, self.flush)

    def flush(self, wait: bool = False) -> None:
        """Write the pending binding changes in one transaction, then send the 200 OKs that
        waited for them (or 500 with Retry-After, and the store's state back in memory, if the
        write failed).

        With a writer the transaction runs in its thread and the answers follow on the loop;
        `wait` writes here instead, after whatever the writer still holds (at shutdown and
        before a reload, which must read what was written)."""
        if self._commit_timer is not None:
            self._commit_timer.cancel()
            self._commit_timer = None
        pending, self._pending = self._pending, {}
        held, self._held = self._held, []
        if not pending:
            self._answer(held, None)
            return
        upserts = [r for r in pending.values() if r is not None]
        deletes = [key for key, r in pending.items() if r is None]
        writer = self._writer
        if writer is None or wait:
            if writer is not None:
                writer.drain()
            try:
                registrations.write(self.db, upserts, deletes)
            except sqlite3.Error as exc:
                self._answer(held, exc)
            else:
                self._answer(held, None)
            return
        loop = asyncio.get_running_loop()

        def write(db: Database) -> None:
            try:
                registrations.write(db, upserts, deletes)
            except sqlite3.Error as exc:
                loop.call_soon_threadsafe(self._answer, held, exc)
            else:
                loop.call_soon_threadsafe(self._answer, held, None)

        writer.submit(f"{len(pending)} binding changes", write)

    def _answer(self, held: list[Held], failure: sqlite3.Error | None) -> None:
        if failure is not None:
            logger.error("could not store the binding changes of %d REGISTERs: %s",
                         len(held), failure)  # fmt: skip
            self.reload()
            for req, txn, _ in held:
                self._reply(req, txn, 500, "Server Internal Error (bindings not stored)",
                            [("Retry-After", "5")])  # fmt: skip
            return
        for _, txn, response in held:
            txn.respond(response)


def _q_value(contact: NameAddr) -> float | None:
    text = contact.params.get("q")
    if text is None:
        return None
    try:
        q = float(text)
    except ValueError:
        raise SipParseError("invalid q parameter in Contact") from None
    if not 0.0 <= q <= 1.0:
        raise SipParseError("invalid q parameter in Contact")
    return q


@functools.lru_cache(maxsize=4)
def _http_date(second: int) -> str:
    """RFC 3261 §20.17 Date (RFC 1123 format, GMT), made once per second."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(second))
