"""The first-boot wizard, after the admin account: the office, then the first extensions."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from appliance.store import extensions, settings
from appliance.store.db import transaction
from appliance.store.extensions import ExtensionError
from appliance.store.settings import SettingError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.forms import FirstExtensionsForm, OfficeForm, reject, text

bp = Blueprint("setup", __name__, url_prefix="/setup")

OFFICE_FIELDS = {
    "office_name": "office.name",
    "country": "office.country",
    "timezone": "office.timezone",
    "number_min": "ext.number_min",
    "number_max": "ext.number_max",
}


@bp.route("/office", methods=["GET", "POST"])
@access("admin")
def office() -> ResponseReturnValue:
    db = get_db()
    form = OfficeForm()
    if request.method == "GET":
        for field, key in OFFICE_FIELDS.items():
            value = settings.get(db, key)
            if key.startswith("ext.") and value in (10, 999999):
                continue  # the defaults that allow everything: propose 100-199 instead
            form[field].data = value or form[field].data
    if form.validate_on_submit() and save_settings(form, OFFICE_FIELDS):
        corectl.reload()
        return redirect(url_for("setup.first_extensions"))
    state = corectl.status()
    return render_template(
        "setup_office.html", form=form, sip_server=corectl.sip_server(state),
        web_address=request.host_url, core_running=state is not None,
    )  # fmt: skip


def save_settings(form: OfficeForm, fields: dict[str, str]) -> bool:
    """Validate every field's setting, then store them all in one transaction, or none."""
    db = get_db()
    values = {}
    for field, key in fields.items():
        try:
            values[key] = settings.SETTINGS[key].validate(str(form[field].data))
        except SettingError as exc:
            reject(form[field], str(exc))
    low, high = values.get("ext.number_min"), values.get("ext.number_max")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        reject(form.number_max, "must not be lower than the lowest number")
    if any(form[field].errors for field in fields):
        return False
    with transaction(db):
        for key, value in values.items():
            settings.set_value(db, key, str(value))
    return True


@bp.route("/extensions", methods=["GET", "POST"])
@access("admin")
def first_extensions() -> ResponseReturnValue:
    db = get_db()
    form = FirstExtensionsForm()
    if request.method == "GET":
        form.first.data = str(settings.get_int(db, "ext.number_min"))
    if form.validate_on_submit():
        first, count = text(form.first), form.count.data or 0
        try:
            extensions.check_number(first)
            numbers = [str(int(first) + i).zfill(len(first)) for i in range(count)]
            created = []
            with transaction(db):
                for number in numbers:
                    created.append((number, "", extensions.add(db, number)))
                settings.set_text(db, "web.setup_done", "1")
        except ExtensionError as exc:
            reject(form.first, str(exc))
        else:
            corectl.reload()
            flash(f"Set-up done: {len(created)} extensions created.")
            return render_template(
                "sheet.html", entries=created, sip_server=corectl.sip_server(), first_boot=True
            )
    return render_template("setup_extensions.html", form=form)


@bp.route("/skip", methods=["POST"])
@access("admin")
def skip() -> ResponseReturnValue:
    """Finish the wizard without creating extensions (they can be added later)."""
    settings.set_text(get_db(), "web.setup_done", "1")
    flash("Set-up done. Add extensions on the Extensions page.")
    return redirect(url_for("dashboard.index"))
