"""The office's numbers (DIDs, virtual numbers): list, add, edit (where its calls go, its label,
its trunk), remove. The destinations offered come from the store: every extension and every
way of hanging up."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from appliance.store import destinations, dids
from appliance.store.dids import Did, DidError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.forms import ConfirmForm, DidForm, NewDidForm, refuse, text
from appliance.web.i18n import _, translate

bp = Blueprint("dids", __name__, url_prefix="/numbers")


def _existing(number: str) -> Did:
    did = dids.get(get_db(), number)
    if did is None:
        abort(404, _("There is no number %(number)s.", number=number))
    return did


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    db = get_db()
    rows = [
        (did, translate(destinations.describe(db, did.destination))) for did in dids.list_all(db)
    ]
    return render_template("dids.html", dids=rows, form=ConfirmForm())


@bp.route("/new", methods=["GET", "POST"])
@access("admin")
def new() -> ResponseReturnValue:
    form = NewDidForm()
    form.offer(get_db())
    if form.validate_on_submit():
        try:
            did = dids.add(
                get_db(), text(form.number), text(form.destination), text(form.label),
                text(form.trunk),
            )  # fmt: skip
        except DidError as exc:
            refuse(form, exc.field, translate(exc), "number")
        else:
            corectl.applied(_("Number %(number)s added.", number=did.number))
            return redirect(url_for("dids.index"))
    return render_template("did_form.html", form=form, number=None)


@bp.route("/<number>/edit", methods=["GET", "POST"])
@access("admin")
def edit(number: str) -> ResponseReturnValue:
    did = _existing(number)
    form = DidForm(data={"label": did.label, "destination": did.destination, "trunk": did.trunk})
    form.offer(get_db(), did.destination)
    if form.validate_on_submit():
        try:
            dids.update(
                get_db(), did.number, destination=text(form.destination),
                label=text(form.label), trunk=text(form.trunk),
            )  # fmt: skip
        except DidError as exc:
            refuse(form, exc.field, translate(exc), "destination")
        else:
            corectl.applied(_("Number %(number)s saved.", number=did.number))
            return redirect(url_for("dids.index"))
    return render_template("did_form.html", form=form, number=did.number)


@bp.route("/<number>/delete", methods=["POST"])
@access("admin")
def delete(number: str) -> ResponseReturnValue:
    did = _existing(number)
    if ConfirmForm().validate_on_submit():
        try:
            dids.remove(get_db(), did.number)
        except DidError as exc:  # an extension or a route presents it as caller ID
            flash(
                _(
                    "Number %(number)s was not deleted: %(reason)s.",
                    number=did.number,
                    reason=translate(exc),
                ),
                "error",
            )
        else:
            corectl.applied(_("Number %(number)s deleted.", number=did.number))
    return redirect(url_for("dids.index"))
