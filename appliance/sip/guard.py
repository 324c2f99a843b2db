"""Intrusion protection: requests refused per source, bans, and a per-source rate limit.

The registrar and the call engine tell the guard what they decided: a refusal (`refused`: a
digest that was checked and was wrong, credentials of no extension, an unknown number; never
the first 401/407, which every phone's registration and call starts with) or a success
(`authenticated`). A source with `failures` refusals within `window` seconds is banned for
`ban_time`, twice as long at each repeat ban; from then on the transports drop its datagrams
before they are parsed and refuse its TCP connections at accept, answering nothing (`admit`
and `banned`: one dict lookup per packet). Never banned: the technician's `allow` networks,
the trunks' provider addresses, and an address that authenticated within the last hour.

Every source's messages also pass a token bucket (`rate` a second, bursts of twice that);
over it they are dropped silently, and not counted toward a ban: a phone rebooting or a burst
of retransmissions on a lossy link must cost a moment's silence, not an hour's ban, and a UDP
flood that forges a phone's address must not get the phone banned. Memory is bounded: at most
`MAX_SOURCES` buckets, failure counts and successes are kept, the oldest forgotten first.

This is also the gate that counts refusals per reason for `status` and logs each source once
an hour, so a scanner costs the box a counter, never a row on its SD card.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Literal, TypeVar

from appliance.store.bans import REPEAT_MEMORY, Ban

logger = logging.getLogger(__name__)

Reason = Literal["wrong_password", "unauthenticated", "unknown_number"]
REASONS: tuple[Reason, ...] = ("wrong_password", "unauthenticated", "unknown_number")
"""Why a request was refused: credentials naming an extension that did not prove it (a wrong
password, or another extension's identity); credentials naming no extension (an unknown user,
malformed credentials); a call to a number the box does not know."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

TRUST_TIME = 3600.0
"""An address that authenticated is never banned for this long after its last success."""
MAX_BAN = 30 * 86400.0
"""The longest ban, however often a source comes back."""
MAX_SOURCES = 10_000
"""Sources whose buckets, failures and successes are kept (each map on its own); beyond, the
tenth added (failures, successes: last touched) longest ago is forgotten."""
_V = TypeVar("_V")

LOG_EVERY = 3600.0
"""A source's refusals (and its rate limiting) are logged at most this often."""


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """The `security.*` settings, as the guard uses them."""

    failures: int = 5
    window: float = 600.0
    ban_time: float = 3600.0
    rate: float = 100.0
    """Messages a second from one source; 0: no limit."""
    allow: tuple[Network, ...] = ()


def networks(text: str) -> tuple[Network, ...]:
    """The networks of a `security.allow` value (validated when it was stored)."""
    items = (item.strip() for item in text.split(","))
    return tuple(ipaddress.ip_network(item, strict=False) for item in items if item)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class Counters:
    dropped: int = 0
    """Datagrams and TCP messages or connections from banned sources, dropped unanswered."""
    limited: int = 0
    """Messages dropped for the rate limit."""
    bans: int = 0
    """Bans made since start."""
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))


class Guard:
    """Per-source accounting and bans for one SIP endpoint; see the module's docstring.

    `on_ban` and `on_lift` are told of every ban made and lifted (the core stores them)."""

    def __init__(
        self, config: GuardConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config or GuardConfig()
        self._clock = clock
        self.counters = Counters()
        self.on_ban: Callable[[Ban], None] | None = None
        self.on_lift: Callable[[str], None] | None = None
        self._banned: dict[str, float] = {}
        """Address -> end of its ban: the bans in force, what every packet is checked against."""
        self._bans: dict[str, Ban] = {}
        """Every ban in force or remembered (for the doubling), by address."""
        self._failures: dict[str, list[float]] = {}
        self._trusted: dict[str, float] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._trunk_hosts: frozenset[str] = frozenset()
        self._trunk_networks: tuple[Network, ...] = ()
        self._allowed: dict[str, bool] = {}
        """`allowed()` of the sources that ran out of tokens, so that an allowed source's flood
        (a LAN, a benchmark) costs a lookup a message, not a walk of the networks."""
        self._logged: dict[str, float] = {}

    # -- configuration ---------------------------------------------------------------------

    @property
    def config(self) -> GuardConfig:
        return self._config

    @config.setter
    def config(self, config: GuardConfig) -> None:
        """New settings; a ban of an address the allow-list now holds is lifted."""
        if config.rate != self._config.rate:
            self._buckets.clear()
        self._config = config
        self._allowed.clear()
        self._lift_allowed()

    def use_trunks(self, hosts: Iterable[str], nets: Iterable[Network] = ()) -> None:
        """The trunks' provider addresses and IP trunks' networks: never banned nor limited."""
        self._trunk_hosts = frozenset(hosts)
        self._trunk_networks = tuple(nets)
        self._allowed.clear()
        self._lift_allowed()

    def allowed(self, host: str) -> bool:
        """Whether `host` is on the technician's allow-list or a trunk's."""
        if host in self._trunk_hosts:
            return True
        nets = self._config.allow + self._trunk_networks
        if not nets:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in nets)

    # -- the per-packet check ----------------------------------------------------------------

    def admit(self, host: str) -> bool:
        """Whether a message from `host` may be read: not banned, and within its rate."""
        until = self._banned.get(host)
        if until is not None:
            if until > self._clock():
                self.counters.dropped += 1
                return False
            self._ended(host)
        rate = self._config.rate
        if not rate:
            return True
        now = time.monotonic()
        bucket = self._buckets.get(host)
        if bucket is None:
            if len(self._buckets) >= MAX_SOURCES:
                _forget_oldest(self._buckets)
            self._buckets[host] = _Bucket(2 * rate - 1, now)
            return True
        tokens = min(2 * rate, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return True
        bucket.tokens = tokens
        allowed = self._allowed.get(host)
        if allowed is None:
            if len(self._allowed) >= MAX_SOURCES:
                self._allowed.clear()
            allowed = self._allowed[host] = self.allowed(host)
        if allowed:
            return True
        self.counters.limited += 1
        self._log(host, f"messages from {host} dropped: over {rate:g} a second")
        return False

    def banned(self, host: str) -> bool:
        """Whether `host` is banned now (a TCP connection from it is refused at accept)."""
        until = self._banned.get(host)
        if until is None:
            return False
        if until > self._clock():
            return True
        self._ended(host)
        return False

    def _ended(self, host: str) -> None:
        del self._banned[host]
        logger.info("the ban of %s has ended", host)

    # -- what the registrar and the call engine decided ------------------------------------

    def authenticated(self, host: str) -> None:
        """`host` proved an extension's credentials: it is never banned for `TRUST_TIME`."""
        trusted = self._trusted
        if trusted.pop(host, None) is None and len(trusted) >= MAX_SOURCES:
            _forget_oldest(trusted)
        trusted[host] = self._clock()

    def refused(self, host: str, what: str, reason: Reason) -> None:
        """A request from `host` was refused for `reason` (`what` says which, for the log):
        counted, and toward a ban of `host` unless it may never be banned."""
        self.counters.refused[reason] += 1
        self._log(host, f"refused {what} from {host}")
        if self.banned(host) or self.allowed(host) or self._trusted_now(host):
            return
        now = self._clock()
        config = self._config
        failures = self._failures.pop(host, None)
        if failures is None:
            if len(self._failures) >= MAX_SOURCES:
                _forget_oldest(self._failures)
            failures = []
        failures = [t for t in failures if now - t < config.window]
        failures.append(now)
        if len(failures) < config.failures:
            self._failures[host] = failures  # to the back: the most recently touched
            return
        self._ban(host, what, now)

    def _trusted_now(self, host: str) -> bool:
        since = self._trusted.get(host)
        return since is not None and self._clock() - since < TRUST_TIME

    def _ban(self, host: str, what: str, now: float) -> None:
        prior = self._bans.get(host)
        repeats = prior.count if prior is not None and now - prior.until < REPEAT_MEMORY else 0
        length = min(self._config.ban_time * 2**repeats, MAX_BAN)
        ban = Ban(host, what, now, now + length, repeats + 1)
        self._bans[host] = ban
        self._banned[host] = ban.until
        self.counters.bans += 1
        logger.warning(
            "banned %s for %d s after %d refusals in %d s (ban %d of this address; the last: %s)",
            host, length, self._config.failures, self._config.window, ban.count, what,
        )  # fmt: skip
        if self.on_ban is not None:
            self.on_ban(ban)

    def _log(self, host: str, message: str) -> None:
        now = time.monotonic()
        last = self._logged.get(host)
        if last is None or now - last >= LOG_EVERY:
            if len(self._logged) >= MAX_SOURCES:
                self._logged.clear()  # bounded memory under a scan from many addresses
            self._logged[host] = now
            logger.warning("%s (logged once an hour per source)", message)

    # -- bans as people see them -----------------------------------------------------------

    def restore(self, bans: Iterable[Ban]) -> None:
        """Take the stored bans (at start): those in force are enforced, the others only
        remembered for the doubling."""
        now = self._clock()
        for ban in bans:
            self._bans[ban.address] = ban
            if ban.active(now):
                self._banned[ban.address] = ban.until
        self._lift_allowed()

    def active(self) -> list[Ban]:
        """The bans in force, oldest first."""
        now = self._clock()
        found = [self._bans[host] for host, until in self._banned.items() if until > now]
        return sorted(found, key=lambda ban: ban.banned_at)

    def lift(self, address: str) -> bool:
        """End `address`'s ban and forget its history (a technician's decision); False when
        it was not banned."""
        was = self._banned.pop(address, None)
        known = self._bans.pop(address, None)
        self._failures.pop(address, None)
        if known is None and was is None:
            return False
        logger.info("ban of %s lifted", address)
        if self.on_lift is not None:
            self.on_lift(address)
        return was is not None and was > self._clock()

    def sweep(self) -> None:
        """Forget what no longer matters: ended bans past their memory, failures out of the
        window, successes past `TRUST_TIME` (called now and then by the core)."""
        now, mono = self._clock(), time.monotonic()
        for host in [h for h, until in self._banned.items() if until <= now]:
            self._ended(host)
        for host in [h for h, b in self._bans.items() if now - b.until >= REPEAT_MEMORY]:
            del self._bans[host]
        window = self._config.window
        for host in [h for h, times in self._failures.items() if now - times[-1] >= window]:
            del self._failures[host]
        for host in [h for h, since in self._trusted.items() if now - since >= TRUST_TIME]:
            del self._trusted[host]
        # A bucket refills in 2 s at most, and one full is no different from none.
        for host in [h for h, b in self._buckets.items() if mono - b.at >= 2.0]:
            del self._buckets[host]

    def _lift_allowed(self) -> None:
        for host in [h for h in self._bans if self.allowed(h)]:
            logger.info("%s is allowed now: its ban is lifted", host)
            self.lift(host)

    def status(self) -> dict[str, int]:
        """What `pbx status` and the control socket's counters show."""
        c = self.counters
        return {
            "bans_active": len(self.active()),
            "bans_made": c.bans,
            "dropped": c.dropped,
            "rate_limited": c.limited,
            **{f"refused.{reason}": n for reason, n in c.refused.items()},
        }


def _forget_oldest(entries: dict[str, _V]) -> None:
    """Drop the tenth of `entries` inserted (or re-inserted) longest ago."""
    for key in list(islice(entries, max(len(entries) // 10, 1))):
        del entries[key]
