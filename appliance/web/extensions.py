"""Extensions: list, add, edit (name, the kinds of numbers it may call, its caller ID outside),
delete, new SIP password (shown once) and the printable sheet of server, user and password for
each phone."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from appliance.store import encryption, extensions, registrations
from appliance.store.db import transaction
from appliance.store.extensions import ExtensionError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.forms import (
    ConfirmForm,
    ExtensionEditForm,
    ExtensionForm,
    refuse,
    reject,
    secret,
    text,
)  # fmt: skip
from appliance.web.i18n import _, ngettext, office_locale, translate

bp = Blueprint("extensions", __name__, url_prefix="/extensions")


def sheet_page(entries: list[tuple[str, str, str]], first_boot: bool = False) -> str:
    """The page with the printable phone settings of (number, name, password) entries: the page
    in its reader's language, the cards printed for the office in the office's language."""
    sip_server = corectl.sip_server()
    with office_locale():
        cards = render_template("_phone_cards.html", entries=entries, sip_server=sip_server)
    return render_template(
        "sheet.html", entries=entries, sip_server=sip_server, cards=Markup(cards),
        first_boot=first_boot,
    )  # fmt: skip


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    db = get_db()
    registered: dict[str, int] = {}
    for row in registrations.summary(db):
        registered[row["aor"]] = registered.get(row["aor"], 0) + 1
    return render_template(
        "extensions.html", extensions=extensions.list_all(db), registered=registered,
        form=ConfirmForm(),
    )  # fmt: skip


@bp.route("/new", methods=["GET", "POST"])
@access("admin")
def new() -> ResponseReturnValue:
    form = ExtensionForm()
    if form.validate_on_submit():
        number = text(form.number)
        try:
            password = extensions.add(
                get_db(), number, text(form.name), secret(form.password) or None
            )
        except ExtensionError as exc:
            reject(form[exc.field], translate(exc))
        else:
            corectl.applied(_("Extension %(number)s added.", number=number))
            return sheet_page([(number, text(form.name), password)])
    return render_template("extension_form.html", form=form, number=None)


def _existing(number: str) -> extensions.Extension:
    ext = extensions.get(get_db(), number)
    if ext is None:
        abort(404, _("There is no extension %(number)s.", number=number))
    return ext


@bp.route("/<number>/edit", methods=["GET", "POST"])
@access("admin")
def edit(number: str) -> ResponseReturnValue:
    ext = _existing(number)
    db = get_db()
    own_limit = "" if ext.max_outbound_calls is None else str(ext.max_outbound_calls)
    form = ExtensionEditForm(
        data={"name": ext.name, "permissions": list(ext.permissions), "caller_id": ext.caller_id,
              "max_outbound_calls": own_limit,
              "media_encryption": encryption.of_extension(db, number)}
    )  # fmt: skip
    form.offer(db)
    if form.validate_on_submit():
        try:
            with transaction(db):  # all of it or nothing
                extensions.rename(db, number, text(form.name))
                extensions.set_permissions(db, number, form.permissions.data or [])
                extensions.set_caller_id(db, number, text(form.caller_id))
                extensions.set_max_outbound_calls(db, number, text(form.max_outbound_calls))
                encryption.set_for_extension(db, number, text(form.media_encryption))
        except ExtensionError as exc:
            refuse(form, exc.field, translate(exc), "name")
        else:
            corectl.applied(_("Extension %(number)s saved.", number=number))
            return redirect(url_for("extensions.index"))
    return render_template(
        "extension_form.html", form=form, number=number, confirm=ConfirmForm(),
        always=("internal",),
    )  # fmt: skip


@bp.route("/<number>/delete", methods=["POST"])
@access("admin")
def delete(number: str) -> ResponseReturnValue:
    _existing(number)
    if ConfirmForm().validate_on_submit():
        try:
            extensions.remove(get_db(), number)
        except ExtensionError as exc:  # a DID or a setting still sends calls to it
            flash(
                _(
                    "Extension %(number)s was not deleted: %(reason)s.",
                    number=number,
                    reason=translate(exc),
                ),
                "error",
            )
        else:
            corectl.applied(_("Extension %(number)s deleted.", number=number))
    return redirect(url_for("extensions.index"))


@bp.route("/<number>/password", methods=["POST"])
@access("admin")
def password(number: str) -> ResponseReturnValue:
    ext = _existing(number)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("extensions.index"))
    secret = extensions.set_password(get_db(), number)
    corectl.applied(
        _("Extension %(number)s has a new SIP password: enter it in the phone.", number=number)
    )
    return sheet_page([(number, ext.name, secret)])


@bp.route("/sheet", methods=["POST"])
@access("admin")
def sheet() -> ResponseReturnValue:
    """New passwords for every extension, on one printable sheet (stored passwords cannot be
    shown: only their digests are kept)."""
    db = get_db()
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("extensions.index"))
    with transaction(db):
        entries = [
            (e.number, e.name, extensions.set_password(db, e.number))
            for e in extensions.list_all(db)
        ]
    corectl.applied(
        ngettext(
            "A new SIP password for %(num)d extension: enter it in the phone.",
            "New SIP passwords for %(num)d extensions: enter them in the phones.",
            len(entries),
        )
    )
    return sheet_page(entries)
