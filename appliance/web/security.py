"""The security page: the addresses banned for failed authentications (the running core's
bans, or the stored ones when it is down), a button to lift each, and the allow-list of
addresses that are never banned (setting `security.allow`)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from appliance.store import bans, settings
from appliance.store.settings import SettingError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.forms import AllowListForm, ConfirmForm, reject, text
from appliance.web.i18n import _, translate

bp = Blueprint("security", __name__, url_prefix="/security")


def current_bans() -> tuple[list[dict[str, Any]], bool]:
    """The bans in force, oldest first, and whether the core is running (they are its own
    then, else those it will load when it starts)."""
    live = corectl.bans()
    if live is not None:
        return live, True
    now = time.time()
    return [ban.describe(now) for ban in bans.active(get_db(), now)], False


def lift(address: str) -> bool:
    """Lift a ban (a canonical address) where it lives: in the running core (which also
    removes the stored row), else in the store. Whether one was in force."""
    lifted = corectl.lift_ban(address)
    if lifted is None:  # the core is down: it loads the table when it starts
        return bans.remove(get_db(), address)
    return lifted


def _page(form: AllowListForm | None = None) -> ResponseReturnValue:
    rows, running = current_bans()
    if form is None:
        form = AllowListForm(data={"allow": settings.get_str(get_db(), "security.allow")})
    return render_template(
        "security.html", bans=rows, running=running, form=form, confirm=ConfirmForm()
    ), (200 if not form.errors else 400)


@bp.route("")
@access("viewer")
def index() -> ResponseReturnValue:
    return _page()


@bp.route("/allow", methods=["POST"])
@access("admin")
def allow() -> ResponseReturnValue:
    form = AllowListForm()
    if form.validate_on_submit():
        try:
            settings.set_value(get_db(), "security.allow", text(form.allow))
        except SettingError as exc:
            reject(form.allow, translate(exc))
        else:
            corectl.applied(_("The allow-list is saved."))
            return redirect(url_for("security.index"))
    return _page(form)


@bp.route("/bans/<address>/delete", methods=["POST"])
@access("admin")
def delete(address: str) -> ResponseReturnValue:
    if ConfirmForm().validate_on_submit():
        try:
            canonical = bans.canonical_address(address)
        except ValueError:
            canonical = ""
        if canonical and lift(canonical):
            flash(_("The ban of %(address)s is lifted.", address=canonical))
        else:
            flash(_("%(address)s is not banned.", address=address), "error")
    return redirect(url_for("security.index"))
