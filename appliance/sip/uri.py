"""SIP and SIPS URIs (RFC 3261 §19.1): parse, compare (§19.1.4) and print."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

from appliance.sip.grammar import SipParseError, format_params, parse_params, split_hostport

_COMPARED_PARAMS = ("user", "ttl", "method", "maddr", "transport")


@dataclass(slots=True)
class SipUri:
    """A `sip:` or `sips:` URI; other schemes (tel:, mailto:) keep only `scheme` and `raw`."""

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None
    raw: str | None = None

    @classmethod
    def parse(cls, text: str, what: str = "URI") -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        if not colon or not scheme or not scheme.isascii() or not scheme[0].isalpha():
            raise SipParseError(f"bad URI in {what}")
        scheme_l = scheme.lower()
        if scheme_l not in ("sip", "sips"):
            if any(c.isspace() for c in rest) or not rest:
                raise SipParseError(f"bad URI in {what}")
            return cls(scheme=scheme_l, raw=text)
        rest, qmark, headers = rest.partition("?")
        userinfo, at, hostpart = rest.rpartition("@")
        user = password = None
        if at:
            if not userinfo:
                raise SipParseError(f"empty user in {what}")
            user, pcolon, pw = userinfo.partition(":")
            password = pw if pcolon else None
        hostport, _, params = hostpart.partition(";")
        host, port = split_hostport(hostport, what)
        return cls(
            scheme=scheme_l,
            user=user,
            password=password,
            host=host,
            port=port,
            params=parse_params(params, what),
            headers=headers if qmark else None,
            raw=text,
        )

    def __str__(self) -> str:
        if self.raw is not None:
            return self.raw
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(f":{self.password}")
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(format_params(self.params))
        if self.headers is not None:
            out.append(f"?{self.headers}")
        return "".join(out)

    @property
    def transport(self) -> str:
        """The transport to reach this URI by (lower case): a `sips:` URI is reached over
        TLS whatever its `transport` says (RFC 5630 §3.1.2: `transport=tcp` there means TLS
        over TCP; `transport=tls` is the deprecated spelling of the same)."""
        value = (self.params.get("transport") or "udp").lower()
        if self.scheme == "sips" and value in ("udp", "tcp"):
            return "tls"
        return value

    @property
    def secure(self) -> bool:
        """Whether requests to this URI go over TLS (`sips:`, or `transport=tls`)."""
        return self.transport == "tls"

    @property
    def default_port(self) -> int:
        """The port when none is given: 5061 for TLS, else 5060 (RFC 3261 §19.1.2)."""
        return 5061 if self.secure else 5060

    def key(self) -> str:
        """A string equal for URIs that RFC 3261 §19.1.4 calls equivalent (headers ignored)."""
        if self.scheme not in ("sip", "sips"):
            return self.raw or self.scheme
        compared = "".join(
            f";{name}={(self.params.get(name) or '').lower()}"
            for name in _COMPARED_PARAMS
            if name in self.params
        )
        # Userinfo compares case-sensitively after %HEX decoding, password included.
        user = ""
        if self.user is not None:
            user = unquote(self.user)
            if self.password is not None:
                user += f":{unquote(self.password)}"
            user += "@"
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{self.host.lower()}{port}{compared}"
