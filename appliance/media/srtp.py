"""SRTP and SRTCP (RFC 3711) for one media leg, through libsrtp (`pylibsrtp`).

A leg protected by SRTP has two sessions: one with the box's own master key for what it sends,
one with the phone's for what arrives. Packets are unprotected before anything reads them and
protected as the last step before `send`, so latching, statistics, DTMF and transcoding see
plain RTP either way, and a call may be SRTP on one leg and plain on the other. A packet that
fails authentication (a stranger's, a replay, a wrong key) is None here and is dropped.
"""

from __future__ import annotations

import pylibsrtp

KEY_SALT_LENGTH = 30
"""Both suites' master key (128 bits) and salt (112 bits), RFC 3711 §8.2 and RFC 4568 §6.2.
The media layer imports nothing from SIP: `sip.sdes` checks the same length in `a=crypto`."""

PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
"""RFC 4568 suite names and libsrtp's profiles for them."""


class SrtpContext:
    """What one leg needs to speak SRTP: `tx_key` is the box's master key and salt (what it
    sent in its `a=crypto`), `rx_key` the phone's."""

    def __init__(self, suite: str, tx_key: bytes, rx_key: bytes) -> None:
        profile = PROFILES[suite]
        for key in (tx_key, rx_key):
            if len(key) != KEY_SALT_LENGTH:
                raise ValueError(f"an SRTP master key and salt are {KEY_SALT_LENGTH} bytes")
        outbound = pylibsrtp.Policy(
            key=tx_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
        )
        outbound.allow_repeat_tx = True  # a phone's duplicate, relayed, is sent again
        inbound = pylibsrtp.Policy(
            key=rx_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
        )
        self.suite = suite
        self._tx = pylibsrtp.Session(outbound)
        self._rx = pylibsrtp.Session(inbound)
        self.failures = 0
        """Packets (SRTP or SRTCP) that failed authentication or replay checks."""

    def protect(self, packet: bytes) -> bytes | None:
        try:
            return self._tx.protect(packet)
        except pylibsrtp.Error:
            return None

    def protect_rtcp(self, packet: bytes) -> bytes | None:
        try:
            return self._tx.protect_rtcp(packet)
        except pylibsrtp.Error:
            return None

    def unprotect(self, packet: bytes) -> bytes | None:
        try:
            return self._rx.unprotect(packet)
        except pylibsrtp.Error:
            self.failures += 1
            return None

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        try:
            return self._rx.unprotect_rtcp(packet)
        except pylibsrtp.Error:
            self.failures += 1
            return None
