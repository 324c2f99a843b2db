"""Typed values of the SIP headers the stack reads: Via, CSeq, name-addr (From, To, Contact).

Each value parses from the header text and prints back (RFC 3261 §20, grammar in §25.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from appliance.sip.grammar import (
    SipParseError,
    format_params,
    is_token,
    parse_params,
    split_hostport,
)
from appliance.sip.uri import SipUri

MAGIC_COOKIE = "z9hG4bK"
"""RFC 3261 §8.1.1.7: branches starting with this were made by an RFC 3261 element."""

MAX_CSEQ = 2**31 - 1


def split_list(value: str) -> list[str]:
    """Split a list header on the commas that are outside quotes and `<...>`."""
    if "," not in value:
        return [value.strip()] if value.strip() else []
    items: list[str] = []
    start = 0
    quoted = angle = escaped = False
    for i, c in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if c == "\\":
                escaped = True
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == "," and not angle:
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    return [item for item in items if item]


def _split_params(text: str) -> tuple[str, str]:
    """Split `x;a=1;b="q;z"` into `x` and `a=1;b="q;z"`, honouring quotes."""
    quoted = False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif c == ";" and not quoted:
            return text[:i], text[i + 1 :]
    return text, ""


def _quoted_params(text: str, what: str) -> dict[str, str | None]:
    if '"' not in text:
        return parse_params(text, what)
    params: dict[str, str | None] = {}
    rest = text
    while rest:
        item, rest = _split_params(rest)
        name, eq, value = item.partition("=")
        if not name.strip():
            raise SipParseError(f"empty parameter in {what}")
        params[name.strip().lower()] = value.strip() if eq else None
    return params


_SIMPLE_VIA = re.compile(
    r"[ \t]*SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=[A-Za-z0-9\-.!%*_+`'~:\[\]]+)?)*)[ \t]*\Z",
    re.IGNORECASE,
)


@dataclass(slots=True)
class Via:
    """One Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport`."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        m = _SIMPLE_VIA.match(text)
        if m is not None:  # the usual shape, in one regex; anything else takes the long way
            transport, host, port, params = m.groups()
            port_number = int(port) if port else None
            if port_number is None or 0 < port_number < 65536:
                return cls(
                    transport.upper(), host, port_number, parse_params(params[1:], "Via header")
                )
        proto, params = _split_params(text.strip())
        parts = proto.split()
        # LWS may surround the slashes of sent-protocol (RFC 4475 §3.1.1.1): join and re-split.
        joined = "".join(parts[:-1]) if len(parts) > 1 else ""
        pieces = joined.split("/")
        if len(parts) < 2 or len(pieces) != 3:
            raise SipParseError("invalid Via header")
        name, version, transport = pieces
        if name.upper() != "SIP" or version != "2.0" or not is_token(transport):
            raise SipParseError("invalid Via header")
        host, port = split_hostport(parts[-1], "Via header")
        return cls(transport.upper(), host, port, _quoted_params(params, "Via header"))

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return f"{self.host.lower()}:{self.port or 5060}"

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


class CSeq(NamedTuple):
    """RFC 3261 §20.16: a sequence number below 2**31 and the request method."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = text.split()
        if (
            len(parts) != 2
            or not parts[0].isdigit()
            or not parts[0].isascii()
            or len(parts[0]) > 10
        ):
            raise SipParseError("invalid CSeq header")
        number = int(parts[0])
        if number > MAX_CSEQ or not is_token(parts[1]):
            raise SipParseError("invalid CSeq header")
        return cls(number, parts[1])

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


@dataclass(slots=True)
class NameAddr:
    """A From, To or Contact value: optional display name, URI, header parameters.

    `Contact: *` parses to a NameAddr with `is_star` set and no URI.
    """

    uri: SipUri | None
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    is_star: bool = False

    @classmethod
    def parse(cls, text: str, what: str) -> NameAddr:
        text = text.strip()
        if text == "*":
            return cls(uri=None, is_star=True)
        display: str | None = None
        if "<" in text:
            lt = text.find("<")
            if text.startswith('"'):
                end = _closing_quote(text)
                if end < 0 or end > lt:
                    lt = text.find("<", end + 1) if end > 0 else -1
                if end < 0 or lt < 0:
                    raise SipParseError(f"invalid {what} header")
                display = text[: end + 1]
            else:
                display = text[:lt].strip() or None
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError(f"invalid {what} header")
            uri_text, rest = text[lt + 1 : gt], text[gt + 1 :].strip()
            if rest and not rest.startswith(";"):
                raise SipParseError(f"invalid {what} header")
            params_text = rest[1:]
        else:
            # addr-spec without brackets: parameters after the URI belong to the header.
            uri_text, params_text = _split_params(text)
            uri_text = uri_text.rstrip(" \t")  # LWS may precede the parameters (RFC 4475)
            if any(c in uri_text for c in ' ,"'):
                raise SipParseError(f"invalid {what} header")
        if not uri_text:
            raise SipParseError(f"invalid {what} header")
        uri = SipUri.parse(uri_text, f"{what} header")
        return cls(uri, display, _quoted_params(params_text, f"{what} header"))

    @property
    def name(self) -> str:
        """The display name as a person reads it: a quoted-string's quotes and escapes
        (RFC 3261 §25.1) removed; "" when there is none."""
        text = self.display or ""
        if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
            return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.S)
        return text

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> str | None:
        return self.params.get("expires")

    def __str__(self) -> str:
        if self.is_star:
            return "*"
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


def _closing_quote(text: str) -> int:
    """Index of the quote that closes the quoted string starting at text[0], or -1."""
    escaped = False
    for i in range(1, len(text)):
        c = text[i]
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            return i
    return -1
