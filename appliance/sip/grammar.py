"""Shared pieces of the SIP grammar (RFC 3261 §25.1): tokens, parameters, host and port."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_BAD_HOST = re.compile(r"[\s<>\"@;,?]")


class SipParseError(ValueError):
    """A message, or one of its headers, does not follow the SIP grammar. `str()` is the reason."""


def is_token(text: str) -> bool:
    """RFC 3261 `token`: one or more of alphanumerics and `-.!%*_+`'~`."""
    return _TOKEN.match(text) is not None


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """`;a=1;b` into `{"a": "1", "b": None}`; names are case-insensitive and kept lower-case."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not name:
            raise SipParseError(f"empty parameter in {what}")
        params[name.lower()] = value.strip() if eq else None
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def split_hostport(text: str, what: str) -> tuple[str, int | None]:
    """`host`, `host:5060`, `[::1]:5060` into host and port; host keeps IPv6 brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"bad IPv6 reference in {what}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError(f"bad host in {what}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
    if not host or _BAD_HOST.search(host):
        raise SipParseError(f"bad host in {what}")
    if port_text is None:
        return host, None
    if (
        not port_text.isdigit()
        or not port_text.isascii()
        or len(port_text) > 5
        or not 0 < int(port_text) < 65536
    ):
        raise SipParseError(f"bad port in {what}")
    return host, int(port_text)
