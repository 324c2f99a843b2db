"""Outbound routes: the ordered list (the first whose pattern matches a dialled number takes the
call), add, edit, remove, and moving a route up or down: with the buttons, or by dragging its
row (app.js posts the new position to the same view the buttons do)."""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from appliance.store import routes
from appliance.store.routes import Route, RouteError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.forms import (
    ConfirmForm,
    NewRouteForm,
    RouteForm,
    RouteMoveForm,
    refuse,
    reject,
    text,
)  # fmt: skip
from appliance.web.i18n import _, translate

bp = Blueprint("routes", __name__, url_prefix="/routes")


def patterns(form: RouteForm) -> list[str]:
    """The dial patterns typed, one per line or separated by commas."""
    return [p.strip() for p in re.split(r"[,\n]", form.patterns.data or "") if p.strip()]


def _save(form: RouteForm, name: str | None) -> Route | None:
    """Add (name None: the form's name) or change a route from the form; None, with the
    store's reason under its field, when refused."""
    db = get_db()
    chosen = [t for t in (text(entry) for entry in form.trunks) if t]
    try:
        if name is None:
            assert isinstance(form, NewRouteForm)
            return routes.add(
                db, text(form.name), patterns(form), chosen, text(form.prepend),
                text(form.caller_id),
            )  # fmt: skip
        return routes.update(
            db, name, patterns=patterns(form), trunks=chosen, prepend=text(form.prepend),
            caller_id=text(form.caller_id),
        )  # fmt: skip
    except RouteError as exc:
        if exc.field == "trunks":  # shown under the first trunk's select
            reject(form.trunks.entries[0], translate(exc))
        else:
            refuse(form, exc.field, translate(exc), "patterns")
        return None


def _existing(name: str) -> Route:
    route = routes.get(get_db(), name)
    if route is None:
        abort(404, _("There is no route %(name)s.", name=name))
    return route


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    return render_template("routes.html", routes=routes.list_all(get_db()), form=ConfirmForm())


@bp.route("/new", methods=["GET", "POST"])
@access("admin")
def new() -> ResponseReturnValue:
    form = NewRouteForm()
    form.offer(get_db())
    if form.validate_on_submit():
        route = _save(form, None)
        if route is not None:
            corectl.applied(
                _(
                    "Route %(name)s added at position %(position)s.",
                    name=route.name,
                    position=route.position,
                )
            )
            return redirect(url_for("routes.index"))
    return render_template("route_form.html", form=form, name=None)


@bp.route("/<name>/edit", methods=["GET", "POST"])
@access("admin")
def edit(name: str) -> ResponseReturnValue:
    route = _existing(name)
    form = RouteForm(
        data={
            "patterns": "\n".join(route.patterns), "trunks": list(route.trunks),
            "prepend": route.prepend, "caller_id": route.caller_id,
        }
    )  # fmt: skip
    form.offer(get_db())
    if form.validate_on_submit() and _save(form, name) is not None:
        corectl.applied(_("Route %(name)s saved.", name=name))
        return redirect(url_for("routes.index"))
    return render_template("route_form.html", form=form, name=name)


@bp.route("/<name>/move", methods=["POST"])
@access("admin")
def move(name: str) -> ResponseReturnValue:
    """Put a route at another position (1 is tried first): the up and down buttons, and a row
    dragged to its new place."""
    _existing(name)
    form = RouteMoveForm()
    if form.validate_on_submit():
        try:
            route = routes.move(get_db(), name, form.position.data or 0)
        except RouteError as exc:
            flash(
                _("Route %(name)s was not moved: %(reason)s.", name=name, reason=translate(exc)),
                "error",
            )
        else:
            corectl.applied(
                _("Route %(name)s is now number %(position)s.", name=name, position=route.position)
            )
    elif form.position.errors:
        flash(_("Route %(name)s was not moved: no position was given.", name=name), "error")
    return redirect(url_for("routes.index"))


@bp.route("/<name>/delete", methods=["POST"])
@access("admin")
def delete(name: str) -> ResponseReturnValue:
    _existing(name)
    if ConfirmForm().validate_on_submit():
        try:
            routes.remove(get_db(), name)
        except RouteError as exc:
            flash(
                _("Route %(name)s was not deleted: %(reason)s.", name=name, reason=translate(exc)),
                "error",
            )
        else:
            corectl.applied(_("Route %(name)s deleted.", name=name))
    return redirect(url_for("routes.index"))
