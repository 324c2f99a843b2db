"""Offer/answer (RFC 3264) as the B2BUA does it per leg: which codecs an SDP offers, where its
audio goes, and the error a call ends with when it offers nothing the box can handle."""

from __future__ import annotations

from appliance.media.engine import Codec
from appliance.sip import sdp

AUDIO_CODECS = {"PCMU": 0, "PCMA": 8, "G722": 9}
"""Codecs the engine relays and transcodes, with their static payload types (RFC 3551)."""
DTMF_PT = 101


class CallError(Exception):
    """A call cannot go on; `status` and `reason` are what the caller is answered."""

    def __init__(self, status: int, reason: str | None = None) -> None:
        super().__init__(f"{status} {reason or ''}".strip())
        self.status = status
        self.reason = reason


PROFILES = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
"""RTP profiles the box takes; whether an SRTP one (SDES) is accepted on a leg is decided by
`encryption` from the line's policy and the SIP transport. Not DTLS-SRTP (UDP/TLS/RTP/SAVP)."""


def audio(desc: sdp.SessionDescription) -> sdp.Media:
    """The first audio stream of an SDP that is not declined (port 0), in a profile we speak."""
    for media in desc.media:
        if media.kind == "audio" and media.port and media.proto.upper() in PROFILES:
            return media
    raise CallError(488, "Not Acceptable Here (no audio stream offered)")


def offered_codecs(media: sdp.Media) -> tuple[list[Codec], int | None]:
    """The codecs of an offer we can handle, in the offerer's order, and its RFC 4733 type."""
    codecs: list[Codec] = []
    dtmf: int | None = None
    for fmt in media.formats:
        if not fmt.isdigit():
            continue
        pt = int(fmt)
        try:
            rtpmap = media.rtpmap(pt)
        except sdp.SdpError:
            continue  # a malformed a=rtpmap: that format is unusable, the rest may do
        if rtpmap is None:
            continue
        name = rtpmap.encoding.upper()
        if name in AUDIO_CODECS and rtpmap.clock_rate == 8000:
            if all(c.name != name for c in codecs):
                codecs.append(Codec(name, pt))
        elif name == "TELEPHONE-EVENT" and rtpmap.clock_rate == 8000 and dtmf is None:
            dtmf = pt
    for c in codecs:
        c.dtmf_payload_type = dtmf
    return codecs, dtmf


def box_codecs(first: list[Codec], allowed: tuple[str, ...] = tuple(AUDIO_CODECS)) -> list[Codec]:
    """What the box offers a new leg: `first` (another leg's codecs, in its order), then the
    box's others, all limited to `allowed` and on the static payload types, with DTMF."""
    names = [c.name for c in first if c.name in allowed]
    names += [name for name in allowed if name not in names and name in AUDIO_CODECS]
    codecs = [Codec(name, AUDIO_CODECS[name]) for name in names]
    for c in codecs:
        c.dtmf_payload_type = DTMF_PT
    return codecs


def rtcp_port(media: sdp.Media) -> int | None:
    try:
        return media.rtcp_port
    except sdp.SdpError:
        return None  # a malformed a=rtcp: RTCP goes to the port above RTP, as by default
