"""SRTP per leg (SDES, RFC 4568) as the B2BUA negotiates it: which policy a leg's line has,
what an offer or answer with `a=crypto` does to the leg, and what the box offers.

The box terminates SRTP on each leg: a leg's media engine context holds the box's own master
key for what it sends (its `a=crypto`, made fresh for each new remote key) and the phone's for
what arrives, so an SRTP phone can call a plain one. The rules, for the line's policy
(`store.encryption`):
- an offer in RTP/SAVP is taken only on a line whose policy is not `none`, only over SIP over
  TLS (SDES keys are in the clear in SDP: over UDP or TCP anyone on the path could read them,
  so the box refuses with 488 rather than give an impression of security), and only with a
  usable `a=crypto` (RFC 4568 §6.1: the answer uses one of the offered ones, its tag and suite);
- a plain offer on a `required` line is refused with 488;
- the box offers RTP/SAVP (and only that) to a line whose policy is `required`, and plain RTP
  otherwise (`optional` means "accept SRTP", as most PBXs' default does).
libsrtp is imported the first time a leg is secured: a box whose calls are plain never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from appliance.media.engine import MediaLeg
from appliance.pbx.offer import CallError
from appliance.sip import sdes, sdp
from appliance.store import encryption as store
from appliance.store.database import Database

SECURE_PROFILES = ("RTP/SAVP", "RTP/SAVPF")
SECURE_TRANSPORTS = ("TLS",)
"""SIP transports that may carry SDES keys."""


@dataclass(frozen=True, slots=True)
class Policies:
    """Every line's policy, read from the store with the rest of the core's configuration."""

    extensions: dict[str, str] = field(default_factory=dict)
    trunks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, db: Database) -> Policies:
        return cls(store.of_extensions(db), store.of_trunks(db))

    def of_extension(self, number: str) -> str:
        return self.extensions.get(number, store.DEFAULT)

    def of_trunk(self, name: str) -> str:
        return self.trunks.get(name, store.DEFAULT)


@dataclass(slots=True)
class LegCrypto:
    """The SDES state of one leg: its line's policy, the SIP transport it is signalled on,
    the box's `a=crypto` (None: plain RTP) and the phone's."""

    policy: str = store.DEFAULT
    transport: str = "UDP"
    ours: sdes.Crypto | None = None
    theirs: sdes.Crypto | None = None

    @property
    def offers_srtp(self) -> bool:
        """Whether the box's offer to this leg is RTP/SAVP."""
        return self.policy == "required"


def is_secure(media: sdp.Media) -> bool:
    return media.proto.upper() in SECURE_PROFILES


def take_offer(state: LegCrypto, media: sdp.Media, leg: MediaLeg) -> None:
    """A phone's offer on this leg: refuse it (CallError 488), or set the leg's SRTP (or
    plain RTP) for it, with a key of ours to answer with."""
    if not is_secure(media):
        if state.policy == "required":
            raise CallError(488, "Not Acceptable Here (SRTP required: offer RTP/SAVP)")
        state.ours = state.theirs = None
        leg.set_srtp(None)
        return
    if state.policy == "none":
        raise CallError(488, "Not Acceptable Here (SRTP is off for this line: offer RTP/AVP)")
    if state.transport not in SECURE_TRANSPORTS:
        raise CallError(488, "Not Acceptable Here (SRTP keys are taken only over SIP over TLS)")
    theirs = sdes.choose(_crypto_values(media))
    if theirs is None:
        raise CallError(488, "Not Acceptable Here (no usable a=crypto: AES_CM_128_HMAC_SHA1_80"
                             " or AES_CM_128_HMAC_SHA1_32)")  # fmt: skip
    if state.ours is not None and theirs == state.theirs:
        return  # the same key again (a re-INVITE for hold, a refresh): the streams go on
    ours = sdes.new_key(theirs.tag, theirs.suite)
    _secure(leg, ours, theirs)
    state.ours, state.theirs = ours, theirs


def take_answer(state: LegCrypto, media: sdp.Media, leg: MediaLeg) -> None:
    """A phone's answer to the box's offer on this leg (`state.ours`: what was offered)."""
    ours = state.ours
    if ours is None:
        if is_secure(media):
            raise CallError(488, "Not Acceptable Here (answered RTP/SAVP to a plain offer)")
        if state.policy == "required":  # (a late offer the box could not make secure)
            raise CallError(488, "Not Acceptable Here (SRTP required: offer RTP/SAVP)")
        return
    if not is_secure(media):
        raise CallError(488, "Not Acceptable Here (answered plain RTP to an SRTP offer)")
    theirs = sdes.choose(_crypto_values(media))
    if theirs is None or (theirs.tag, theirs.suite) != (ours.tag, ours.suite):
        raise CallError(488, "Not Acceptable Here (the answer's a=crypto matches no offered one)")
    if theirs != state.theirs:
        _secure(leg, ours, theirs)
        state.theirs = theirs


def offer_key(state: LegCrypto) -> None:
    """Before the box's offer to this leg: a key of ours if its line requires SRTP."""
    if state.offers_srtp and state.ours is None:
        state.ours = sdes.new_key(1, sdes.SUITES[0])


def secure_sdp(desc: sdp.SessionDescription, index: int, crypto: sdes.Crypto) -> None:
    """Make the box's audio stream `index` of `desc` RTP/SAVP with our `a=crypto`, before its
    direction attribute."""
    media = desc.media[index]
    media.proto = "RTP/SAVP"
    at = next((i for i, (k, _) in enumerate(media.attributes) if k in sdp.DIRECTIONS),
              len(media.attributes))  # fmt: skip
    media.attributes.insert(at, ("crypto", str(crypto)))


def _crypto_values(media: sdp.Media) -> list[str | None]:
    return [value for key, value in media.attributes if key == "crypto"]


def _secure(leg: MediaLeg, ours: sdes.Crypto, theirs: sdes.Crypto) -> None:
    from appliance.media.srtp import SrtpContext

    leg.set_srtp(SrtpContext(theirs.suite, ours.key_salt, theirs.key_salt))
