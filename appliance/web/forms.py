"""Every form of the setup page. Each field has a label and a help text (`description`), which
the templates show beside it; a test fails when one is missing.

Fields check only their shape here; what a value means (is the number free and in range, is
the password strong) is checked by the store, the one place every entry point goes through."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    Field,
    FieldList,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)  # fmt: skip
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # new in 3.3
from wtforms.validators import DataRequired, EqualTo, InputRequired, NumberRange, Optional
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget

from appliance.numbering import PERMISSION_CLASSES
from appliance.store import destinations, dids, extensions, menus, recordings, trunks
from appliance.store.cdrs import DIRECTIONS, DISPOSITIONS
from appliance.store.database import Database
from appliance.store.settings import COUNTRIES
from appliance.store.trunks import TRANSPORTS
from appliance.store.users import ROLES
from appliance.web.i18n import NAMES, _, _l, translate


def text(field: Field) -> str:
    """A text field's value, stripped ('' when empty)."""
    return str(field.data or "").strip()


def secret(field: Field) -> str:
    """A password field's value exactly as typed ('' when empty)."""
    return str(field.data or "")


def reject(field: Field, message: str) -> None:
    """Show `message` under the field (the form is rendered again with what was typed).
    Works before validation too, when wtforms still holds the errors in a tuple."""
    field.errors = [*field.errors, message]


def refuse(form: FlaskForm, name: str, message: str, fallback: str) -> None:
    """Show a store's refusal under the field it names, or under `fallback` when the form has
    no field of that name (e.g. the number of a row being edited, which is not a field)."""
    reject(form[name] if name in form else form[fallback], message)


def choices(pairs: Iterable[tuple[str, object]], optgroup: str | None = None) -> list[SelectChoice]:
    """Select choices from (value, label) pairs; a label may be lazy (`_l`), translated when
    the select is rendered."""
    return [SelectChoice(value, label, optgroup=optgroup) for value, label in pairs]


def destination_choices(db: Database, current: str = "") -> list[SelectChoice]:
    """Where calls from outside may go, from the store: each extension, each menu and
    announcement, then each way of hanging up; `current` (what is set now) is kept among them
    even if no longer offered. Made during the request, so in its language."""

    def shown(destination: str) -> str:
        return translate(destinations.describe(db, destination))

    offered = [f"extension:{e.number}" for e in extensions.list_all(db)]
    found = choices(((d, shown(d)) for d in offered), _("Extensions"))
    ivr = [f"ivr:{m.name}" for m in menus.list_menus(db)]
    ivr += [f"announcement:{a.name}" for a in menus.list_announcements(db)]
    found += choices(((d, shown(d)) for d in ivr), _("Menus and announcements"))
    causes = [f"hangup:{cause}" for cause in destinations.HANGUP_CAUSES]
    found += choices(((d, shown(d)) for d in causes), _("Hang up"))
    if current and current not in offered + ivr + causes:
        found.insert(0, SelectChoice(current, shown(current)))
    return found


def trunk_choices(db: Database, none: str) -> list[SelectChoice]:
    """Every trunk by name, after `none` (the choice of no particular trunk)."""
    return choices([("", none), *((t.name, t.name) for t in trunks.list_all(db))])


def caller_id_choices(db: Database, none: str) -> list[SelectChoice]:
    """The office's numbers (DIDs) an extension or a route may present, after `none` (the
    choice of presenting none of its own)."""
    shown = (
        (d.number, f"{d.number} ({d.label})" if d.label else d.number) for d in dids.list_all(db)
    )
    return choices([("", none), *shown])


ROLE_CHOICES = choices([("admin", _l("Admin")), ("viewer", _l("Viewer"))])
assert [c.value for c in ROLE_CHOICES] == list(ROLES)
PERMISSION_NAMES = {
    "internal": _l("Internal"),
    "local": _l("Local"),
    "mobile": _l("Mobile"),
    "long-distance": _l("Long distance"),
    "international": _l("International"),
    "premium": _l("Premium"),
}
"""The kinds of numbers an extension may call (`appliance.numbering.PERMISSION_CLASSES`)."""
PERMISSION_CHOICES = choices((c, PERMISSION_NAMES[c]) for c in PERMISSION_CLASSES)
DISPOSITION_NAMES = {
    "answered": _l("Answered"),
    "busy": _l("Busy"),
    "no-answer": _l("No answer"),
    "failed": _l("Failed"),
    "cancelled": _l("Cancelled"),
    "interrupted": _l("Interrupted"),
}
"""How a call ended (`appliance.store.cdrs.DISPOSITIONS`), as the call list's filter says it."""
DIRECTION_NAMES = {
    "internal": _l("Between extensions"),
    "inbound": _l("In from a trunk"),
    "outbound": _l("Out by a trunk"),
}
"""Which way a call went (`appliance.store.cdrs.DIRECTIONS`)."""
assert set(PERMISSION_NAMES) == set(PERMISSION_CLASSES)
assert set(DISPOSITION_NAMES) == set(DISPOSITIONS) and set(DIRECTION_NAMES) == set(DIRECTIONS)
LANGUAGE_CHOICES = choices(NAMES.items())
"""Each language in its own words (never translated: a reader looks for their own)."""


def country_choices() -> list[SelectChoice]:
    """The office countries (`appliance.store.settings.COUNTRIES`) in the page's language."""
    return choices((code, translate(name)) for code, name in COUNTRIES.items())


@cache
def timezone_choices() -> list[SelectChoice]:
    import zoneinfo

    return choices((n, n.replace("_", " ")) for n in sorted(zoneinfo.available_timezones()))


class AccountForm(FlaskForm):
    username = StringField(
        _l("Admin user name"), [DataRequired()], default="admin",
        description=_l("Lower-case letters and digits, e.g. admin. You log in with it."),
    )  # fmt: skip
    password = PasswordField(
        _l("Password"), [DataRequired()],
        description=_l(
            "At least 10 characters mixing upper-case, lower-case, digits or symbols"
            " (or 16 characters or more). There is no default password: keep this one safe."
        ),
    )  # fmt: skip
    confirm = PasswordField(
        _l("Repeat the password"),
        [DataRequired(), EqualTo("password", _l("The passwords differ."))],
        description=_l("Type the same password again, to be sure of it."),
    )  # fmt: skip


class LoginForm(FlaskForm):
    username = StringField(
        _l("User name"), [DataRequired()],
        description=_l("The name given when the account was made."),
    )  # fmt: skip
    password = PasswordField(
        _l("Password"), [DataRequired()],
        description=_l("After 5 wrong tries from one computer, logins from it wait 15 minutes."),
    )  # fmt: skip


class OfficeForm(FlaskForm):
    office_name = StringField(
        _l("Office name"), [DataRequired()], description=_l("Shown at the top of every page.")
    )
    country = SelectField(
        _l("Country"), choices=[],
        description=_l("Sets the dial tone, ring cadence and caller-ID style of the analog ports."),
    )  # fmt: skip
    timezone = SelectField(
        _l("Time zone"), choices=[],
        description=_l("Call records and schedules are shown in this time zone."),
    )  # fmt: skip
    number_min = IntegerField(
        _l("Lowest extension number"), [InputRequired()], default=100,
        description=_l("Extensions must be numbered from this..."),
    )  # fmt: skip
    number_max = IntegerField(
        _l("Highest extension number"), [InputRequired()], default=199,
        description=_l("...up to this, e.g. 100 to 199."),
    )  # fmt: skip
    language = SelectField(
        _l("Language"), choices=LANGUAGE_CHOICES, default="en",
        description=_l(
            "The office's language: this page's language until a user chooses another, and"
            " the language of the phone settings sheet."
        ),
    )  # fmt: skip

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()
        self.timezone.choices = timezone_choices()


FIRST_PHONES = 4
"""How many extensions the wizard proposes to make."""


class FirstExtensionsForm(FlaskForm):
    first = StringField(
        _l("First extension number"), [DataRequired()], default="100",
        description=_l("Numbers are given in order from this one, e.g. 100, 101, 102..."),
    )  # fmt: skip
    count = IntegerField(
        _l("How many phones"), [InputRequired(), NumberRange(1, 100)], default=FIRST_PHONES,
        description=_l("One extension per phone, 1 to 100. More can be added later."),
    )  # fmt: skip


class ExtensionForm(FlaskForm):
    number = StringField(
        _l("Extension number"), [DataRequired()],
        description=_l("2 to 6 digits, inside the office's numbering range. Dialled to reach it."),
    )  # fmt: skip
    name = StringField(
        _l("Name"), description=_l("Who sits at this phone; shown as caller ID on other phones.")
    )
    password = PasswordField(
        _l("SIP password"), [Optional()],
        description=_l(
            "Leave empty to have a strong one generated (recommended). Otherwise at"
            " least 10 characters mixing letters and digits."
        ),
    )  # fmt: skip


MEDIA_ENCRYPTION_CHOICES = choices(
    [("optional", _l("Optional: SRTP when the phone offers it")),
     ("required", _l("Required: SRTP only (phones on SIP over TLS)")),
     ("none", _l("None: plain RTP only"))]
)  # fmt: skip
MEDIA_ENCRYPTION_HELP = _l(
    "Whether calls' audio is encrypted (SRTP with SDES keys, which the box exchanges only"
    " over SIP over TLS). Required refuses calls whose audio would not be encrypted."
)


def media_encryption_field() -> SelectField:
    return SelectField(
        _l("Media encryption"), choices=MEDIA_ENCRYPTION_CHOICES, default="optional",
        description=MEDIA_ENCRYPTION_HELP,
    )  # fmt: skip


class ExtensionEditForm(FlaskForm):
    name = StringField(
        _l("Name"), description=_l("Who sits at this phone; shown as caller ID on other phones.")
    )
    permissions = SelectMultipleField(
        _l("May call"), choices=PERMISSION_CHOICES,
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
        description=_l(
            "The kinds of numbers this phone may dial out to. Calls to other extensions"
            " are always allowed, and so are emergency numbers."
        ),
    )  # fmt: skip
    caller_id = SelectField(
        _l("Caller ID outside"), choices=[],
        description=_l(
            "The office number (DID) people see when this phone calls out; none to"
            " use the route's or the trunk's."
        ),
    )  # fmt: skip
    max_outbound_calls = StringField(
        _l("Outside calls at once"), render_kw={"inputmode": "numeric"},
        description=_l(
            "How many calls to outside numbers this phone may have up at the same time;"
            " more are refused (toll-fraud protection). Empty for the office's default,"
            " 0 for no limit."
        ),
    )  # fmt: skip

    media_encryption = media_encryption_field()

    def offer(self, db: Database) -> None:
        """The choices that come from the store: the office's numbers."""
        self.caller_id.choices = caller_id_choices(db, _("None: the route's or the trunk's"))


TRUNK_KINDS = choices(
    [("register", _l("Registration (user name and password)")),
     ("ip", _l("IP address (no registration)"))]
)  # fmt: skip


class TrunkForm(FlaskForm):
    """A trunk's settings; field names are the store's (`appliance.store.trunks`), so a refusal
    is shown under the field it names."""

    kind = SelectField(
        _l("Kind"), choices=TRUNK_KINDS, default="register",
        description=_l(
            "Most providers give an account to register with; an IP trunk (another"
            " office, a provider on a private line) sends calls from known addresses instead."
        ),
    )  # fmt: skip
    server = StringField(
        _l("Server"), [DataRequired()],
        description=_l(
            "The provider's SIP server: a host name or address, with :PORT when it is"
            " not 5060, e.g. sip.example.net or 203.0.113.5:5080."
        ),
    )  # fmt: skip
    username = StringField(
        _l("User name"), description=_l("The account at the provider (often the phone number).")
    )
    password = PasswordField(
        _l("Password"),
        description=_l(
            "The account's password at the provider. Never shown again: on a trunk"
            " already saved, leave it empty to keep the stored one."
        ),
    )  # fmt: skip
    auth_user = StringField(
        _l("Authentication user"), description=_l(
            "Only when the provider gives a separate login for"
            " authentication; empty to use the user name."
        ),
    )  # fmt: skip
    transport = SelectField(
        _l("Transport"), choices=choices((t, t.upper()) for t in TRANSPORTS), default="udp",
        description=_l("UDP unless the provider asks for TCP."),
    )  # fmt: skip
    outbound_proxy = StringField(
        _l("Outbound proxy"), description=_l(
            "HOST or HOST:PORT to send everything through, when the"
            " provider gives one; empty for none."
        ),
    )  # fmt: skip
    from_user = StringField(
        _l("From user"), description=_l(
            "The user part of From on outgoing calls, when the provider"
            " wants other than the user name."
        ),
    )  # fmt: skip
    from_domain = StringField(
        _l("From domain"), description=_l(
            "The host part of From, when the provider wants other than"
            " the server."
        ),
    )  # fmt: skip
    codecs = StringField(
        _l("Codecs"), default="PCMA,PCMU,G722",
        description=_l(
            "Offered to the provider, most preferred first: some of PCMA, PCMU, G722,"
            " separated by commas."
        ),
    )  # fmt: skip
    max_calls = StringField(
        _l("Calls at once"), default="0", render_kw={"inputmode": "numeric"},
        description=_l("How many calls the account allows at the same time; 0 for no limit."),
    )  # fmt: skip
    expires = StringField(
        _l("Registration time (s)"), default="300", render_kw={"inputmode": "numeric"},
        description=_l("How long each registration is asked for, 60 to 86400 seconds."),
    )  # fmt: skip
    options_interval = StringField(
        _l("Keep-alive every (s)"), default="30", render_kw={"inputmode": "numeric"},
        description=_l(
            "Seconds between OPTIONS pings that check the provider answers (10 to"
            " 3600); 0 for none."
        ),
    )  # fmt: skip
    external_address = StringField(
        _l("Public address"), description=_l(
            "The office's public IP address or host name, when the"
            " box is behind NAT and the provider needs it; empty to find it out."
        ),
    )  # fmt: skip
    match_cidrs = StringField(
        _l("Calls come from"), description=_l(
            "Networks whose calls are this trunk's, e.g."
            " 203.0.113.0/24, separated by commas; empty for the server's address."
        ),
    )  # fmt: skip
    did_from = StringField(
        _l("Number called read from"), default="auto",
        description=_l(
            "Where an incoming call's number (DID) is read: auto, request-uri, to, or"
            " header:NAME."
        ),
    )  # fmt: skip
    late_offer = BooleanField(
        _l("Late offer"), description=_l(
            "Send calls without SDP, for providers that want to make the"
            " media offer themselves."
        ),
    )  # fmt: skip
    enabled = BooleanField(
        _l("In use"), default=True,
        description=_l("Untick to keep the trunk without registering or sending calls by it."),
    )  # fmt: skip
    media_encryption = media_encryption_field()


class NewTrunkForm(TrunkForm):
    name = StringField(
        _l("Trunk name"), [DataRequired()],
        description=_l(
            "A short name for routes and call records: lower-case letters, digits,"
            " '-' or '_', e.g. main or city-line."
        ),
    )  # fmt: skip


class DidForm(FlaskForm):
    label = StringField(
        _l("Label"), description=_l(
            "What people call this number, e.g. Main line; shown in call"
            " records."
        ),
    )  # fmt: skip
    destination = SelectField(
        _l("Calls go to"), choices=[],
        description=_l("Where calls to this number ring: an extension, or hang up with a cause."),
    )  # fmt: skip
    trunk = SelectField(
        _l("Trunk"), choices=[], description=_l(
            "The trunk its calls come in on; any to accept them"
            " on every trunk."
        ),
    )  # fmt: skip

    def offer(self, db: Database, current: str = "") -> None:
        """The choices that come from the store: extensions and trunks (`current` is the
        destination set now, kept among the choices)."""
        self.destination.choices = destination_choices(db, current)
        self.trunk.choices = trunk_choices(db, _("Any trunk"))


class NewDidForm(DidForm):
    number = StringField(
        _l("Number"), [DataRequired()],
        description=_l(
            "The office's number as the provider sends it, in any form: +49 30"
            " 1234567, 030 1234567, or a short number."
        ),
    )  # fmt: skip


SHOWN_TRUNKS = 3
"""Trunk selects a route's form offers at least (when there are as many trunks)."""


class RouteForm(FlaskForm):
    patterns = TextAreaField(
        _l("Numbers it takes"), [DataRequired()], render_kw={"rows": 3},
        description=_l(
            "Dial patterns, one per line or separated by commas: X is any digit, Z 1-9,"
            " N 2-9, [1-4] a range, . any digits more; e.g. 8XXXXXXXXXX or 00."
        ),
    )  # fmt: skip
    trunks = FieldList(
        SelectField(_l("Trunk"), choices=[], validate_choice=True), _l("Trunks"), max_entries=32,
        description=_l(
            "Tried in this order: when the first cannot take the call, the next one"
            " does."
        ),
    )  # fmt: skip
    prepend = StringField(
        _l("Prepend"), description=_l(
            "Digits put before the number sent to the provider (an optional"
            " leading +); empty for none."
        ),
    )  # fmt: skip
    caller_id = SelectField(
        _l("Caller ID outside"), choices=[],
        description=_l(
            "The office number (DID) shown on calls by this route; none for the"
            " extension's own or the trunk's."
        ),
    )  # fmt: skip

    def offer(self, db: Database) -> None:
        """The choices that come from the store, and a trunk select for each place in the
        failover order up to SHOWN_TRUNKS (or as many as there are trunks)."""
        offered = trunk_choices(db, _("None"))
        while len(self.trunks) < max(1, min(SHOWN_TRUNKS, len(offered) - 1)):
            self.trunks.append_entry()
        for entry in self.trunks:
            entry.choices = offered
        self.caller_id.choices = caller_id_choices(
            db, _("None: the extension's own, or the trunk's")
        )


class NewRouteForm(RouteForm):
    name = StringField(
        _l("Route name"), [DataRequired()],
        description=_l("A short name: lower-case letters, digits, '-' or '_', e.g. mobile."),
    )  # fmt: skip


class RouteMoveForm(FlaskForm):
    position = IntegerField(
        _l("Position"), [InputRequired()], widget=HiddenInput(),
        description=_l("Where the route goes in the list; 1 is tried first."),
    )  # fmt: skip


class ConfirmForm(FlaskForm):
    """A button that changes something: only its CSRF token is checked."""


class AllowListForm(FlaskForm):
    """The security page's allow-list (setting `security.allow`, checked by the store)."""

    allow = StringField(
        _l("Never ban"),
        description=_l(
            "Addresses and networks, comma-separated, that are never banned nor rate-limited:"
            " the office's LAN, e.g. 192.168.1.0/24. Trunks' providers and addresses that"
            " authenticated in the last hour are never banned either."
        ),
    )


class CdrFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    since = DateField(_l("From"), [Optional()], description=_l("First day to show (office time)."))
    until = DateField(_l("To"), [Optional()], description=_l("Last day to show, included."))
    extension = StringField(
        _l("Extension"), [Optional()],
        description=_l("Calls made, dialled or answered by this number."),
    )  # fmt: skip
    disposition = SelectField(
        _l("Result"), [Optional()], choices=choices([("", _l("Any")), *DISPOSITION_NAMES.items()]),
        description=_l("How the call ended."),
    )  # fmt: skip
    direction = SelectField(
        _l("Direction"), [Optional()], choices=choices([("", _l("Any")), *DIRECTION_NAMES.items()]),
        description=_l("Internal, in from a trunk, or out by one."),
    )  # fmt: skip
    trunk = SelectField(
        _l("Trunk"), [Optional()], choices=choices([("", _l("Any"))]),
        description=_l("Calls that came in or went out by this trunk."),
    )  # fmt: skip

    def offer(self, db: Database) -> None:
        """The choices that come from the store: the trunks."""
        self.trunk.choices = trunk_choices(db, _("Any"))


class PasswordChangeForm(FlaskForm):
    current = PasswordField(
        _l("Current password"), [DataRequired()], description=_l("The password you logged in with.")
    )
    password = PasswordField(
        _l("New password"), [DataRequired()],
        description=_l("At least 10 characters mixing upper-case, lower-case, digits or symbols."),
    )  # fmt: skip
    confirm = PasswordField(
        _l("Repeat the new password"),
        [DataRequired(), EqualTo("password", _l("The passwords differ."))],
        description=_l("Type the new password again."),
    )  # fmt: skip


class UserForm(FlaskForm):
    username = StringField(
        _l("User name"), [DataRequired()],
        description=_l("Lower-case letters and digits, e.g. anna."),
    )  # fmt: skip
    password = PasswordField(
        _l("Password"), [DataRequired()],
        description=_l("At least 10 characters mixing upper-case, lower-case, digits or symbols."),
    )  # fmt: skip
    role = SelectField(
        _l("Role"), choices=ROLE_CHOICES, default="viewer",
        description=_l("Viewers see everything and change nothing; admins change everything."),
    )  # fmt: skip


class TokenForm(FlaskForm):
    name = StringField(
        _l("Token name"), [DataRequired()], description=_l("What uses it, e.g. CRM integration.")
    )
    role = SelectField(
        _l("Role"), choices=ROLE_CHOICES, default="viewer",
        description=_l("A viewer token can only read through the API."),
    )  # fmt: skip


class RestoreForm(FlaskForm):
    backup = FileField(
        _l("Backup file"), [FileRequired(_l("Choose a backup file."))],
        description=_l(
            "A file downloaded with 'Download backup'. It replaces the whole"
            " configuration: extensions, trunks, numbers, routes, users, tokens and settings."
        ),
    )  # fmt: skip


class RestartForm(FlaskForm):
    service = SelectField(
        _l("Service"),
        choices=choices([("core", _l("pbx-core (calls end)")), ("web", _l("pbx-web (this page)"))]),
        description=_l("Restarting the core ends calls in progress; phones stay registered."),
    )  # fmt: skip


class FactoryResetForm(FlaskForm):
    confirm = StringField(
        _l("Type RESET to confirm"), [DataRequired()],
        description=_l("Every setting, extension, call record, recording, prompt and voicemail "
                       "message is erased; the box restarts as new."),
    )  # fmt: skip


# -- call recording (appliance.web.recordings) -----------------------------------------

MATCH_NAMES = {
    "extension": _l("Extension (either party)"),
    "did": _l("Number called (DID)"),
    "route": _l("Outbound route or trunk"),
    "direction": _l("Direction"),
}
assert set(MATCH_NAMES) == set(recordings.MATCH_KINDS)


class RecordingRuleForm(FlaskForm):
    match = SelectField(
        _l("Matches"), choices=choices(MATCH_NAMES.items()),
        description=_l("What about a call the rule looks at; the most specific kind decides."),
    )  # fmt: skip
    value = StringField(
        _l("Value"), [DataRequired()],
        description=_l(
            "The extension or number, the route or trunk name, or inbound, outbound or internal."
        ),
    )  # fmt: skip
    record = SelectField(
        _l("Record"), choices=choices([("1", _l("Record")), ("0", _l("Do not record"))]),
        description=_l("Do not record: an exception to a broader rule."),
    )  # fmt: skip
    retention_days = IntegerField(
        _l("Keep for (days)"), [Optional(), NumberRange(0, 36500)],
        description=_l("Empty: the default; 0: for ever."),
    )  # fmt: skip
    consent = BooleanField(
        _l("Consent announcement"),
        description=_l("The caller hears that the call is recorded as it is connected."),
    )  # fmt: skip


class RecordingStorageForm(FlaskForm):
    quota_mib = IntegerField(
        _l("Quota (MiB)"), [NumberRange(0, 1_048_576)],
        description=_l("Most space all recordings may take; the oldest go first. 0: no quota."),
    )  # fmt: skip
    floor_mib = IntegerField(
        _l("Free-space floor (MiB)"), [NumberRange(0, 1_048_576)],
        description=_l("Space the disk always keeps free: the oldest recordings go first."),
    )  # fmt: skip
    retention_days = IntegerField(
        _l("Keep recordings for (days)"), [NumberRange(0, 36500)],
        description=_l("Unless their rule says otherwise; 0: for ever."),
    )  # fmt: skip
    feature_code = StringField(
        _l("Feature code"), [DataRequired()],
        description=_l("Dialled during a call to start or stop recording it, e.g. *1."),
    )  # fmt: skip
    viewers_listen = BooleanField(
        _l("Viewers may listen"),
        description=_l("Users with the viewer role may play and download recordings too."),
    )  # fmt: skip


# -- the SMTP relay voicemail is e-mailed through (appliance.web.system) -----------------


class MailRelayForm(FlaskForm):
    host = StringField(
        _l("SMTP server"),
        description=_l("The relay voicemail is e-mailed through, e.g. smtp.example.com."
                       " Empty: no e-mail is sent."),
    )  # fmt: skip
    port = IntegerField(
        _l("Port"), [InputRequired(), NumberRange(1, 65535)],
        description=_l("587 for submission with STARTTLS, 25 for a relay on the LAN."),
    )  # fmt: skip
    starttls = BooleanField(
        _l("STARTTLS"),
        description=_l("Encrypt the connection before logging in and sending (recommended)."),
    )
    user = StringField(
        _l("User name"), description=_l("For the relay's AUTH; empty: send without logging in.")
    )
    password = PasswordField(
        _l("Password"),
        description=_l("Stored, never shown again. Empty: the stored password is kept."),
    )
    clear_password = BooleanField(
        _l("Forget the stored password"), description=_l("Send without a password from now on.")
    )
    sender = StringField(
        _l("From"), description=_l("The sender address of voicemail e-mails, e.g. pbx@example.com.")
    )
