"""The analog ports page: each FXS/FXO port's kind, the extension it registers as or the trunk
it stands for, its caller-ID standard, and its live state from the analog gateway's control
socket (`DATA/run/lines.sock`); an admin edits a port's extension and caller-ID standard.

The page reads the configuration from the store and the state from the gateway only: a gateway
that is not running is said so, never an error page."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField

from appliance import control
from appliance.i18n import T
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.web.auth import access, get_db
from appliance.web.forms import choices, refuse, text
from appliance.web.i18n import _, _l, translate

logger = logging.getLogger(__name__)

bp = Blueprint("ports", __name__, url_prefix="/ports")

STATES = {
    "on-hook": _l("on hook"),
    "off-hook": _l("off hook"),
    "ringing": _l("ringing"),
    "in-call": _l("in call"),
    "fault": _l("fault"),
}
"""A port's live states as the gateway reports them, as the page shows them."""

KINDS = {"fxs": _l("FXS (a phone)"), "fxo": _l("FXO (a city line)")}

CALLER_ID = {
    "etsi-fsk": _l("ETSI FSK (V.23, before the first ring)"),
    "bell202": _l("Bell 202 FSK (after the first ring)"),
    "dtmf": _l("DTMF"),
    "none": _l("none"),
}
"""The caller-ID standards a port may use (`appliance.store.ports` validates the same codes)."""


def lines_status() -> dict[str, Any] | None:
    """The gateway's live state (`ports`, `board`), or None when it is not running."""
    path = control.lines_socket_path(current_app.config["DATA_DIR"])
    try:
        return control.call_at(path, "status", 3.0, "the analog gateway")
    except (control.ControlError, OSError, ValueError) as exc:
        logger.debug("analog gateway status unavailable: %s", exc)
        return None


def rows() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The configured ports, each with its live state when the gateway runs, and that state.
    A port the gateway reports but the store does not have (a profile with more ports than
    are configured) is shown too: the technician sees what the board has."""
    from appliance.store import ports

    live = lines_status()
    by_port = {int(p["port"]): p for p in (live or {}).get("ports", []) if "port" in p}
    found = []
    for p in ports.list_all(get_db()):
        state = by_port.pop(int(p.port), None)
        found.append(_row(p.port, p.kind, p.extension, p.trunk, p.caller_id, state))
    for number, state in sorted(by_port.items()):
        found.append(_row(number, str(state.get("kind", "")), None, None, None, state))
    return found, live


def _row(
    port: int, kind: str, extension: str | None, trunk: str | None, caller_id: str | None,
    state: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    code = str(state.get("state", "")) if state else None
    return {
        "port": port,
        "kind": kind,
        "kind_label": str(KINDS.get(kind, kind)),
        "extension": extension or "",
        "trunk": trunk or "",
        "caller_id": caller_id or "",
        "caller_id_label": str(CALLER_ID.get(caller_id or "", caller_id or "–")),
        "state": code,
        "state_label": str(STATES.get(code, code)) if code else None,
        "registered": bool(state.get("registered")) if state else None,
        "last_event": str(state.get("last_event") or "") if state else "",
        "at": state.get("at") if state else None,
    }


class PortForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no types
    extension = StringField(
        _l("Extension"),
        description=_l("The extension this phone port registers as; it rings when that "
                       "number is dialled."),
    )  # fmt: skip
    caller_id = SelectField(
        _l("Caller ID"), choices=[],
        description=_l("How the caller's number reaches the handset: most phones in Europe "
                       "read ETSI FSK, in North America Bell 202, in Russia DTMF."),
    )  # fmt: skip

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.caller_id.choices = choices(CALLER_ID.items())


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    found, live = rows()
    return render_template("ports.html", ports=found, live=live)


def _refuse_taken(db: Database, port: int, extension: str) -> None:
    """Two ports cannot register as one extension. Checked before saving: the store's
    INSERT OR REPLACE would otherwise drop the other port's row to make room."""
    from appliance.store import ports

    if extension and any(p.extension == extension and p.port != port for p in ports.list_all(db)):
        raise ports.PortError(
            T("extension {number} is already another port's", number=extension), "extension"
        )


@bp.route("/<int:port>/edit", methods=["GET", "POST"])
@access("admin")
def edit(port: int) -> ResponseReturnValue:
    from appliance.store import ports

    db = get_db()
    current = ports.get(db, port)
    if current is None:
        abort(404, _("There is no port %(port)s.", port=port))
    form = PortForm(data={"extension": current.extension, "caller_id": current.caller_id})
    if form.validate_on_submit():
        extension = text(form.extension) if current.kind == "fxs" else ""
        # The same extension keeps its password; another one gets a new password, which the
        # port alone knows (the store keeps only digests of the others').
        same = extension == current.extension
        try:
            _refuse_taken(db, port, extension)
            with transaction(db):  # a refused save leaves every password as it was
                ports.set_port(
                    db, port, current.kind, extension=extension,
                    password=current.password if same else "", trunk=current.trunk,
                    caller_id=text(form.caller_id),
                )  # fmt: skip
        except ports.PortError as exc:
            refuse(form, exc.field, translate(exc), "extension")
        else:
            flash(_("Port %(port)s saved. The analog gateway applies it within seconds, once "
                    "none of its ports is in use.", port=port))  # fmt: skip
            return redirect(url_for("ports.index"))
    return render_template("port_form.html", form=form, port=current)


def dashboard_card() -> dict[str, Any]:
    """The ports for the dashboard's card: each port's row and whether the gateway runs. A
    store without analog ports yet gives an empty card rather than a broken dashboard."""
    try:
        found, live = rows()
    except ImportError:
        return {"running": False, "ports": []}
    return {"running": live is not None, "ports": found}
