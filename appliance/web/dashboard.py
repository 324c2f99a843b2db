"""The dashboard: registrations, live calls, trunks and system health, refreshed in place by
app.js.

The state (`/dashboard/state`, and the page's first render) carries the codes and numbers, and
beside them what the page says in its language: a `state_label` for each call, trunk and
service, each service's `detail`, and `phrases`, the counts as sentences with their plural
forms ("5 phones registered")."""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from appliance.store import cdrs, events, registrations, settings
from appliance.web import alerts, corectl, health, ports, trunks
from appliance.web.auth import access, get_db
from appliance.web.forms import ConfirmForm
from appliance.web.i18n import _, label, ngettext

bp = Blueprint("dashboard", __name__)

STARTED = time.time()


def phrases(
    phones: int, calls_now: int, calls_24h: int, answered: int, minutes: int
) -> dict[str, str]:
    """The dashboard's counts as sentences, each number with its plural form."""
    return {
        "phones": ngettext("%(num)d phone registered", "%(num)d phones registered", phones),
        "calls_now": ngettext("%(num)d call now", "%(num)d calls now", calls_now),
        "calls_24h": ngettext(
            "%(num)d call in the last 24 hours", "%(num)d calls in the last 24 hours", calls_24h
        ),
        "answered_24h": ngettext("%(num)d answered", "%(num)d answered", answered),
        "minutes_24h": ngettext("%(num)d minute of talk", "%(num)d minutes of talk", minutes),
    }


def state() -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-able data (the page and its refresh share it)."""
    db = get_db()
    core = corectl.status()
    day_ago = cdrs.Filter(since=time.time() - 86400)
    services = [
        {
            "name": "pbx-core",
            "state": "running" if core else "stopped",
            "uptime": core["uptime"] if core else None,
            "detail": _("SIP %(address)s", address=core["sip"]) if core
            else _("registrations shown as stored"),
        },
        {
            "name": "pbx-web",
            "state": "running",
            "uptime": int(time.time() - STARTED),
            "detail": _("pid %(pid)s", pid=os.getpid()),
        },
    ]  # fmt: skip
    calls = (
        [{**call, "state_label": label(call.get("state"))} for call in core["calls"]]
        if core
        else []
    )
    registered = core["registrations"] if core else registrations.summary(db)
    calls_24h = cdrs.count(db, day_ago)
    answered_24h = cdrs.count(db, cdrs.Filter(since=day_ago.since, disposition="answered"))
    minutes_24h = int(cdrs.talk_seconds(db, day_ago) // 60)
    found = {
        "office": settings.get_str(db, "office.name"),
        "registrations": registered,
        "calls": calls,
        "trunks": [{**t, "state_label": label(t["state"])} for t in trunks.states(db, core)],
        "services": [{**s, "state_label": label(s["state"])} for s in services],
        "health": health.snapshot(current_app.config["DATA_DIR"]),
        "calls_24h": calls_24h,
        "answered_24h": answered_24h,
        "minutes_24h": minutes_24h,
        "phrases": phrases(len(registered), len(calls), calls_24h, answered_24h, minutes_24h),
        "alerts": alerts.shown(db),
        "lines": ports.dashboard_card(),
    }
    return found


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    found = state()
    return render_template(
        "dashboard.html", state=found, phrases=found["phrases"], confirm=ConfirmForm()
    )


@bp.route("/alerts/<int:event_id>/acknowledge", methods=["POST"])
@access("admin")
def acknowledge(event_id: int) -> ResponseReturnValue:
    """An admin has seen an alert: it leaves the dashboard (the event stays in the outbox)."""
    if ConfirmForm().validate_on_submit():
        if events.acknowledge(get_db(), event_id, g.user.username):
            flash(_("Alert acknowledged."))
        else:
            flash(_("That alert was acknowledged already."), "error")
    return redirect(url_for("dashboard.index"))


@bp.route("/dashboard/state")
@access("viewer")
def live() -> ResponseReturnValue:
    return jsonify(state())
