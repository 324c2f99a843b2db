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
from appliance.store import destinations, dids, extensions, trunks
from appliance.store.cdrs import DIRECTIONS, DISPOSITIONS
from appliance.store.database import Database
from appliance.store.settings import COUNTRIES
from appliance.store.trunks import TRANSPORTS
from appliance.store.users import ROLES


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


def choices(pairs: Iterable[tuple[str, str]], optgroup: str | None = None) -> list[SelectChoice]:
    return [SelectChoice(value, label, optgroup=optgroup) for value, label in pairs]


def destination_choices(db: Database, current: str = "") -> list[SelectChoice]:
    """Where calls from outside may go, from the store: each extension, then each way of
    hanging up; `current` (what is set now) is kept among them even if no longer offered."""
    offered = [f"extension:{e.number}" for e in extensions.list_all(db)]
    found = choices(((d, destinations.describe(db, d)) for d in offered), "Extensions")
    causes = [f"hangup:{cause}" for cause in destinations.HANGUP_CAUSES]
    found += choices(((d, destinations.describe(db, d)) for d in causes), "Hang up")
    if current and current not in offered + causes:
        found.insert(0, SelectChoice(current, destinations.describe(db, current)))
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


ROLE_CHOICES = choices((r, r.capitalize()) for r in ROLES)
PERMISSION_CHOICES = choices((c, c.replace("-", " ").capitalize()) for c in PERMISSION_CLASSES)


@cache
def timezone_choices() -> list[SelectChoice]:
    import zoneinfo

    return choices((n, n.replace("_", " ")) for n in sorted(zoneinfo.available_timezones()))


class AccountForm(FlaskForm):
    username = StringField(
        "Admin user name", [DataRequired()], default="admin",
        description="Lower-case letters and digits, e.g. admin. You log in with it.",
    )  # fmt: skip
    password = PasswordField(
        "Password", [DataRequired()],
        description="At least 10 characters mixing upper-case, lower-case, digits or symbols"
        " (or 16 characters or more). There is no default password: keep this one safe.",
    )  # fmt: skip
    confirm = PasswordField(
        "Repeat the password", [DataRequired(), EqualTo("password", "The passwords differ.")],
        description="Type the same password again, to be sure of it.",
    )  # fmt: skip


class LoginForm(FlaskForm):
    username = StringField(
        "User name", [DataRequired()], description="The name given when the account was made."
    )
    password = PasswordField(
        "Password", [DataRequired()],
        description="After 5 wrong tries from one computer, logins from it wait 15 minutes.",
    )  # fmt: skip


class OfficeForm(FlaskForm):
    office_name = StringField(
        "Office name", [DataRequired()], description="Shown at the top of every page."
    )
    country = SelectField(
        "Country", choices=choices(COUNTRIES.items()),
        description="Sets the dial tone, ring cadence and caller-ID style of the analog ports.",
    )  # fmt: skip
    timezone = SelectField(
        "Time zone", choices=[],
        description="Call records and schedules are shown in this time zone.",
    )  # fmt: skip
    number_min = IntegerField(
        "Lowest extension number", [InputRequired()], default=100,
        description="Extensions must be numbered from this...",
    )  # fmt: skip
    number_max = IntegerField(
        "Highest extension number", [InputRequired()], default=199,
        description="...up to this, e.g. 100 to 199.",
    )  # fmt: skip

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


class FirstExtensionsForm(FlaskForm):
    first = StringField(
        "First extension number", [DataRequired()], default="100",
        description="Numbers are given in order from this one, e.g. 100, 101, 102...",
    )  # fmt: skip
    count = IntegerField(
        "How many phones", [InputRequired(), NumberRange(1, 100)], default=4,
        description="One extension per phone, 1 to 100. More can be added later.",
    )  # fmt: skip


class ExtensionForm(FlaskForm):
    number = StringField(
        "Extension number", [DataRequired()],
        description="2 to 6 digits, inside the office's numbering range. Dialled to reach it.",
    )  # fmt: skip
    name = StringField(
        "Name", description="Who sits at this phone; shown as caller ID on other phones."
    )
    password = PasswordField(
        "SIP password", [Optional()],
        description="Leave empty to have a strong one generated (recommended). Otherwise at"
        " least 10 characters mixing letters and digits.",
    )  # fmt: skip


class ExtensionEditForm(FlaskForm):
    name = StringField(
        "Name", description="Who sits at this phone; shown as caller ID on other phones."
    )
    permissions = SelectMultipleField(
        "May call", choices=PERMISSION_CHOICES,
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
        description="The kinds of numbers this phone may dial out to. Calls to other extensions"
        " are always allowed, and so are emergency numbers.",
    )  # fmt: skip
    caller_id = SelectField(
        "Caller ID outside", choices=[],
        description="The office number (DID) people see when this phone calls out; none to"
        " use the route's or the trunk's.",
    )  # fmt: skip

    def offer(self, db: Database) -> None:
        """The choices that come from the store: the office's numbers."""
        self.caller_id.choices = caller_id_choices(db, "None: the route's or the trunk's")


TRUNK_KINDS = choices(
    [("register", "Registration (user name and password)"),
     ("ip", "IP address (no registration)")]
)  # fmt: skip


class TrunkForm(FlaskForm):
    """A trunk's settings; field names are the store's (`appliance.store.trunks`), so a refusal
    is shown under the field it names."""

    kind = SelectField(
        "Kind", choices=TRUNK_KINDS, default="register",
        description="Most providers give an account to register with; an IP trunk (another"
        " office, a provider on a private line) sends calls from known addresses instead.",
    )  # fmt: skip
    server = StringField(
        "Server", [DataRequired()],
        description="The provider's SIP server: a host name or address, with :PORT when it is"
        " not 5060, e.g. sip.example.net or 203.0.113.5:5080.",
    )  # fmt: skip
    username = StringField(
        "User name", description="The account at the provider (often the phone number)."
    )
    password = PasswordField(
        "Password",
        description="The account's password at the provider. Never shown again: on a trunk"
        " already saved, leave it empty to keep the stored one.",
    )  # fmt: skip
    auth_user = StringField(
        "Authentication user", description="Only when the provider gives a separate login for"
        " authentication; empty to use the user name.",
    )  # fmt: skip
    transport = SelectField(
        "Transport", choices=choices((t, t.upper()) for t in TRANSPORTS), default="udp",
        description="UDP unless the provider asks for TCP.",
    )  # fmt: skip
    outbound_proxy = StringField(
        "Outbound proxy", description="HOST or HOST:PORT to send everything through, when the"
        " provider gives one; empty for none.",
    )  # fmt: skip
    from_user = StringField(
        "From user", description="The user part of From on outgoing calls, when the provider"
        " wants other than the user name.",
    )  # fmt: skip
    from_domain = StringField(
        "From domain", description="The host part of From, when the provider wants other than"
        " the server.",
    )  # fmt: skip
    codecs = StringField(
        "Codecs", default="PCMA,PCMU,G722",
        description="Offered to the provider, most preferred first: some of PCMA, PCMU, G722,"
        " separated by commas.",
    )  # fmt: skip
    max_calls = StringField(
        "Calls at once", default="0", render_kw={"inputmode": "numeric"},
        description="How many calls the account allows at the same time; 0 for no limit.",
    )  # fmt: skip
    expires = StringField(
        "Registration time (s)", default="300", render_kw={"inputmode": "numeric"},
        description="How long each registration is asked for, 60 to 86400 seconds.",
    )  # fmt: skip
    options_interval = StringField(
        "Keep-alive every (s)", default="30", render_kw={"inputmode": "numeric"},
        description="Seconds between OPTIONS pings that check the provider answers (10 to"
        " 3600); 0 for none.",
    )  # fmt: skip
    external_address = StringField(
        "Public address", description="The office's public IP address or host name, when the"
        " box is behind NAT and the provider needs it; empty to find it out.",
    )  # fmt: skip
    match_cidrs = StringField(
        "Calls come from", description="Networks whose calls are this trunk's, e.g."
        " 203.0.113.0/24, separated by commas; empty for the server's address.",
    )  # fmt: skip
    did_from = StringField(
        "Number called read from", default="auto",
        description="Where an incoming call's number (DID) is read: auto, request-uri, to, or"
        " header:NAME.",
    )  # fmt: skip
    late_offer = BooleanField(
        "Late offer", description="Send calls without SDP, for providers that want to make the"
        " media offer themselves.",
    )  # fmt: skip
    enabled = BooleanField(
        "In use", default=True,
        description="Untick to keep the trunk without registering or sending calls by it.",
    )  # fmt: skip


class NewTrunkForm(TrunkForm):
    name = StringField(
        "Trunk name", [DataRequired()],
        description="A short name for routes and call records: lower-case letters, digits,"
        " '-' or '_', e.g. main or city-line.",
    )  # fmt: skip


class DidForm(FlaskForm):
    label = StringField(
        "Label", description="What people call this number, e.g. Main line; shown in call"
        " records.",
    )  # fmt: skip
    destination = SelectField(
        "Calls go to", choices=[],
        description="Where calls to this number ring: an extension, or hang up with a cause.",
    )  # fmt: skip
    trunk = SelectField(
        "Trunk", choices=[], description="The trunk its calls come in on; any to accept them"
        " on every trunk.",
    )  # fmt: skip

    def offer(self, db: Database, current: str = "") -> None:
        """The choices that come from the store: extensions and trunks (`current` is the
        destination set now, kept among the choices)."""
        self.destination.choices = destination_choices(db, current)
        self.trunk.choices = trunk_choices(db, "Any trunk")


class NewDidForm(DidForm):
    number = StringField(
        "Number", [DataRequired()],
        description="The office's number as the provider sends it, in any form: +49 30"
        " 1234567, 030 1234567, or a short number.",
    )  # fmt: skip


SHOWN_TRUNKS = 3
"""Trunk selects a route's form offers at least (when there are as many trunks)."""


class RouteForm(FlaskForm):
    patterns = TextAreaField(
        "Numbers it takes", [DataRequired()], render_kw={"rows": 3},
        description="Dial patterns, one per line or separated by commas: X is any digit, Z 1-9,"
        " N 2-9, [1-4] a range, . any digits more; e.g. 8XXXXXXXXXX or 00.",
    )  # fmt: skip
    trunks = FieldList(
        SelectField("Trunk", choices=[], validate_choice=True), "Trunks", max_entries=32,
        description="Tried in this order: when the first cannot take the call, the next one"
        " does.",
    )  # fmt: skip
    prepend = StringField(
        "Prepend", description="Digits put before the number sent to the provider (an optional"
        " leading +); empty for none.",
    )  # fmt: skip
    caller_id = SelectField(
        "Caller ID outside", choices=[],
        description="The office number (DID) shown on calls by this route; none for the"
        " extension's own or the trunk's.",
    )  # fmt: skip

    def offer(self, db: Database) -> None:
        """The choices that come from the store, and a trunk select for each place in the
        failover order up to SHOWN_TRUNKS (or as many as there are trunks)."""
        offered = trunk_choices(db, "None")
        while len(self.trunks) < max(1, min(SHOWN_TRUNKS, len(offered) - 1)):
            self.trunks.append_entry()
        for entry in self.trunks:
            entry.choices = offered
        self.caller_id.choices = caller_id_choices(db, "None: the extension's own, or the trunk's")


class NewRouteForm(RouteForm):
    name = StringField(
        "Route name", [DataRequired()],
        description="A short name: lower-case letters, digits, '-' or '_', e.g. mobile.",
    )  # fmt: skip


class RouteMoveForm(FlaskForm):
    position = IntegerField(
        "Position", [InputRequired()], widget=HiddenInput(),
        description="Where the route goes in the list; 1 is tried first.",
    )  # fmt: skip


class ConfirmForm(FlaskForm):
    """A button that changes something: only its CSRF token is checked."""


class CdrFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    since = DateField("From", [Optional()], description="First day to show (office time).")
    until = DateField("To", [Optional()], description="Last day to show, included.")
    extension = StringField(
        "Extension", [Optional()], description="Calls made, dialled or answered by this number."
    )
    disposition = SelectField(
        "Result", [Optional()], choices=choices([("", "Any"), *((d, d) for d in DISPOSITIONS)]),
        description="How the call ended.",
    )  # fmt: skip
    direction = SelectField(
        "Direction", [Optional()], choices=choices([("", "Any"), *((d, d) for d in DIRECTIONS)]),
        description="Internal, in from a trunk, or out by one.",
    )  # fmt: skip
    trunk = SelectField(
        "Trunk", [Optional()], choices=choices([("", "Any")]),
        description="Calls that came in or went out by this trunk.",
    )  # fmt: skip

    def offer(self, db: Database) -> None:
        """The choices that come from the store: the trunks."""
        self.trunk.choices = trunk_choices(db, "Any")


class PasswordChangeForm(FlaskForm):
    current = PasswordField(
        "Current password", [DataRequired()], description="The password you logged in with."
    )
    password = PasswordField(
        "New password", [DataRequired()],
        description="At least 10 characters mixing upper-case, lower-case, digits or symbols.",
    )  # fmt: skip
    confirm = PasswordField(
        "Repeat the new password",
        [DataRequired(), EqualTo("password", "The passwords differ.")],
        description="Type the new password again.",
    )  # fmt: skip


class UserForm(FlaskForm):
    username = StringField(
        "User name", [DataRequired()], description="Lower-case letters and digits, e.g. anna."
    )
    password = PasswordField(
        "Password", [DataRequired()],
        description="At least 10 characters mixing upper-case, lower-case, digits or symbols.",
    )  # fmt: skip
    role = SelectField(
        "Role", choices=ROLE_CHOICES, default="viewer",
        description="Viewers see everything and change nothing; admins change everything.",
    )  # fmt: skip


class TokenForm(FlaskForm):
    name = StringField(
        "Token name", [DataRequired()], description="What uses it, e.g. CRM integration."
    )
    role = SelectField(
        "Role", choices=ROLE_CHOICES, default="viewer",
        description="A viewer token can only read through the API.",
    )  # fmt: skip


class RestoreForm(FlaskForm):
    backup = FileField(
        "Backup file", [FileRequired("Choose a backup file.")],
        description="A file downloaded with 'Download backup'. It replaces the whole"
        " configuration: extensions, trunks, numbers, routes, users, tokens and settings.",
    )  # fmt: skip


class RestartForm(FlaskForm):
    service = SelectField(
        "Service",
        choices=choices([("core", "pbx-core (calls end)"), ("web", "pbx-web (this page)")]),
        description="Restarting the core ends calls in progress; phones stay registered.",
    )  # fmt: skip
