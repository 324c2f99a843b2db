"""SIP trunks at run time: each configured trunk's registration (or none, for an IP-authenticated
trunk), its OPTIONS keep-alive, how its calls are recognised, and how calls are sent to it.

Who may talk to the box: a call is a trunk's only when it comes from the trunk's address (the
server or outbound proxy it registers to, host and port; or, for an IP trunk, its networks).
The per-trunk `line` parameter in the Contact the box registers tells apart two trunks of one
provider. Nothing the caller writes in its headers makes it a trunk. Requests from anywhere
else must authenticate as an extension; refusals are counted per reason and logged once per
source an hour, never recorded as calls, and lead to bans (`appliance.sip.guard`, which
never bans a trunk's address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appliance.pbx.legs import Target
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.guard import Guard
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request, SipParseError
from appliance.sip.transaction import Destination
from appliance.sip.ua.auth import Credentials
from appliance.sip.ua.options import KeepAlive
from appliance.sip.ua.registration import (
    RegistrationClient,
    RegistrationConfig,
    RegistrationState,
)
from appliance.sip.uri import SipUri
from appliance.store.trunks import Trunk

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.legs import Call

logger = logging.getLogger(__name__)


def _hostport(text: str, default: int = 5060) -> tuple[str, int]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, default


def _user_of(value: str | None) -> str:
    if not value:
        return ""
    try:
        uri = NameAddr.parse(value, "To").uri
    except SipParseError:
        return ""
    return (uri.user or "") if uri is not None else ""


class TrunkLine:
    """One trunk: its configuration and what the box knows of it now."""

    def __init__(self, config: Trunk, owner: Trunks) -> None:
        self.config = config
        self.name = config.name
        self.owner = owner
        host, port = _hostport(config.server)
        self.server = (host, port)
        proxy = _hostport(config.outbound_proxy) if config.outbound_proxy else self.server
        self.transport = config.transport.upper()
        self.dest = Destination(self.transport, proxy[0], proxy[1])
        self.addresses = {self.server, proxy}
        try:
            self.local = ipaddress.ip_address(host).is_loopback
        except ValueError:  # a name: a provider's, not this box's
            self.local = False
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        if config.kind == "ip":
            cidrs = [c for c in config.match_cidrs.split(",") if c.strip()]
            self.networks = [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs]
        self.registration: RegistrationClient | None = None
        self.keepalive: KeepAlive | None = None
        self._reachable: bool | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        c = self.config
        if not c.enabled:
            return
        if c.kind == "register":
            domain = c.from_domain or self.server[0]
            contact = f"sip:{c.username}@{self.owner.hostport(c)};line={c.instance}"
            if self.transport == "TCP":
                contact += ";transport=tcp"
            config = RegistrationConfig(
                registrar=f"sip:{c.server}",
                dest=self.dest,
                aor=f"{c.username}@{domain}",
                credentials=Credentials(c.auth_user or c.username, c.password),
                contact=contact,
                expires=c.expires,
                via=f"{self.transport} {self.owner.hostport(c)}",
            )
            self.registration = RegistrationClient(self.owner.endpoint, config, self._changed)
            self.registration.start()
        if c.options_interval:
            self.keepalive = KeepAlive(
                self.owner.endpoint, self.dest, f"sip:{c.server}",
                f"{self.transport} {self.owner.hostport(c)}", c.options_interval,
                on_change=self._changed,
            )  # fmt: skip
            self.keepalive.start()

    async def stop(self) -> None:
        if self.keepalive is not None:
            self.keepalive.stop()
        if self.registration is not None:
            await self.registration.stop()

    async def ping(self, timeout: float = 5.0) -> float:
        """One OPTIONS round trip to the trunk now, in ms; TimeoutError if none came."""
        # A probe that is never started: ping() alone.
        probe = self.keepalive or KeepAlive(
            self.owner.endpoint, self.dest, f"sip:{self.config.server}",
            f"{self.transport} {self.owner.hostport(self.config)}", 60.0,
        )  # fmt: skip
        return await asyncio.wait_for(probe.ping(), timeout)

    def _changed(self, _what: object) -> None:
        keep = self.keepalive
        if keep is not None and keep.reachable != self._reachable:
            back = self._reachable is False and keep.reachable
            self._reachable = keep.reachable
            if back and self.registration is not None:
                # The provider answers again after an outage: it may have lost our binding
                # (a restart), so register now rather than at the next refresh.
                self.registration.refresh_now()
        logger.info("trunk %s: %s", self.name, self.state)

    # -- state -----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """registered, registering, failed, unreachable, reachable, unknown, or disabled."""
        if not self.config.enabled:
            return "disabled"
        if self.keepalive is not None and self.keepalive.reachable is False:
            return "unreachable"
        if self.registration is not None:
            state = self.registration.state
            if state is RegistrationState.REGISTERED:
                return "registered"
            if state is RegistrationState.FAILED:
                return "failed"
            if state is RegistrationState.UNREACHABLE:
                return "unreachable"
            return "registering"
        if self.keepalive is not None and self.keepalive.reachable is not None:
            return "reachable" if self.keepalive.reachable else "unreachable"
        return "unknown"

    @property
    def active_calls(self) -> int:
        return self.owner.calls_on(self.name)

    def has_room(self) -> bool:
        """Whether one more call fits within the trunk's `max_calls` (either direction)."""
        limit = self.config.max_calls
        return limit == 0 or self.active_calls < limit

    def usable(self, *, ignore_limit: bool = False) -> bool:
        """Whether a new outbound call may be sent to this trunk now (`ignore_limit`: were it
        not at its `max_calls`, as for an emergency call)."""
        up = self.state not in ("disabled", "failed", "unreachable")
        return up and (ignore_limit or self.has_room())

    def status(self) -> dict[str, Any]:
        reg = self.registration
        keep = self.keepalive
        last = reg.last_response if reg is not None else None
        if last is None and keep is not None:
            last = keep.last_response  # an IP trunk: the last answer to OPTIONS
        return {
            "name": self.name,
            "kind": self.config.kind,
            "server": self.config.server,
            "state": self.state,
            "last_response": last,
            "registered_until": reg.expires_at if reg is not None else None,
            "options_rtt_ms": keep.rtt_ms if keep is not None else None,
            "calls": self.active_calls,
            "max_calls": self.config.max_calls,
        }

    # -- calls ------------------------------------------------------------------------------

    def matches(self, source: Destination) -> bool:
        if self.networks:
            try:
                address = ipaddress.ip_address(source.host)
            except ValueError:
                return False
            return any(address in net for net in self.networks)
        if source.transport == "UDP" and self.local:
            # A trunk to a process of this box (the FXO line of `pbx-lines`): every local
            # process sends from 127.0.0.1, the analog ports' extensions too, so its port is
            # its identity.
            return (source.host, source.port) in self.addresses
        if self.config.kind == "ip" or source.transport != "UDP":
            # Over TCP the port is no one's identity: a provider opening a connection to the
            # box's Contact (RFC 3261 §18.1.1) sends from a port of its system's choosing.
            return source.host in {host for host, _ in self.addresses}
        return (source.host, source.port) in self.addresses

    def caller_of(self, req: Request) -> tuple[str, str]:
        """The caller's number (normalised as the office writes numbers) and name."""
        number = req.from_.uri.user if req.from_.uri is not None else ""
        return self.owner.normalize(number or "anonymous"), req.from_.name

    def did_of(self, req: Request) -> str:
        """The number called, where this trunk's provider puts it."""
        how = self.config.did_from
        ruri = _ruri_user(req)
        if how == "request-uri":
            return ruri
        if how == "to":
            return _user_of(req.get("To"))
        if how.startswith("header:"):
            value = req.get(how.partition(":")[2]) or ""
            return _user_of(value) or value.strip()
        ours = {"", self.config.username, "pbx"}
        if ruri in ours or f"line={self.config.instance}" in req.uri:
            return _user_of(req.get("To"))
        return ruri

    def target(self, call: Call, number: str, caller_id: str, engine: CallEngine) -> Target:
        """The INVITE for `number` through this trunk, presenting `caller_id`."""
        c = self.config
        hostport = self.owner.hostport(c)
        domain = c.from_domain or self.server[0]
        user = caller_id or c.from_user or c.username or call.a.number
        display = call.caller_name or user
        tp = ";transport=tcp" if self.transport == "TCP" else ""
        uri = f"sip:{number}@{c.server}{tp}"
        identity = f'"{_quote(display)}" <sip:{user}@{domain}>'
        return Target(
            number=number, uri=uri, to=f"sip:{number}@{domain}", dest=self.dest,
            identity=identity, via=f"{self.transport} {hostport}",
            contact=f"<sip:{c.username or user}@{hostport}{tp}>",
            credentials=Credentials(c.auth_user or c.username, c.password) if c.password else None,
            codecs=tuple(x for x in c.codecs.split(",") if x),
            late_offer=bool(c.late_offer), trunk=c.name, sdp_host=c.external_address or None,
        )  # fmt: skip


def _ruri_user(req: Request) -> str:
    try:
        return SipUri.parse(req.uri).user or ""
    except SipParseError:
        return ""


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class Trunks:
    """All trunks; reloaded whole from the store, started once the endpoint listens."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        advertised: Callable[[], str],
        normalize: Callable[[str], str],
    ) -> None:
        self.endpoint = endpoint
        self._advertised = advertised
        self.normalize = normalize
        self.gate = endpoint.guard if endpoint.guard is not None else Guard()
        """Where refusals are counted (the endpoint's guard, which bans their sources)."""
        self.calls_on: Callable[[str], int] = lambda _name: 0
        self._lines: dict[str, TrunkLine] = {}
        self._started = False

    def hostport(self, config: Trunk) -> str:
        """Our address as this trunk's provider reaches it (its external address behind NAT)."""
        host = config.external_address or self._advertised()
        port = self.endpoint.local[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def reload(self, configs: list[Trunk]) -> list[TrunkLine]:
        """Take the store's trunks: new and changed ones (re)start, removed ones stop; the
        others, and their calls, go on untouched.

        Returns the lines that stopped; their un-REGISTER is the caller's to await."""
        stopped: list[TrunkLine] = []
        wanted = {c.name: c for c in configs}
        for name, line in list(self._lines.items()):
            if wanted.get(name) != line.config:
                stopped.append(self._lines.pop(name))
        for config in configs:
            if config.name not in self._lines:
                line = TrunkLine(config, self)
                self._lines[config.name] = line
                if self._started:
                    line.start()
        self._lines = {c.name: self._lines[c.name] for c in configs}  # the configured order
        lines = self._lines.values()
        self.gate.use_trunks(
            {host for line in lines for host, _ in line.addresses},
            [net for line in lines for net in line.networks],
        )  # fmt: skip
        return stopped

    def start(self) -> None:
        """Start every trunk's registration and keep-alive (once the endpoint listens)."""
        self._started = True
        for line in self._lines.values():
            line.start()

    async def close(self) -> None:
        for line in list(self._lines.values()):
            await line.stop()
        self._lines = {}

    def get(self, name: str) -> TrunkLine | None:
        return self._lines.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._lines)

    def match(self, req: Request, source: Destination) -> TrunkLine | None:
        """The trunk a new request comes from, by its source address alone."""
        found = [line for line in self._lines.values() if line.config.enabled
                 and line.matches(source)]  # fmt: skip
        if len(found) > 1:
            for line in found:
                if f"line={line.config.instance}" in req.uri:
                    return line
            for line in found:  # over TCP, several trunks of one host: its exact address
                if (source.host, source.port) in line.addresses:
                    return line
        return found[0] if found else None

    def status(self) -> list[dict[str, Any]]:
        return [line.status() for line in self._lines.values()]
