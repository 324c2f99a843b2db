"""SIP message syntax (RFC 3261 §7, §25): parse bytes into a message and back, byte for byte.

A parsed message keeps every header line as it was written, so `bytes(parse(data)) == data`
for any well-formed input. Header values are parsed lazily, on first use, into the typed values
of `appliance.sip.headers`; a value that does not parse raises `SipParseError` naming the header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from appliance.sip.grammar import SipParseError, is_token
from appliance.sip.headers import CSeq, NameAddr, Via, split_list

__all__ = ["Request", "Response", "SipMessage", "SipParseError", "make_response", "parse"]

MAX_MESSAGE_SIZE = 32_768
"""Largest message accepted on any transport; larger ones get 513. Real phones' messages, SDP
included, stay under 8 KiB; RFC 3261 §18.1.1 already wants anything near the MTU sent over TCP."""

SIP_VERSION = "SIP/2.0"

COMPACT_FORMS = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}
"""RFC 3261 §7.3.3 compact header names (and those of later RFCs) to their long form."""

LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "content-encoding",
        "in-reply-to",
        "path",
        "service-route",
    }
)
"""Headers whose value is a comma-separated list (RFC 3261 §7.3.1)."""

REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}


_KEYS: dict[str, str] = {}
_KEYS_MAX = 512


def canonical_name(name: str) -> str:
    """The lower-case long form of a header name: `v` and `VIA` are both `via`."""
    key = _KEYS.get(name)
    if key is None:
        lower = name.lower()
        key = COMPACT_FORMS.get(lower, lower)
        if len(_KEYS) < _KEYS_MAX:  # a memo of the names seen, bounded against junk
            _KEYS[name] = key
    return key


class HeaderField:
    """One header line. `raw` is the line as received (folding included) until the value changes."""

    __slots__ = ("key", "name", "raw", "value")

    def __init__(
        self, name: str, value: str, raw: str | None = None, key: str | None = None
    ) -> None:
        self.name = name
        self.value = value
        self.raw = raw
        self.key = canonical_name(name) if key is None else key

    def __repr__(self) -> str:
        return f"HeaderField({self.name!r}, {self.value!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeaderField):
            return NotImplemented
        return (self.name, self.value) == (other.name, other.value)

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return self.raw if self.raw is not None else f"{self.name}: {self.value}"


_NO_FIELDS: list[HeaderField] = []


@dataclass(slots=True)
class SipMessage:
    """What requests and responses share: header fields in order, and a body."""

    headers: list[HeaderField] = field(default_factory=list)
    body: bytes = b""
    _cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)
    _index: dict[str, list[HeaderField]] | None = field(default=None, repr=False, compare=False)

    # -- header access -------------------------------------------------------------------

    def fields(self, name: str) -> list[HeaderField]:
        """The header lines called `name` (any case, compact or long form), in order."""
        index = self._index
        if index is None:
            index = {}
            for h in self.headers:
                found = index.get(h.key)
                if found is None:
                    index[h.key] = [h]
                else:
                    found.append(h)
            self._index = index
        return index.get(canonical_name(name), _NO_FIELDS)

    def _changed(self) -> None:
        self._cache.clear()
        self._index = None

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first header called `name` (any case, compact or long form)."""
        found = self.fields(name)
        return found[0].value if found else default

    def get_all(self, name: str) -> list[str]:
        """Every value of `name`: one per header line, or per list element for list headers."""
        values = [h.value for h in self.fields(name)]
        if canonical_name(name) in LIST_HEADERS:
            return [item for v in values for item in split_list(v)]
        return values

    def __contains__(self, name: str) -> bool:
        return bool(self.fields(name))

    def set(self, name: str, value: str) -> None:
        """Replace every `name` header by one with `value`, where the first one stood."""
        key = canonical_name(name)
        self._changed()
        for i, h in enumerate(self.headers):
            if h.key == key:
                self.headers[i] = HeaderField(name, value)
                self.headers[i + 1 :] = [x for x in self.headers[i + 1 :] if x.key != key]
                return
        self.headers.append(HeaderField(name, value))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Add a header line, at the end or (for Via, Record-Route) before the others."""
        self._changed()
        if first:
            key = canonical_name(name)
            for i, h in enumerate(self.headers):
                if h.key == key:
                    self.headers.insert(i, HeaderField(name, value))
                    return
        self.headers.append(HeaderField(name, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._changed()
        self.headers = [h for h in self.headers if h.key != key]

    # -- typed values (parsed once, on first use) ----------------------------------------

    def _required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    @property
    def vias(self) -> list[Via]:
        cached = self._cache.get("via")
        if cached is None:
            values = self.get_all("via")
            if not values:
                raise SipParseError("missing Via header")
            cached = self._cache["via"] = [Via.parse(v) for v in values]
        return cached  # type: ignore[return-value]

    @property
    def via(self) -> Via:
        """The top Via."""
        return self.vias[0]

    @property
    def cseq(self) -> CSeq:
        cached = self._cache.get("cseq")
        if cached is None:
            cached = self._cache["cseq"] = CSeq.parse(self._required("CSeq"))
        return cached  # type: ignore[return-value]

    @property
    def call_id(self) -> str:
        value = self._required("Call-ID")
        if len(value.split()) != 1:
            raise SipParseError("invalid Call-ID header")
        return value

    @property
    def from_(self) -> NameAddr:
        cached = self._cache.get("from")
        if cached is None:
            cached = self._cache["from"] = NameAddr.parse(self._required("From"), "From")
        return cached  # type: ignore[return-value]

    @property
    def to(self) -> NameAddr:
        cached = self._cache.get("to")
        if cached is None:
            cached = self._cache["to"] = NameAddr.parse(self._required("To"), "To")
        return cached  # type: ignore[return-value]

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; `Contact: *` gives one NameAddr whose `is_star` is true."""
        cached = self._cache.get("contact")
        if cached is None:
            cached = self._cache["contact"] = [
                NameAddr.parse(v, "Contact") for v in self.get_all("contact")
            ]
        return cached  # type: ignore[return-value]

    def int_header(self, name: str) -> int | None:
        """A header holding a non-negative integer (Expires, Max-Forwards, Content-Length)."""
        value = self.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value.isdigit() or not value.isascii() or len(value) > 10:
            raise SipParseError(f"invalid {name} header")
        return int(value)

    # -- serialisation -------------------------------------------------------------------

    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        head = "\r\n".join([self.start_line(), *map(str, self.headers)])
        return head.encode() + b"\r\n\r\n" + self.body


@dataclass(slots=True)
class Request(SipMessage):
    method: str = ""
    uri: str = ""
    version: str = SIP_VERSION
    start_raw: str | None = None

    def start_line(self) -> str:
        if self.start_raw is not None:
            return self.start_raw
        return f"{self.method} {self.uri} {self.version}"


@dataclass(slots=True)
class Response(SipMessage):
    status: int = 200
    reason: str = "OK"
    version: str = SIP_VERSION
    start_raw: str | None = None

    def start_line(self) -> str:
        if self.start_raw is not None:
            return self.start_raw
        return f"{self.version} {self.status} {self.reason}"


_HEADER_NAME = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:")


def _split_head(head: str) -> tuple[str, list[HeaderField], dict[str, list[HeaderField]]]:
    lines = head.split("\r\n")
    start = lines[0]
    headers: list[HeaderField] = []
    index: dict[str, list[HeaderField]] = {}
    append = headers.append
    match = _HEADER_NAME.match
    keys = _KEYS
    for line in lines[1:]:
        m = match(line)
        if m is not None:
            name = m.group(1)
            key = keys.get(name)
            if key is None:
                key = canonical_name(name)
            h = HeaderField(name, line[m.end() :].strip(" \t"), line, key)
            append(h)
            same = index.get(key)
            if same is None:
                index[key] = [h]
            else:
                same.append(h)
            continue
        if line[:1] in (" ", "\t"):
            # RFC 3261 §7.3.1 line folding: a continuation of the previous header value.
            if not headers:
                raise SipParseError("header continuation line before any header")
            prev = headers[-1]
            prev.value = f"{prev.value} {line.strip()}".strip()
            prev.raw = f"{prev.raw}\r\n{line}"
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon:
            raise SipParseError(f"header line without colon: {line[:40]!r}")
        if not is_token(name):
            raise SipParseError(f"invalid header name {name[:40]!r}")
        h = HeaderField(name, value.strip(" \t"), line)
        headers.append(h)
        index.setdefault(h.key, []).append(h)
    return start, headers, index


def _parse_start(start: str) -> Request | Response:
    if start[:4].upper() == "SIP/":
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0].upper() != SIP_VERSION:
            raise SipParseError("unsupported SIP version" if len(parts) >= 2 else "bad status line")
        code = parts[1]
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] == "0":
            raise SipParseError("bad status code")
        return Response(
            status=int(code), reason=parts[2] if len(parts) == 3 else "", start_raw=start
        )
    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError("bad request line")
    method, uri, version = parts
    if not is_token(method):
        raise SipParseError("bad request method")
    if version.upper() != SIP_VERSION:  # §7.1: case-insensitive
        raise SipParseError("unsupported SIP version")
    if ":" not in uri:
        raise SipParseError("bad Request-URI")
    return Request(method=method, uri=uri, version=version, start_raw=start)


def parse_head(data: bytes) -> tuple[Request | Response, int]:
    """Parse the start line and headers of `data`; return the message and where its body starts.

    The message's `body` is left empty: the caller frames it (datagram or stream).
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipParseError("missing empty line after headers")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not valid UTF-8") from None
    if not head or "\x00" in head:
        raise SipParseError("empty or NUL in header section")
    start, headers, index = _split_head(head)
    msg = _parse_start(start)
    msg.headers = headers
    msg._index = index
    crlf = head.count("\r\n")
    if head.count("\r") != crlf or head.count("\n") != crlf:
        raise SipParseError("bare CR or LF in header section")
    return msg, end + 4


def parse(data: bytes) -> Request | Response:
    """Parse one whole message as received in a datagram (RFC 3261 §18.3).

    The body is what Content-Length says; bytes past it are discarded, as §18.3 requires of
    datagrams, and a body shorter than Content-Length is an error.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError("message too large")
    msg, body_start = parse_head(data)
    rest = data[body_start:]
    length = msg.int_header("Content-Length")
    if length is None:
        msg.body = rest
    elif length > len(rest):
        raise SipParseError("Content-Length larger than the body")
    else:
        msg.body = rest[:length]
    return msg


_COPIED = frozenset({"via", "from", "call-id", "cseq"})


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to `request` per RFC 3261 §8.2.6: Via, From, To, Call-ID, CSeq copied as sent."""
    out: list[HeaderField] = []
    add_tag = bool(to_tag) and status > 100 and _lacks_tag(request)
    for h in request.headers:
        key = h.key
        if key in _COPIED or (key == "to" and not add_tag):
            # As received (§8.2.6.2), but a folded line is unfolded.
            folded = h.raw is not None and "\n" in h.raw
            out.append(HeaderField(h.name, h.value, None, key) if folded else h)
        elif key == "to":
            out.append(HeaderField(h.name, f"{h.value};tag={to_tag}", None, "to"))
    out.extend(HeaderField(n, v) for n, v in headers)
    out.append(HeaderField("Content-Length", str(len(body))))
    phrase = REASON_PHRASES.get(status, "") if reason is None else reason
    return Response(headers=out, body=body, status=status, reason=phrase)


_TAG_PARAM = re.compile(r";[ \t]*tag[ \t]*=", re.IGNORECASE)


def _lacks_tag(request: Request) -> bool:
    """True if the request's To has no tag. Header parameters follow the last `>` (or, with no
    angle brackets, are all the `;` parameters), so this needs no full parse of To."""
    value = request.get("To")
    if value is None:
        return False
    tail = value[value.rfind(">") + 1 :]
    return _TAG_PARAM.search(tail) is None
