"""Every form of the setup page. Each field has a label and a help text (`description`), which
the templates show beside it; a test fails when one is missing.

Fields check only their shape here; what a value means (is the number free and in range, is
the password strong) is checked by the store, the one place every entry point goes through."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, Field, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # new in 3.3
from wtforms.validators import DataRequired, EqualTo, InputRequired, NumberRange, Optional

from appliance.store.cdrs import DISPOSITIONS
from appliance.store.settings import COUNTRIES
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


def choices(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


ROLE_CHOICES = choices((r, r.capitalize()) for r in ROLES)


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


class ExtensionNameForm(FlaskForm):
    name = StringField(
        "Name", description="Who sits at this phone; shown as caller ID on other phones."
    )


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
        " configuration: extensions, users, tokens and settings.",
    )  # fmt: skip


class RestartForm(FlaskForm):
    service = SelectField(
        "Service",
        choices=choices([("core", "pbx-core (calls end)"), ("web", "pbx-web (this page)")]),
        description="Restarting the core ends calls in progress; phones stay registered.",
    )  # fmt: skip
