"""The system page: your password, users and roles, API tokens, backup and restore of the whole
configuration, and restarting services."""

from __future__ import annotations

import threading
import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)  # fmt: skip
from flask.typing import ResponseReturnValue

from appliance import factory_reset
from appliance.service import reexec, sd_stopping
from appliance.store import logins, settings, tokens, users
from appliance.store.db import transaction
from appliance.store.settings import SettingError
from appliance.store.users import UserError
from appliance.web import corectl
from appliance.web.auth import access, current_user, get_db
from appliance.web.forms import (
    ConfirmForm,
    FactoryResetForm,
    MailRelayForm,
    PasswordChangeForm,
    RestartForm,
    RestoreForm,
    TokenForm,
    UserForm,
    reject,
    secret,
    text,
)  # fmt: skip
from appliance.web.i18n import _, label, ngettext, translate

bp = Blueprint("system", __name__, url_prefix="/system")


def _page(**forms: object) -> ResponseReturnValue:
    db = get_db()
    defaults = {
        "password_form": PasswordChangeForm(prefix="pw"),
        "user_form": UserForm(prefix="user"),
        "token_form": TokenForm(prefix="token"),
        "restore_form": RestoreForm(prefix="restore"),
        "restart_form": RestartForm(prefix="restart"),
        "reset_form": FactoryResetForm(prefix="reset"),
        "confirm": ConfirmForm(),
        "mail_form": MailRelayForm(prefix="mail", data=_mail_data()),
    }
    defaults.update(forms)  # a rejected form comes back with what was typed and why
    status = 400 if forms else 200
    return render_template(
        "system.html", users=users.list_all(db), tokens=tokens.list_all(db),
        factory_reset_here=factory_reset.on_appliance(),
        mail_password_set=bool(settings.get_str(db, "mail.password")), **defaults,
    ), status  # fmt: skip


@bp.route("")
@access("viewer")
def index() -> ResponseReturnValue:
    return _page()


@bp.route("/password", methods=["POST"])
@access("viewer")
def password() -> ResponseReturnValue:
    """Anyone logged in may change their own password (a viewer included)."""
    user = current_user()
    assert user is not None
    form = PasswordChangeForm(prefix="pw")
    source = request.remote_addr or "unknown"
    if form.validate_on_submit():
        db = get_db()
        # Guesses at the current password count like failed logins (an unattended session).
        if logins.locked_for(db, source, time.time()):
            reject(
                form.current,
                _("Too many wrong passwords from %(source)s; try again later.", source=source),
            )
        elif users.authenticate(db, user.username, secret(form.current)) is None:
            logins.failed(db, source, time.time())
            reject(form.current, _("This is not your current password."))
        else:
            try:
                users.set_password(db, user.username, secret(form.password))
            except UserError as exc:
                reject(form.password, translate(exc))
            else:
                session["epoch"] = user.session_epoch + 1  # this session goes on; others end
                flash(_("Password changed. Other sessions of yours are logged out."))
                return redirect(url_for("system.index"))
    return _page(password_form=form)


@bp.route("/users", methods=["POST"])
@access("admin")
def add_user() -> ResponseReturnValue:
    form = UserForm(prefix="user")
    if form.validate_on_submit():
        try:
            users.add(get_db(), text(form.username), secret(form.password), text(form.role))
        except UserError as exc:
            reject(form[exc.field], translate(exc))
        else:
            flash(
                _(
                    "User %(name)s added as %(role)s.",
                    name=text(form.username),
                    role=label(text(form.role)),
                )
            )
            return redirect(url_for("system.index"))
    return _page(user_form=form)


@bp.route("/users/<username>/role", methods=["POST"])
@access("admin")
def set_role(username: str) -> ResponseReturnValue:
    if ConfirmForm().validate_on_submit():
        try:
            users.set_role(get_db(), username, request.form.get("role", ""))
        except UserError as exc:
            flash(translate(exc), "error")
        else:
            flash(_("%(name)s is now %(role)s.", name=username, role=label(request.form["role"])))
    return redirect(url_for("system.index"))


@bp.route("/users/<username>/delete", methods=["POST"])
@access("admin")
def delete_user(username: str) -> ResponseReturnValue:
    if ConfirmForm().validate_on_submit():
        try:
            users.remove(get_db(), username)
        except UserError as exc:
            flash(translate(exc), "error")
        else:
            flash(_("User %(name)s removed.", name=username))
    return redirect(url_for("system.index"))


@bp.route("/tokens", methods=["POST"])
@access("admin")
def add_token() -> ResponseReturnValue:
    form = TokenForm(prefix="token")
    if form.validate_on_submit():
        try:
            token, clear = tokens.create(get_db(), text(form.name), text(form.role))
        except UserError as exc:
            reject(form.name, translate(exc))
        else:
            return render_template("token_created.html", token=token, clear=clear)
    return _page(token_form=form)


@bp.route("/tokens/<int(max=2147483647):token_id>/delete", methods=["POST"])
@access("admin")
def revoke_token(token_id: int) -> ResponseReturnValue:
    if ConfirmForm().validate_on_submit():
        try:
            tokens.revoke(get_db(), token_id)
        except UserError as exc:
            flash(translate(exc), "error")
        else:
            flash(_("Token revoked: programs using it are refused from now on."))
    return redirect(url_for("system.index"))


@bp.route("/backup", methods=["POST"])
@access("admin")
def download_backup() -> ResponseReturnValue:
    """POST (with the CSRF token), not GET: the file holds credential hashes."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    from appliance.store import backup  # loaded by the two views that use it

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return Response(
        backup.dumps(get_db()), mimetype="application/json",
        headers={"Content-Disposition": f"attachment; filename=pbx-backup-{stamp}.json"},
    )  # fmt: skip


@bp.route("/restore", methods=["POST"])
@access("admin")
def restore() -> ResponseReturnValue:
    form = RestoreForm(prefix="restore")
    if form.validate_on_submit():
        from appliance.store import backup

        try:
            counts = backup.restore(get_db(), form.backup.data.read())
        except backup.BackupError as exc:
            reject(form.backup, _("Nothing was changed: %(reason)s", reason=translate(exc)))
        else:
            corectl.reload()
            user = current_user()
            restored = users.get(get_db(), user.username) if user else None
            if restored is not None:  # the one who restored stays logged in, as restored
                session["epoch"] = restored.session_epoch
            flash(restore_summary(counts))
            return redirect(url_for("system.index"))
    return _page(restore_form=form)


def restore_summary(counts: dict[str, int]) -> str:
    """What a restore brought back, each count with its plural form."""
    parts = [
        ngettext("%(num)d extension", "%(num)d extensions", counts["extensions"]),
        ngettext("%(num)d user", "%(num)d users", counts["users"]),
        ngettext("%(num)d API token", "%(num)d API tokens", counts["api_tokens"]),
        ngettext("%(num)d trunk", "%(num)d trunks", counts["trunks"]),
        ngettext("%(num)d number", "%(num)d numbers", counts["dids"]),
        ngettext("%(num)d route", "%(num)d routes", counts["routes"]),
    ]
    return str(_("Configuration restored: %(counts)s.", counts=", ".join(parts)))


@bp.route("/restart", methods=["POST"])
@access("admin")
def restart() -> ResponseReturnValue:
    form = RestartForm(prefix="restart")
    if not form.validate_on_submit():
        return _page(restart_form=form)
    if form.service.data == "core":
        if corectl.restart():
            flash(_("pbx-core is restarting; phones stay registered."))
        else:
            flash(_("pbx-core is not running, so it cannot be restarted from here."), "error")
        return redirect(url_for("system.index"))
    flash(_("pbx-web restarted."))
    if not current_app.testing:
        threading.Timer(0.5, _restart_in_place).start()  # after this answer has been sent
    return redirect(url_for("system.index"))


@bp.route("/factory-reset", methods=["POST"])
@access("admin")
def reset() -> ResponseReturnValue:
    """File a factory reset (appliance.factory_reset): the box reboots and comes back new."""
    form = FactoryResetForm(prefix="reset")
    if not form.validate_on_submit():
        return _page(reset_form=form)
    if text(form.confirm) != factory_reset.CONFIRMATION:
        reject(form.confirm, _("Type RESET, in capitals, to confirm."))
        return _page(reset_form=form)
    if not factory_reset.on_appliance():
        flash(_("A factory reset from this page needs the appliance. On this machine stop the "
                "services and run the command %(command)s.", command="pbx factory-reset"),
              "error")  # fmt: skip
        return redirect(url_for("system.index"))
    user = current_user()
    who = user.username if user is not None else "?"
    factory_reset.request(current_app.config["DATA_DIR"], f"setup page, {who}")
    flash(_("The box is restarting and will come back as new in about a minute: open this "
            "page again then to set it up."))  # fmt: skip
    return redirect(url_for("system.index"))


def _restart_in_place() -> None:
    sd_stopping(restarting=True)  # to systemd a reload: READY=1 follows from the same PID
    reexec()


# -- the SMTP relay voicemail is e-mailed through --------------------------------------------

MAIL_FIELDS = {"host": "mail.host", "port": "mail.port", "user": "mail.user",
               "sender": "mail.from"}  # fmt: skip
"""The relay form's fields and the settings they are (STARTTLS and the password apart)."""


def _mail_data() -> dict[str, object]:
    db = get_db()
    data: dict[str, object] = {field: settings.get(db, key) for field, key in MAIL_FIELDS.items()}
    data["starttls"] = settings.get_str(db, "mail.starttls") == "yes"
    return data


@bp.route("/mail", methods=["POST"])
@access("admin")
def mail() -> ResponseReturnValue:
    """Save the SMTP relay: every field checked before any is written; the password only when
    one is typed (or cleared on purpose), so saving the other fields keeps it."""
    form = MailRelayForm(prefix="mail")
    if form.validate_on_submit():
        values = {key: text(form[field]) for field, key in MAIL_FIELDS.items()}
        values["mail.port"] = str(form.port.data)
        values["mail.starttls"] = "yes" if form.starttls.data else "no"
        if form.clear_password.data:
            values["mail.password"] = ""
        elif secret(form.password):
            values["mail.password"] = secret(form.password)
        fields = {key: field for field, key in MAIL_FIELDS.items()} | {
            "mail.starttls": "starttls", "mail.password": "password"}  # fmt: skip
        db = get_db()
        failed = False
        for key, value in values.items():
            try:
                settings.SETTINGS[key].validate(value)
            except SettingError as exc:
                reject(form[fields[key]], translate(exc))
                failed = True
        if not failed:
            with transaction(db):
                for key, value in values.items():
                    settings.set_value(db, key, value)
            corectl.applied(_("Mail relay saved."))
            return redirect(url_for("system.index"))
    return _page(mail_form=form)
