"""Typed appliance settings kept in the `settings` table, validated when they are written."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils


class SettingError(ValueError):
    """A setting name is unknown or its value is out of range. `str()` says which and why."""


@dataclass(frozen=True, slots=True)
class IntSetting:
    key: str
    default: int
    low: int
    high: int
    help: str

    def validate(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise SettingError(f"{self.key} must be a whole number, not {text!r}") from None
        if not self.low <= value <= self.high:
            raise SettingError(f"{self.key} must be between {self.low} and {self.high}")
        return value


@dataclass(frozen=True, slots=True)
class ListSetting:
    """A comma-separated ordered choice from a fixed set (e.g. digest algorithms)."""

    key: str
    default: str
    choices: tuple[str, ...]
    help: str

    def validate(self, text: str) -> str:
        items = [item.strip().upper() for item in text.split(",") if item.strip()]
        known = {c.upper(): c for c in self.choices}
        bad = [item for item in items if item not in known]
        if not items or bad or len(set(items)) != len(items):
            raise SettingError(
                f"{self.key} must list some of {', '.join(self.choices)} once each, in order"
            )
        return ",".join(known[item] for item in items)


SETTINGS: dict[str, IntSetting | ListSetting] = {
    s.key: s
    for s in (
        IntSetting("sip.min_expires", 60, 1, 3600, "shortest registration accepted (s); 423 below"),
        IntSetting(
            "sip.max_expires", 3600, 60, 86400, "registrations longer than this are cut (s)"
        ),
        IntSetting(
            "sip.default_expires", 3600, 60, 86400, "registration time when none is asked (s)"
        ),
        IntSetting("sip.max_contacts", 10, 1, 100, "bindings one extension may hold at once"),
        IntSetting("sip.nonce_ttl", 300, 10, 3600, "digest nonce lifetime (s)"),
        ListSetting(
            "sip.digest_algorithms",
            "MD5",
            ("SHA-256", "MD5"),
            "digest challenges offered, most preferred first (RFC 8760). MD5 alone by default:"
            " baresip 1.0 fails when SHA-256 is offered at all, sipp 3.6 when it comes first",
        ),
        IntSetting("calls.ring_timeout", 30, 5, 600, "unanswered calls end after this (s); 480"),
        IntSetting(
            "calls.media_timeout", 60, 5, 3600, "calls with no RTP either way are hung up (s)"
        ),
        IntSetting("calls.max_duration", 10800, 60, 86400, "longest call before it is cut (s)"),
        IntSetting("rtp.port_min", 10000, 1024, 65534, "lowest RTP port (even; RTCP above it)"),
        IntSetting("rtp.port_max", 20000, 1026, 65535, "highest RTP port"),
    )
}
"""Settings a technician may change, with their range and meaning."""


def get(db: sqlite_utils.Database, key: str) -> int | str:
    spec = SETTINGS[key]
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return spec.default if row is None else spec.validate(str(row[0]))


def get_int(db: sqlite_utils.Database, key: str) -> int:
    value = get(db, key)
    assert isinstance(value, int)
    return value


def get_list(db: sqlite_utils.Database, key: str) -> tuple[str, ...]:
    value = get(db, key)
    assert isinstance(value, str)
    return tuple(value.split(","))


def set_value(db: sqlite_utils.Database, key: str, text: str) -> int | str:
    """Validate and store one setting; raises SettingError with a readable reason."""
    spec = SETTINGS.get(key)
    if spec is None:
        raise SettingError(f"unknown setting {key!r}; known: {', '.join(sorted(SETTINGS))}")
    value = spec.validate(text)
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, str(value)],
    )
    return value


def get_text(db: sqlite_utils.Database, key: str) -> str:
    """Internal settings written by migrations (realm, secrets)."""
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    if row is None:
        raise KeyError(key)
    return str(row[0])
