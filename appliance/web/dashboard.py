"""The dashboard: registrations, live calls, trunks and system health, refreshed in place by
app.js."""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template
from flask.typing import ResponseReturnValue

from appliance.store import cdrs, registrations, settings
from appliance.web import corectl, health, trunks
from appliance.web.auth import access, get_db

bp = Blueprint("dashboard", __name__)

STARTED = time.time()


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
            "detail": f"SIP {core['sip']}" if core else "registrations shown as stored",
        },
        {
            "name": "pbx-web",
            "state": "running",
            "uptime": int(time.time() - STARTED),
            "detail": f"pid {os.getpid()}",
        },
    ]
    return {
        "office": settings.get_str(db, "office.name"),
        "registrations": core["registrations"] if core else registrations.summary(db),
        "calls": core["calls"] if core else [],
        "trunks": trunks.states(db, core),
        "services": services,
        "health": health.snapshot(current_app.config["DATA_DIR"]),
        "calls_24h": cdrs.count(db, day_ago),
        "answered_24h": cdrs.count(db, cdrs.Filter(since=day_ago.since, disposition="answered")),
    }


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    return render_template("dashboard.html", state=state())


@bp.route("/dashboard/state")
@access("viewer")
def live() -> ResponseReturnValue:
    return jsonify(state())
