"""SIP trunks: the list with each trunk's state as the running core reports it, add, edit,
remove, and a test (registration state and an OPTIONS round trip, asked of the core now).

The password is never put in a page: its field is always rendered empty, and left empty on
an edit it keeps the stored one."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from appliance.store import encryption, trunks
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.trunks import Trunk, TrunkError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.forms import ConfirmForm, NewTrunkForm, TrunkForm, refuse, secret, text
from appliance.web.i18n import _, translate

bp = Blueprint("trunks", __name__, url_prefix="/trunks")

TEXT_FIELDS = (
    "kind", "server", "username", "auth_user", "transport", "outbound_proxy", "from_user",
    "from_domain", "codecs", "max_calls", "expires", "options_interval", "external_address",
    "match_cidrs", "did_from",
)  # fmt: skip
"""The form's text and choice fields, each named as the store's field it sets."""


def states(db: Database, core: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every stored trunk with its state as the running core reports it (`core` is its status,
    None when it is down): name, kind, server, state, last_response, registered_until,
    options_rtt_ms, calls, max_calls. A trunk the core does not run is "disabled" or
    "unknown"."""
    live = {t["name"]: t for t in (core or {}).get("trunks", [])}
    found = []
    for trunk in trunks.list_all(db):
        row = {
            "name": trunk.name, "kind": trunk.kind, "server": trunk.server,
            "state": "unknown" if trunk.enabled else "disabled", "last_response": None,
            "registered_until": None, "options_rtt_ms": None, "calls": 0,
            "max_calls": trunk.max_calls,
        }  # fmt: skip
        row.update(live.get(trunk.name, {}))
        found.append(row)
    return found


def _values(form: TrunkForm) -> dict[str, object]:
    """The store fields the form sets; an empty password field sets nothing (keeps it)."""
    values: dict[str, object] = {name: text(form[name]) for name in TEXT_FIELDS}
    values["late_offer"] = bool(form.late_offer.data)
    values["enabled"] = bool(form.enabled.data)
    if secret(form.password):
        values["password"] = secret(form.password)
    return values


def _existing(name: str) -> Trunk:
    trunk = trunks.get(get_db(), name)
    if trunk is None:
        abort(404, _("There is no trunk %(name)s.", name=name))
    return trunk


def _list(tested: dict[str, Any] | None = None) -> ResponseReturnValue:
    core = corectl.status()
    return render_template(
        "trunks.html", trunks=states(get_db(), core), core_running=core is not None,
        tested=tested, form=ConfirmForm(),
    )  # fmt: skip


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    return _list()


@bp.route("/new", methods=["GET", "POST"])
@access("admin")
def new() -> ResponseReturnValue:
    form = NewTrunkForm()
    if form.validate_on_submit():
        name = text(form.name)
        db = get_db()
        try:
            with transaction(db):
                trunks.add(db, name, **_values(form))
                encryption.set_for_trunk(db, name, text(form.media_encryption))
        except TrunkError as exc:
            refuse(form, exc.field, translate(exc), "name")
        else:
            corectl.applied(_("Trunk %(name)s added.", name=name))
            return redirect(url_for("trunks.index"))
    return render_template("trunk_form.html", form=form, name=None)


@bp.route("/<name>/edit", methods=["GET", "POST"])
@access("admin")
def edit(name: str) -> ResponseReturnValue:
    trunk = _existing(name)
    shown = trunk.masked()
    del shown["password"]  # never rendered back, not even masked
    db = get_db()
    shown["media_encryption"] = encryption.of_trunk(db, name)
    form = TrunkForm(data=shown)
    if form.validate_on_submit():
        try:
            with transaction(db):
                trunks.update(db, name, **_values(form))
                encryption.set_for_trunk(db, name, text(form.media_encryption))
        except TrunkError as exc:
            refuse(form, exc.field, translate(exc), "server")
        else:
            corectl.applied(_("Trunk %(name)s saved.", name=name))
            return redirect(url_for("trunks.index"))
    return render_template(
        "trunk_form.html", form=form, name=name, has_password=bool(trunk.password)
    )


@bp.route("/<name>/delete", methods=["POST"])
@access("admin")
def delete(name: str) -> ResponseReturnValue:
    _existing(name)
    if ConfirmForm().validate_on_submit():
        try:
            trunks.remove(get_db(), name)
        except TrunkError as exc:
            flash(
                _("Trunk %(name)s was not deleted: %(reason)s.", name=name, reason=translate(exc)),
                "error",
            )
        else:
            corectl.applied(_("Trunk %(name)s deleted.", name=name))
    return redirect(url_for("trunks.index"))


@bp.route("/<name>/test", methods=["POST"])
@access("admin")
def test(name: str) -> ResponseReturnValue:
    """Ask the running core for the trunk's state and an OPTIONS round trip now, and show the
    list with the answer (app.js swaps the answer in without reloading the page)."""
    _existing(name)
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("trunks.index"))
    return _list(tested={"name": name, "answer": corectl.trunk_test(name)})
