"""SDP (RFC 8866, formerly RFC 4566): parse session descriptions into values and back, byte for
byte, plus the offer/answer pieces of RFC 3264 that the B2BUA needs.

A parsed description remembers where each line stood in its section and how any line whose
value it normalised was written, so `bytes(SessionDescription.parse(data)) == data` for any
well-formed input with CRLF line ends. The dataclass fields hold the parsed values and are the
truth: edit them (port, connection, formats, attributes, `set_direction`) and `bytes()` shows
the edit, the untouched lines keeping their places.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DIRECTIONS",
    "MAX_SDP_SIZE",
    "STATIC_PAYLOADS",
    "Media",
    "Origin",
    "Rtpmap",
    "SdpError",
    "SessionDescription",
    "answer_direction",
    "audio_offer",
    "rejected_media",
]

MAX_SDP_SIZE = 16_384
"""Largest SDP body accepted, in bytes. Phones' offers are under 2 KiB; the whole SIP message is
capped at 32 KiB (`appliance.sip.message.MAX_MESSAGE_SIZE`)."""

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
"""The direction attributes of RFC 8866 §6.7 (RFC 3264 §5.1, §6.1)."""


class SdpError(ValueError):
    """SDP that cannot be used; str() names the problem (e.g. 'line 3: m= line has no port')."""


@dataclass(slots=True, frozen=True)
class Rtpmap:
    """An `a=rtpmap` value (RFC 8866 §6.6) or a static payload type (RFC 3551 tables 4 and 5).

    `encoding` is as written; compare codecs with `matches`, since encoding names are media
    subtype names and so case-insensitive (RFC 6838 §4.2).
    """

    encoding: str
    clock_rate: int
    channels: int = 1

    def __str__(self) -> str:
        """The `a=rtpmap` form after the payload type: `PCMU/8000`, `opus/48000/2`."""
        if self.channels == 1:
            return f"{self.encoding}/{self.clock_rate}"
        return f"{self.encoding}/{self.clock_rate}/{self.channels}"

    def matches(self, other: Rtpmap) -> bool:
        """Same codec: encoding name (any case), clock rate and channels all equal."""
        return (
            self.clock_rate == other.clock_rate
            and self.channels == other.channels
            and self.encoding.casefold() == other.encoding.casefold()
        )


STATIC_PAYLOADS: dict[int, Rtpmap] = {
    0: Rtpmap("PCMU", 8000),
    3: Rtpmap("GSM", 8000),
    4: Rtpmap("G723", 8000),
    5: Rtpmap("DVI4", 8000),
    6: Rtpmap("DVI4", 16000),
    7: Rtpmap("LPC", 8000),
    8: Rtpmap("PCMA", 8000),
    9: Rtpmap("G722", 8000),  # 16 kHz sampling, but 8000 in RTP (RFC 3551 §4.5.2)
    10: Rtpmap("L16", 44100, 2),
    11: Rtpmap("L16", 44100),
    12: Rtpmap("QCELP", 8000),
    13: Rtpmap("CN", 8000),
    14: Rtpmap("MPA", 90000),
    15: Rtpmap("G728", 8000),
    16: Rtpmap("DVI4", 11025),
    17: Rtpmap("DVI4", 22050),
    18: Rtpmap("G729", 8000),
    25: Rtpmap("CelB", 90000),
    26: Rtpmap("JPEG", 90000),
    28: Rtpmap("nv", 90000),
    31: Rtpmap("H261", 90000),
    32: Rtpmap("MPV", 90000),
    33: Rtpmap("MP2T", 90000),
    34: Rtpmap("H263", 90000),
}
"""The static RTP payload types of RFC 3551 §6 (tables 4 and 5), which need no `a=rtpmap`."""


@dataclass(slots=True)
class Origin:
    """The `o=` line (RFC 8866 §5.2). `str()` is its value, without `o=`."""

    username: str
    session_id: str
    session_version: int
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )

    def _key(self) -> tuple[object, ...]:
        return (
            "o",
            self.username,
            self.session_id,
            self.session_version,
            self.nettype,
            self.addrtype,
            self.address,
        )


Attribute = tuple[str, str | None]
"""An `a=` line: `("rtpmap", "0 PCMU/8000")` for `a=rtpmap:0 PCMU/8000`, `("sendonly", None)`."""

_RawLines = dict[tuple[object, ...], str]
"""A section's lines that were written otherwise than their value prints (extra spaces, a
layered-port count, a c= TTL), keyed by the parsed value, so edits never reuse a stale one."""


@dataclass(slots=True)
class Media:
    """One media description: the `m=` line and the lines after it (RFC 8866 §5.14)."""

    kind: str
    """Media type: "audio", "video", ..."""
    port: int
    """0 for a rejected or disabled stream (RFC 3264 §6, §8.2)."""
    proto: str
    """"RTP/AVP", "RTP/SAVP", ..."""
    formats: list[str]
    """Payload types (for RTP) as written, in order of preference."""
    connection: str | None = None
    """The address of this section's `c=` line, if it has one (see SessionDescription.address)."""
    attributes: list[Attribute] = field(default_factory=list)
    """The `a=` lines in order."""
    other: list[tuple[str, str]] = field(default_factory=list)
    """Other lines (i=, b=, k=, unknown types) as (letter, value), in order."""
    _layout: str = field(default="", repr=False, compare=False)
    _raw: _RawLines = field(default_factory=dict, repr=False, compare=False)

    def attribute(self, name: str) -> str | None:
        """The value of the first `a=name` line; None if it has no value or is absent (`has`)."""
        for key, value in self.attributes:
            if key == name:
                return value
        return None

    def has(self, name: str) -> bool:
        """Whether there is an `a=name` line (attribute names match exactly)."""
        return any(key == name for key, _ in self.attributes)

    def rtpmap(self, pt: int) -> Rtpmap | None:
        """What payload type `pt` is: its `a=rtpmap`, else the static table, else None.

        Raises SdpError if the `a=rtpmap` for `pt` is malformed (no fallback to the static
        table then: the writer said the number means something else).
        """
        prefix = f"{pt} "
        for key, value in self.attributes:
            if key == "rtpmap" and value is not None and value.startswith(prefix):
                return _parse_rtpmap(value, len(prefix))
        return STATIC_PAYLOADS.get(pt)

    def fmtp(self, pt: int) -> str | None:
        """The format parameters of payload type `pt` (`a=fmtp:101 0-16` gives "0-16")."""
        prefix = f"{pt} "
        for key, value in self.attributes:
            if key == "fmtp" and value is not None and value.startswith(prefix):
                return value[len(prefix) :].strip(" \t")
        return None

    @property
    def direction(self) -> str | None:
        """The first direction attribute of this section (RFC 8866 §6.7), or None."""
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return None

    def set_direction(self, direction: str) -> None:
        """Put `a=<direction>` where the first direction attribute stood (else at the end) and
        remove any others from this section."""
        if direction not in DIRECTIONS:
            raise ValueError(f"not an SDP direction: {direction!r}")
        kept: list[Attribute] = []
        placed = False
        for attr in self.attributes:
            if attr[0] in DIRECTIONS:
                if not placed:
                    kept.append((direction, None))
                    placed = True
            else:
                kept.append(attr)
        if not placed:
            kept.append((direction, None))
        self.attributes[:] = kept

    @property
    def rtcp_port(self) -> int | None:
        """The port of `a=rtcp` (RFC 3605), or None when absent (RTCP is then on port + 1)."""
        if not self.has("rtcp"):
            return None
        value = self.attribute("rtcp") or ""
        port = value.strip(" \t").partition(" ")[0]
        if not _is_digits(port) or len(port) > 5 or int(port) > 65535:
            raise SdpError(f"malformed a=rtcp value {value[:40]!r}")
        return int(port)

    @property
    def ptime(self) -> int | None:
        """`a=ptime` (RFC 8866 §6.4) in whole milliseconds, or None. A fraction, which some
        writers give, is rounded half up."""
        if not self.has("ptime"):
            return None
        value = self.attribute("ptime") or ""
        whole, dot, fraction = value.strip(" \t").partition(".")
        if (
            not _is_digits(whole)
            or (dot and not _is_digits(fraction))
            or len(whole) > 6
            or len(fraction) > 6
        ):
            raise SdpError(f"malformed a=ptime value {value[:40]!r}")
        ms = int(float(f"{whole}.{fraction or 0}") + 0.5)
        if ms == 0:
            raise SdpError(f"malformed a=ptime value {value[:40]!r}")
        return ms

    def _lines(self) -> list[str]:
        raw = self._raw
        m_line = _media_line(self.kind, self.port, self.proto, self.formats)
        if raw:
            m_line = raw.get(("m", self.kind, self.port, self.proto, *self.formats), m_line)
        streams = {
            "c": _connection_lines(self.connection, raw),
            "x": [(letter, f"{letter}={value}") for letter, value in self.other],
            "a": _attribute_lines(self.attributes, raw),
        }
        return [
            m_line,
            *_arrange(self._layout, streams, _MEDIA_STREAMS, _MEDIA_RANK, _MEDIA_UNKNOWN),
        ]


@dataclass(slots=True)
class SessionDescription:
    """A whole SDP body (RFC 8866 §5): session-level lines, then the media descriptions."""

    version: int
    """`v=`, always 0."""
    origin: Origin
    name: str
    """`s=`; "-" or " " when the writer had none to give."""
    connection: str | None = None
    """The address of the session-level `c=` line, if any."""
    times: list[str] = field(default_factory=lambda: ["0 0"])
    """The `t=` values, in order (`r=` and `z=` lines ride in `other`, where they stood)."""
    attributes: list[Attribute] = field(default_factory=list)
    """Session-level `a=` lines in order."""
    media: list[Media] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)
    """Other session-level lines (i=, u=, e=, p=, b=, r=, z=, k=, unknown) in order."""
    _layout: str = field(default="", repr=False, compare=False)
    _raw: _RawLines = field(default_factory=dict, repr=False, compare=False)

    # -- reading ----------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body. CRLF or bare LF line ends; raises SdpError naming the problem.

        Unknown line types (one lower-case letter) are kept, as RFC 8866 §5 asks. Attribute
        values are not checked here: the accessors that read them (`rtpmap`, `ptime`, ...)
        raise SdpError for a malformed one.
        """
        return _parse(_decode(data))

    def attribute(self, name: str) -> str | None:
        """The value of the first session-level `a=name` line (None if valueless or absent)."""
        for key, value in self.attributes:
            if key == name:
                return value
        return None

    def has(self, name: str) -> bool:
        """Whether there is a session-level `a=name` line."""
        return any(key == name for key, _ in self.attributes)

    def direction(self, media: Media) -> str:
        """The direction of `media`: its own attribute, else the session's, else sendrecv
        (RFC 8866 §6.7)."""
        found = media.direction
        if found is not None:
            return found
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return "sendrecv"

    def address(self, media: Media) -> str | None:
        """Where `media` goes: its own `c=` address, else the session's (RFC 8866 §5.7)."""
        return media.connection if media.connection is not None else self.connection

    def on_hold(self, media: Media) -> bool:
        """Whether this offer holds `media`: sendonly or inactive (RFC 3264 §8.4), or the
        RFC 2543 way, c= 0.0.0.0, which RFC 3264 §8.4 still asks answerers to understand."""
        held = self.direction(media) in ("sendonly", "inactive")
        return held or self.address(media) == "0.0.0.0"

    # -- writing ----------------------------------------------------------------------------

    def __bytes__(self) -> bytes:
        """The description with CRLF line ends (RFC 8866 §5)."""
        raw = self._raw
        o_line = f"o={self.origin}"
        if raw:
            o_line = raw.get(self.origin._key(), o_line)
        streams = {
            "v": [("v", f"v={self.version}")],
            "o": [("o", o_line)],
            "s": [("s", f"s={self.name}")],
            "c": _connection_lines(self.connection, raw),
            "t": [("t", f"t={t}") for t in self.times],
            "x": [(letter, f"{letter}={value}") for letter, value in self.other],
            "a": _attribute_lines(self.attributes, raw),
        }
        lines = _arrange(self._layout, streams, _SESSION_STREAMS, _SESSION_RANK, _SESSION_UNKNOWN)
        for media in self.media:
            lines.extend(media._lines())
        lines.append("")
        return "\r\n".join(lines).encode()


# -- RFC 3264 offer/answer -----------------------------------------------------------------

_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


def answer_direction(offered: str) -> str:
    """The direction an answer takes to agree with an offered one (RFC 3264 §6.1): sendonly
    is answered recvonly, recvonly sendonly, the others in kind. An answerer that will not
    send (or receive) may narrow sendrecv further itself."""
    try:
        return _ANSWER_DIRECTION[offered]
    except KeyError:
        raise ValueError(f"not an SDP direction: {offered!r}") from None


def rejected_media(offered: Media) -> Media:
    """The answer's m= line for an offered stream it declines: port 0, same media type,
    transport and formats, nothing else (RFC 3264 §6)."""
    return Media(offered.kind, 0, offered.proto, list(offered.formats))


def audio_offer(
    address: str,
    port: int,
    payloads: list[tuple[int, Rtpmap, str | None]],
    *,
    session_id: str,
    session_version: int,
    direction: str = "sendrecv",
    ptime: int | None = 20,
) -> SessionDescription:
    """An offer (RFC 3264 §5) of one RTP/AVP audio stream at `address`:`port` (IPv6 if the
    address has a colon; give it without brackets).

    Each payload is (payload type, codec, fmtp or None), in preference order. Every payload gets
    an `a=rtpmap`, static ones too, as phones expect, then its `a=fmtp` if given; then
    `a=ptime` (unless None) and the direction. The origin is `pbx`, the session name `pbx`;
    bump `session_version` for each new offer in a session (RFC 3264 §8).
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    if direction not in DIRECTIONS:
        raise ValueError(f"not an SDP direction: {direction!r}")
    if not payloads:
        raise ValueError("an offer needs at least one payload type")
    attributes: list[Attribute] = []
    for pt, codec, fmtp in payloads:
        if not 0 <= pt <= 127:
            raise ValueError(f"payload type out of range: {pt}")
        attributes.append(("rtpmap", f"{pt} {codec}"))
        if fmtp is not None:
            attributes.append(("fmtp", f"{pt} {fmtp}"))
    if ptime is not None:
        attributes.append(("ptime", str(ptime)))
    attributes.append((direction, None))
    addrtype = "IP6" if ":" in address else "IP4"
    audio = Media(
        kind="audio",
        port=port,
        proto="RTP/AVP",
        formats=[str(pt) for pt, _, _ in payloads],
        attributes=attributes,
    )
    return SessionDescription(
        version=0,
        origin=Origin("pbx", session_id, session_version, "IN", addrtype, address),
        name="pbx",
        connection=address,
        times=["0 0"],
        media=[audio],
    )


# -- parsing -------------------------------------------------------------------------------

_SESSION_STREAMS = frozenset("voscta")
_MEDIA_STREAMS = frozenset("ca")
_NOT_IN_MEDIA = frozenset("vostrz")
"""Session-level line types that mean something else, or nothing, inside a media description."""


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        try:
            encoded = data.encode("utf-8")
        except UnicodeEncodeError:
            raise SdpError("SDP is not valid UTF-8") from None
        if len(encoded) > MAX_SDP_SIZE:
            raise SdpError(f"SDP larger than {MAX_SDP_SIZE} bytes")
        return data
    if len(data) > MAX_SDP_SIZE:
        raise SdpError(f"SDP larger than {MAX_SDP_SIZE} bytes")
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not valid UTF-8") from None


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _parse(text: str) -> SessionDescription:
    if "\x00" in text:
        raise SdpError(f"line {_line_of(text, text.index(chr(0)))}: NUL character")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        at = text.find("\r")
        if at >= 0:
            raise SdpError(f"line {_line_of(text, at)}: CR without LF")
    lines = text.split("\n")
    while lines and not lines[-1]:  # the last line end, and any empty lines after it
        lines.pop()
    if not lines:
        raise SdpError("empty SDP")
    if not lines[0].startswith("v="):
        raise SdpError("line 1: SDP must begin with v=")

    origin: Origin | None = None
    name: str | None = None
    connection: str | None = None
    times: list[str] = []
    attributes: list[Attribute] = []
    other: list[tuple[str, str]] = []
    layout: list[str] = []
    raw: _RawLines = {}
    media: list[Media] = []
    current: Media | None = None
    m_layout: list[str] = []

    for n, line in enumerate(lines, 1):
        if not line:
            raise SdpError(f"line {n}: empty line")
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"line {n}: expected <type>=<value>, got {line[:40]!r}")
        kind = line[0]
        if not "a" <= kind <= "z":
            raise SdpError(f"line {n}: invalid line type {kind!r}")
        value = line[2:]
        if kind == "a":
            attr = _parse_attribute(value, current._raw if current is not None else raw)
            if current is None:
                attributes.append(attr)
                layout.append("a")
            else:
                current.attributes.append(attr)
                m_layout.append("a")
        elif kind == "m":
            if current is not None:
                current._layout = "".join(m_layout)
                m_layout = []
            current = _parse_media(value, n)
            media.append(current)
        elif current is not None:
            if kind == "c":
                if current.connection is not None:
                    raise SdpError(f"line {n}: more than one c= line in a media description")
                current.connection = _parse_connection(value, n, current._raw)
            elif kind in _NOT_IN_MEDIA:
                raise SdpError(f"line {n}: {kind}= line inside a media description")
            else:
                current.other.append((kind, value))
            m_layout.append(kind)
        else:
            if kind == "v":
                if n != 1:
                    raise SdpError(f"line {n}: more than one v= line")
                if value != "0":
                    raise SdpError(f"line 1: unsupported SDP version {value[:40]!r}")
            elif kind == "o":
                if origin is not None:
                    raise SdpError(f"line {n}: more than one o= line")
                origin = _parse_origin(value, n, raw)
            elif kind == "s":
                if name is not None:
                    raise SdpError(f"line {n}: more than one s= line")
                name = value
            elif kind == "c":
                if connection is not None:
                    raise SdpError(f"line {n}: more than one session-level c= line")
                connection = _parse_connection(value, n, raw)
            elif kind == "t":
                times.append(value)
            else:
                other.append((kind, value))
            layout.append(kind)
    if current is not None:
        current._layout = "".join(m_layout)
    if origin is None:
        raise SdpError("missing o= line")
    if name is None:
        raise SdpError("missing s= line")
    return SessionDescription(
        version=0,
        origin=origin,
        name=name,
        connection=connection,
        times=times,
        attributes=attributes,
        media=media,
        other=other,
        _layout="".join(layout),
        _raw=raw,
    )


def _is_digits(text: str) -> bool:
    return text.isdigit() and text.isascii()


def _fields(value: str) -> list[str]:
    """Space-separated fields; runs of spaces are tolerated (and kept in the raw line)."""
    return [f for f in value.split(" ") if f]


def _parse_origin(value: str, n: int, raw: _RawLines) -> Origin:
    fields = _fields(value)
    if len(fields) != 6:
        raise SdpError(f"line {n}: o= line does not have 6 fields")
    version = fields[2]
    if not _is_digits(version) or len(version) > 20:
        raise SdpError(f"line {n}: o= session version {version[:40]!r} is not a number")
    origin = Origin(fields[0], fields[1], int(version), fields[3], fields[4], fields[5])
    if str(origin) != value:
        raw[origin._key()] = f"o={value}"
    return origin


def _parse_connection(value: str, n: int, raw: _RawLines) -> str:
    """The address of a `c=` line (RFC 8866 §5.7), without any multicast /TTL/count suffix."""
    fields = _fields(value)
    if len(fields) != 3:
        raise SdpError(f"line {n}: c= line does not have 3 fields")
    nettype, addrtype, address = fields
    if nettype != "IN":
        raise SdpError(f"line {n}: c= network type {nettype[:40]!r} is not IN")
    if addrtype not in ("IP4", "IP6"):
        raise SdpError(f"line {n}: c= address type {addrtype[:40]!r} is not IP4 or IP6")
    address = address.partition("/")[0]
    if not address:
        raise SdpError(f"line {n}: c= line has no address")
    if _connection_value(address) != value:
        raw[("c", address)] = f"c={value}"
    return address


def _connection_value(address: str) -> str:
    return f"IN {'IP6' if ':' in address else 'IP4'} {address}"


def _parse_media(value: str, n: int) -> Media:
    fields = _fields(value)
    if not fields:
        raise SdpError(f"line {n}: m= line has no media type")
    if len(fields) < 2:
        raise SdpError(f"line {n}: m= line has no port")
    port_text, slash, count = fields[1].partition("/")
    if not _is_digits(port_text) or (slash and not _is_digits(count)):
        raise SdpError(f"line {n}: m= port {fields[1][:40]!r} is not a number")
    if len(port_text) > 5 or int(port_text) > 65535:
        raise SdpError(f"line {n}: m= port {port_text[:40]} is out of range")
    port = int(port_text)
    if len(fields) < 3:
        raise SdpError(f"line {n}: m= line has no transport protocol")
    if len(fields) < 4 and port != 0:
        raise SdpError(f"line {n}: m= line has no formats")
    media = Media(fields[0], port, fields[2], fields[3:])
    if _media_line(media.kind, port, media.proto, media.formats) != f"m={value}":
        media._raw[("m", media.kind, port, media.proto, *media.formats)] = f"m={value}"
    return media


def _media_line(kind: str, port: int, proto: str, formats: list[str]) -> str:
    return f"m={kind} {port} {proto}" + "".join(f" {f}" for f in formats)


def _parse_attribute(value: str, raw: _RawLines) -> Attribute:
    name, colon, rest = value.partition(":")
    if colon:
        return (name, rest)
    stripped = name.rstrip(" \t")
    if stripped != name:  # "a=sendonly " still says sendonly
        raw[("a", stripped, None)] = f"a={value}"
    return (stripped, None)


def _parse_rtpmap(value: str, start: int) -> Rtpmap:
    """`PCMU/8000`, `opus/48000/2` (RFC 8866 §6.6) from `value[start:]`."""
    parts = value[start:].strip(" \t").split("/")
    if (
        2 <= len(parts) <= 3
        and parts[0]
        and " " not in parts[0]
        and all(_is_digits(p) and len(p) <= 9 for p in parts[1:])
        and int(parts[1]) > 0
        and (len(parts) == 2 or int(parts[2]) > 0)
    ):
        channels = int(parts[2]) if len(parts) == 3 else 1
        return Rtpmap(parts[0], int(parts[1]), channels)
    raise SdpError(f"malformed a=rtpmap value {value[:40]!r}")


# -- writing -------------------------------------------------------------------------------

_SESSION_RANK = {
    "v": 0, "o": 1, "s": 2, "i": 3, "u": 4, "e": 5, "p": 6, "c": 7, "b": 8, "t": 9, "r": 10,
    "z": 11, "k": 12, "a": 14,
}  # fmt: skip
"""RFC 8866 §5 order of session-level lines; unknown types go before the attributes."""
_SESSION_UNKNOWN = 13
_MEDIA_RANK = {"i": 1, "c": 2, "b": 3, "k": 4, "a": 6}
"""RFC 8866 §5.14 order of the lines after m=; unknown types go before the attributes."""
_MEDIA_UNKNOWN = 5


def _connection_lines(address: str | None, raw: _RawLines) -> list[tuple[str, str]]:
    if address is None:
        return []
    line = f"c={_connection_value(address)}"
    if raw:
        line = raw.get(("c", address), line)
    return [("c", line)]


def _attribute_lines(attributes: list[Attribute], raw: _RawLines) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for name, value in attributes:
        line = f"a={name}" if value is None else f"a={name}:{value}"
        if raw:
            line = raw.get(("a", name, value), line)
        lines.append(("a", line))
    return lines


def _arrange(
    layout: str,
    streams: dict[str, list[tuple[str, str]]],
    codes: frozenset[str],
    ranks: dict[str, int],
    unknown: int,
) -> list[str]:
    """Order one section's lines. `streams` holds the lines of each field (code: the line type,
    or "x" for the `other` list) as (type letter, text), in field order.

    `codes` are the line types that have a field of their own; the others share "x". A parsed
    section has a `layout`: the type letters of its lines as written. Each slot takes
    the next line of its field; the last slot of a field also takes any lines added since.
    A field with no slot (a c= line added later) goes where RFC 8866 §5 puts it. A section
    built by hand has no layout and is written in RFC 8866 order, each field's own order kept.
    """
    if not layout:
        ranked: list[tuple[int, str]] = []
        for lines in streams.values():
            floor = 0
            for letter, text in lines:
                floor = max(floor, ranks.get(letter, unknown))
                ranked.append((floor, text))
        ranked.sort(key=lambda item: item[0])
        return [text for _, text in ranked]
    slots = [(ch if ch in codes else "x", ranks.get(ch, unknown)) for ch in layout]
    present = {code for code, _ in slots}
    for code, lines in streams.items():
        if lines and code not in present:
            rank = ranks.get(lines[0][0], unknown)
            at = next((i for i, (_, r) in enumerate(slots) if r > rank), len(slots))
            slots.insert(at, (code, rank))
    last = {code: i for i, (code, _) in enumerate(slots)}
    taken = dict.fromkeys(streams, 0)
    out: list[str] = []
    for i, (code, _) in enumerate(slots):
        lines = streams[code]
        k = taken[code]
        if last[code] == i:
            out.extend(text for _, text in lines[k:])
            taken[code] = len(lines)
        elif k < len(lines):
            out.append(lines[k][1])
            taken[code] = k + 1
    return out
