"""SDP Security Descriptions for media streams (SDES, RFC 4568): the `a=crypto` attribute.

`a=crypto:<tag> <crypto-suite> inline:<key||salt base64>[|<lifetime>][|<MKI>:<length>]
[<session params>]` (§9.1). The box speaks the two suites of RFC 4568 §6.2 that every SDES
phone has, AES_CM_128_HMAC_SHA1_80 and _32 (30 bytes of master key and salt). An attribute
with a master key identifier, several keys, or session parameters (UNENCRYPTED_SRTP, KDR,
FEC_ORDER, ...) is read but not usable: the offer's next attribute may be, and if none is, the
stream is refused (§6.1: an answer never changes what the offer asked for).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
"""Suites the box accepts and offers, its preference first."""
KEY_SALT_LENGTH = 30
"""Bytes of master key (16) and master salt (14) of both suites."""

_ATTRIBUTE = re.compile(r"([0-9]{1,9}) ([A-Za-z0-9_]{1,64}) (\S{1,1024})(?: (.{1,1024}))?\Z")
_LIFETIME = re.compile(r"(?:2\^)?[0-9]{1,20}\Z")


class SdesError(ValueError):
    """An `a=crypto` value does not follow RFC 4568 §9.1. `str()` says what is wrong."""


@dataclass(frozen=True, slots=True)
class Crypto:
    """One `a=crypto` attribute with a single inline key (`key_salt`)."""

    tag: int
    suite: str
    key_salt: bytes
    lifetime: str | None = None
    mki: str | None = None
    session_params: str | None = None

    @classmethod
    def parse(cls, value: str) -> Crypto:
        match = _ATTRIBUTE.match(value.strip(" \t"))
        if match is None:
            raise SdesError(f"malformed a=crypto value {value[:60]!r}")
        tag, suite, keys, params = match.groups()
        if ";" in keys:
            raise SdesError("a=crypto with several keys is not supported")
        method, colon, info = keys.partition(":")
        if not colon or method.lower() != "inline":
            raise SdesError(f"a=crypto key method {method[:20]!r} is not inline")
        key_text, *rest = info.split("|")
        if len(rest) > 2:
            raise SdesError("a=crypto key has too many fields")
        lifetime = mki = None
        for part in rest:
            if ":" in part and mki is None:
                mki = part
            elif _LIFETIME.match(part) and lifetime is None and mki is None:
                lifetime = part
            else:
                raise SdesError(f"a=crypto key field {part[:20]!r} is malformed")
        try:
            key_salt = base64.b64decode(key_text, validate=True)
        except (binascii.Error, ValueError):
            raise SdesError("a=crypto key is not base64") from None
        return cls(int(tag), suite.upper(), key_salt, lifetime, mki, params)

    def __str__(self) -> str:
        key = base64.b64encode(self.key_salt).decode("ascii")
        for part in (self.lifetime, self.mki):
            if part is not None:
                key += f"|{part}"
        params = f" {self.session_params}" if self.session_params else ""
        return f"{self.tag} {self.suite} inline:{key}{params}"

    @property
    def usable(self) -> bool:
        """Whether the box can use it: a suite it has, a whole key, no MKI, no parameters."""
        return (
            self.suite in SUITES
            and len(self.key_salt) == KEY_SALT_LENGTH
            and self.mki is None
            and not self.session_params
        )


def new_key(tag: int, suite: str) -> Crypto:
    """A fresh master key and salt from the kernel's generator, for the box's side."""
    if suite not in SUITES:
        raise ValueError(f"unsupported SRTP suite {suite!r}")
    return Crypto(tag, suite, os.urandom(KEY_SALT_LENGTH))


def choose(values: list[str | None]) -> Crypto | None:
    """The first usable `a=crypto` of an offer, in its order (the offerer's preference);
    malformed ones are skipped. None if there is none."""
    for value in values:
        try:
            crypto = Crypto.parse(value or "")
        except SdesError:
            continue
        if crypto.usable:
            return crypto
    return None
