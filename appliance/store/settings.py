"""Typed appliance settings kept in the `settings` table, validated when they are written."""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.i18n import T
from appliance.store import destinations
from appliance.store.database import Database
from appliance.store.texts import reason


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
            raise SettingError(
                T("{key} must be a whole number, not {text!r}", key=self.key, text=text)
            ) from None
        if not self.low <= value <= self.high:
            raise SettingError(
                T(
                    "{key} must be between {low} and {high}",
                    key=self.key,
                    low=self.low,
                    high=self.high,
                )
            )
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
                T(
                    "{key} must list some of {choices} once each, in order",
                    key=self.key,
                    choices=", ".join(self.choices),
                )
            )
        return ",".join(known[item] for item in items)


@dataclass(frozen=True, slots=True)
class TextSetting:
    """Free text a technician types (an office name): printable, bounded in length."""

    key: str
    default: str
    max_length: int
    help: str

    def validate(self, text: str) -> str:
        text = text.strip()
        if len(text) > self.max_length or not text.isprintable():
            raise SettingError(
                T(
                    "{key} must be at most {length} printable characters",
                    key=self.key,
                    length=self.max_length,
                )
            )
        return text


@dataclass(frozen=True, slots=True)
class SecretSetting(TextSetting):
    """Text that is a secret (the SMTP relay's password): validated like text, but pages,
    logs and exports show `MASK` in its place (`secret` says so to them)."""

    secret: bool = True


MASK = "********"


FEATURE_CODE_RE = re.compile(r"[*#][0-9*#]{1,3}\Z")


@dataclass(frozen=True, slots=True)
class FeatureCodeSetting(TextSetting):
    """A feature code a phone dials (`*97`): `*` or `#` then 1 to 3 keys, so that it never
    shadows an extension's number or a DID (those are digits); `check` refuses a code another
    feature already has."""

    def validate(self, text: str) -> str:
        code = text.strip()
        if not FEATURE_CODE_RE.match(code):
            raise SettingError(
                T("{key} must be * or # and 1 to 3 more keys (e.g. *97), not {text!r}",
                  key=self.key, text=text)
            )  # fmt: skip
        return code

    def check(self, db: Database, value: str) -> None:
        for key, other in feature_codes(db).items():
            if key != self.key and other == value:
                raise SettingError(
                    T("{key}: {code} is already the feature code of {other}", key=self.key,
                      code=value, other=key)
                )  # fmt: skip


def feature_codes(db: Database) -> dict[str, str]:
    """Every feature code the box has, by its setting: the `features.*` settings and the
    on-demand recording code (`recording.feature_code`, kept with the recording settings)."""
    codes = {key: str(get(db, key)) for key in SETTINGS if key.startswith("features.")}
    row = db.execute("SELECT value FROM settings WHERE key = 'recording.feature_code'").fetchone()
    codes["recording.feature_code"] = "*1" if row is None else str(row[0])
    return codes


@dataclass(frozen=True, slots=True)
class DigitsSetting:
    """A short string of digits a technician types (a city code), possibly empty."""

    key: str
    default: str
    max_length: int
    help: str

    def validate(self, text: str) -> str:
        text = text.strip()
        if not re.fullmatch(f"[0-9]{{0,{self.max_length}}}", text):
            raise SettingError(
                T(
                    "{key} must be at most {length} digits, not {text!r}",
                    key=self.key,
                    length=self.max_length,
                    text=text,
                )
            )
        return text


@dataclass(frozen=True, slots=True)
class DestinationSetting:
    """Where some calls go (`KIND:TARGET`, see `destinations`). `validate` checks the form;
    `check` that the target exists, when the setting is written."""

    key: str
    default: str
    help: str
    inbound: bool = True

    def validate(self, text: str) -> str:
        try:
            kind, target = destinations.parse(text, inbound=self.inbound)
        except destinations.DestinationError as exc:
            raise SettingError(T("{key}: {reason}", key=self.key, reason=reason(exc))) from None
        return f"{kind}:{target}"

    def check(self, db: Database, value: str) -> None:
        try:
            destinations.check_destination(db, value, inbound=self.inbound)
        except destinations.DestinationError as exc:
            raise SettingError(T("{key}: {reason}", key=self.key, reason=reason(exc))) from None


@dataclass(frozen=True, slots=True)
class ChoiceSetting:
    """One of a fixed set of codes, each with a label for people (`choices` maps code to label)."""

    key: str
    default: str
    choices: dict[str, str]
    help: str

    def validate(self, text: str) -> str:
        code = text.strip()
        if code not in self.choices:
            raise SettingError(
                T("{key} must be one of {choices}", key=self.key, choices=", ".join(self.choices))
            )
        return code


@dataclass(frozen=True, slots=True)
class TimezoneSetting:
    """An IANA time zone name (Europe/Berlin), checked against the system's tz database."""

    key: str
    default: str
    help: str

    def validate(self, text: str) -> str:
        import zoneinfo  # only where a time zone is checked: it costs an idle service 0.5 MiB

        name = text.strip()
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingError(
                T(
                    "{key}: {name!r} is not a known time zone (e.g. Europe/Berlin, UTC)",
                    key=self.key,
                    name=name,
                )
            ) from None
        return name


@dataclass(frozen=True, slots=True)
class NetworksSetting:
    """A comma-separated list of IP addresses and networks (`192.168.1.0/24, 10.0.0.5`),
    possibly empty; stored as Python's `ipaddress` writes them, a lone address without /32."""

    key: str
    default: str
    help: str

    def validate(self, text: str) -> str:
        import ipaddress

        written: list[str] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise SettingError(
                    T(
                        "{key}: {item!r} is not an IP address or network (e.g. 192.168.1.0/24,"
                        " 10.0.0.5)",
                        key=self.key,
                        item=item,
                    )
                ) from None
            whole = net.prefixlen == net.max_prefixlen
            shown = str(net.network_address) if whole else str(net)
            if shown not in written:
                written.append(shown)
        return ",".join(written)


COUNTRIES: dict[str, str] = {
    "US": T("United States"),
    "UK": T("United Kingdom"),
    "DE": T("Germany"),
    "FR": T("France"),
    "IT": T("Italy"),
    "ES": T("Spain"),
    "NL": T("Netherlands"),
    "PL": T("Poland"),
    "RU": T("Russia"),
    "UA": T("Ukraine"),
    "KZ": T("Kazakhstan"),
}
"""Countries whose tone plans and ring cadences the analog ports will use."""

Setting = (
    IntSetting | ListSetting | TextSetting | DigitsSetting | ChoiceSetting | TimezoneSetting
    | DestinationSetting | NetworksSetting
)  # fmt: skip

SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        IntSetting(
            "sip.min_expires", 60, 1, 3600, T("shortest registration accepted (s); 423 below")
        ),
        IntSetting(
            "sip.max_expires", 3600, 60, 86400, T("registrations longer than this are cut (s)")
        ),
        IntSetting(
            "sip.default_expires", 3600, 60, 86400, T("registration time when none is asked (s)")
        ),
        IntSetting("sip.max_contacts", 10, 1, 100, T("bindings one extension may hold at once")),
        IntSetting("sip.nonce_ttl", 300, 10, 3600, T("digest nonce lifetime (s)")),
        IntSetting(
            "sip.tcp_max_per_source",
            100,
            1,
            10_000,
            T("TCP connections one address may hold open; more are refused"),
        ),
        IntSetting(
            "sip.tcp_max_total",
            500,
            10,
            20_000,
            T(
                "TCP connections phones and providers may hold open in all; beyond, one that"
                " has sent no SIP message is closed, or the new one refused"
            ),
        ),
        IntSetting(
            "sip.overload_queue_kib",
            512,
            16,
            4096,
            T(
                "SIP waiting to be read (KiB) beyond which new calls and registrations are"
                " refused with 503 until half of it is served"
            ),
        ),
        ListSetting(
            "sip.digest_algorithms",
            "MD5",
            ("SHA-256", "MD5"),
            T(
                "digest challenges offered, most preferred first (RFC 8760). MD5 alone by default:"
                " baresip 1.0 fails when SHA-256 is offered at all, sipp 3.6 when it comes first"
            ),
        ),
        IntSetting("calls.ring_timeout", 30, 5, 600, T("unanswered calls end after this (s); 480")),
        IntSetting(
            "calls.media_timeout", 60, 5, 3600, T("calls with no RTP either way are hung up (s)")
        ),
        IntSetting("calls.max_duration", 10800, 60, 86400, T("longest call before it is cut (s)")),
        IntSetting(
            "security.ban_failures",
            5,
            1,
            1000,
            T(
                "failed authentications (or calls to unknown numbers) from one address that ban"
                " it; the first challenge a phone gets is no failure"
            ),
        ),
        IntSetting(
            "security.ban_window",
            600,
            10,
            86400,
            T("the failures that ban an address must come within this many seconds"),
        ),
        IntSetting(
            "security.ban_time",
            3600,
            60,
            30 * 86400,
            T("how long a first ban lasts (s); each repeat ban of the address lasts twice as long"),
        ),
        IntSetting(
            "security.rate_limit",
            100,
            0,
            100_000,
            T(
                "SIP messages a second one address may send (bursts of twice that); more are"
                " dropped. Allowed addresses are not limited (0: no limit)"
            ),
        ),
        NetworksSetting(
            "security.allow",
            "127.0.0.1,::1",
            T(
                "addresses and networks never banned nor rate-limited, comma-separated (the"
                " office's LAN, e.g. 192.168.1.0/24); trunks' providers and addresses that"
                " authenticated in the last hour are never banned either"
            ),
        ),
        IntSetting(
            "tollfraud.max_outbound_calls",
            2,
            0,
            1000,
            T("outbound calls up at once per extension, unless it has its own (0: no limit)"),
        ),
        IntSetting(
            "tollfraud.international_minutes_per_day",
            300,
            0,
            100_000,
            T(
                "international minutes the office may talk per day (office time zone); then new"
                " international calls are refused and live ones cut (0: no limit)"
            ),
        ),
        IntSetting(
            "events.retention_days",
            90,
            0,
            3650,
            T("events (alerts) older than this are deleted (days; 0 keeps them for ever)"),
        ),
        IntSetting(
            "cdrs.retention_days",
            365,
            0,
            3650,
            T("call records older than this are deleted (days; 0 keeps them for ever)"),
        ),
        IntSetting(
            "cdrs.max_rows",
            1_000_000,
            0,
            10_000_000,
            T("most call records kept; the oldest beyond are deleted (0: no limit; ~0.5 KB each)"),
        ),
        IntSetting("rtp.port_min", 10000, 1024, 65534, T("lowest RTP port (even; RTCP above it)")),
        IntSetting("rtp.port_max", 20000, 1026, 65535, T("highest RTP port")),
        IntSetting("ext.number_min", 10, 10, 999999, T("lowest extension number allowed")),
        IntSetting("ext.number_max", 999999, 10, 999999, T("highest extension number allowed")),
        TextSetting("office.name", "", 64, T("the office's name, shown on the setup page")),
        TextSetting(
            "moh.class",
            "default",
            32,
            T("the hold music played to held callers: a class (folder of tracks)"),
        ),
        ChoiceSetting(
            "office.country", "US", COUNTRIES, T("country: sets dial tones and ring cadence")
        ),
        ChoiceSetting(
            "office.language",
            "en",
            {"en": T("English"), "ru": T("Russian")},
            T("the office's language: the setup page's default, the phone sheet and the prompts"),
        ),
        TimezoneSetting("office.timezone", "UTC", T("time zone for call records and schedules")),
        DigitsSetting(
            "office.area_code",
            "",
            5,
            T("the office's city code, for local numbers and 7-digit dialling"),
        ),
        FeatureCodeSetting(
            "features.voicemail", "*97", 4, T("the code a phone dials to hear its voicemail")
        ),
        TextSetting(
            "mail.host",
            "",
            253,
            T("the SMTP relay voicemail is e-mailed through (empty: no e-mail)"),
        ),
        IntSetting("mail.port", 587, 1, 65535, T("the SMTP relay's port (587 submission, 25)")),
        ChoiceSetting(
            "mail.starttls",
            "yes",
            {"yes": T("yes"), "no": T("no")},
            T("whether to ask the SMTP relay for STARTTLS before sending"),
        ),
        TextSetting("mail.user", "", 128, T("the SMTP relay's user name (empty: no AUTH)")),
        SecretSetting("mail.password", "", 128, T("the SMTP relay's password")),
        TextSetting("mail.from", "", 254, T("the sender address of voicemail e-mails")),
        DestinationSetting(
            "dialplan.unknown_did",
            "hangup:not-found",
            T("where calls to a number of the office that has no DID entry go"),
        ),
    )
}
"""Settings a technician may change, with their range and meaning."""


def get(db: Database, key: str) -> int | str:
    spec = SETTINGS[key]
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return spec.default if row is None else spec.validate(str(row[0]))


def get_int(db: Database, key: str) -> int:
    value = get(db, key)
    assert isinstance(value, int)
    return value


def get_list(db: Database, key: str) -> tuple[str, ...]:
    value = get(db, key)
    assert isinstance(value, str)
    return tuple(value.split(","))


def set_value(db: Database, key: str, text: str) -> int | str:
    """Validate and store one setting; raises SettingError with a readable reason."""
    spec = SETTINGS.get(key)
    if spec is None:
        raise SettingError(
            T("unknown setting {key!r}; known: {known}", key=key, known=", ".join(sorted(SETTINGS)))
        )
    value = spec.validate(text)
    if isinstance(spec, DestinationSetting):
        assert isinstance(value, str)
        spec.check(db, value)
    if isinstance(spec, FeatureCodeSetting):
        assert isinstance(value, str)
        spec.check(db, value)
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, str(value)],
    )
    return value


def get_str(db: Database, key: str) -> str:
    value = get(db, key)
    assert isinstance(value, str)
    return value


def get_text(db: Database, key: str) -> str:
    """Internal settings written by migrations and services (realm, secrets, flags)."""
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    if row is None:
        raise KeyError(key)
    return str(row[0])


def set_text(db: Database, key: str, value: str) -> None:
    """Write an internal setting (never one a technician sets: those go through set_value)."""
    if key in SETTINGS:
        raise SettingError(f"{key} is a typed setting; use set_value")
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
