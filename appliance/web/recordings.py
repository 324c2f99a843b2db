"""Call recordings on the setup page and in the API: the recording rules and storage settings
(admins), and each recording's file, played or downloaded with HTTP range requests (so the
browser's player can seek) by the roles allowed to (admins; viewers when
`recording.viewers_listen` is 1). Every playback and download is written to the event outbox
with who did it (`recording.played`, `recording.downloaded`).

The outbox is otherwise the core's; these events are the web's because only the web knows who
listened. They are written on the request's own connection, one row each."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue

from appliance.store import events, recordings
from appliance.store.database import Database
from appliance.store.recordings import MATCH_KINDS, Recording, RecordingError, RuleExists
from appliance.web import corectl
from appliance.web.api import ApiError, _body, _number_arg
from appliance.web.api import bp as api_bp
from appliance.web.auth import access, current_user, get_db
from appliance.web.forms import (
    MATCH_NAMES,
    ConfirmForm,
    RecordingRuleForm,
    RecordingStorageForm,
    refuse,
    text,
)
from appliance.web.i18n import _, translate

bp = Blueprint("recordings", __name__, url_prefix="/recordings")
API_ID_RE = re.compile(r"[0-9]{1,19}")


def may_listen(db: Database, role: str) -> bool:
    """Admins always; viewers when the office allows it."""
    return role == "admin" or recordings.get_setting(db, "recording.viewers_listen") == "1"


def file_of(rec: Recording) -> Path:
    """The recording's file, refused if its row points outside the recordings folder."""
    data: Path = current_app.config["DATA_DIR"]
    folder = (data / recordings.FOLDER).resolve()
    path = rec.file(data).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        abort(404)
    return path


def log_access(db: Database, rec: Recording, who: str) -> None:
    """One event per playback or download: the first request of a player (no range, or a
    range from byte 0), not every range request of its seeking."""
    download = request.args.get("download") == "1"
    first = request.range is None or (
        request.range.ranges and request.range.ranges[0][0] == 0
    )  # fmt: skip
    if not (download or first):
        return
    kind = "recording.downloaded" if download else "recording.played"
    events.write(db, [events.Event(kind, str(rec.id), {
        "user": who, "call_id": rec.call_id, "path": rec.path,
        "source": request.remote_addr or "",
    })])  # fmt: skip


def serve(rec: Recording, who: str) -> ResponseReturnValue:
    path = file_of(rec)
    log_access(get_db(), rec, who)
    download = request.args.get("download") == "1"
    response = send_file(
        path, mimetype=rec.mimetype, conditional=True, as_attachment=download,
        download_name=f"call-{rec.call_id}-{rec.id}{path.suffix}", max_age=0,
    )  # fmt: skip
    response.headers["Cache-Control"] = "private, no-store"
    return response


# -- pages ----------------------------------------------------------------------------------


@bp.route("/")
@access("admin")
def index() -> ResponseReturnValue:
    return page(RecordingRuleForm(), RecordingStorageForm(data=_storage_data()))


def page(rule_form: RecordingRuleForm, storage: RecordingStorageForm) -> str:
    db = get_db()
    return render_template(
        "recordings.html", rules=recordings.rules(db), rule_form=rule_form, storage=storage,
        recent=recordings.listing(db, limit=20), kept=recordings.kept_bytes(db),
        match_names=MATCH_NAMES, form=ConfirmForm(),
    )  # fmt: skip


@bp.route("/rules", methods=["POST"])
@access("admin")
def add_rule() -> ResponseReturnValue:
    form = RecordingRuleForm()
    if form.validate_on_submit():
        try:
            rule = recordings.add_rule(
                get_db(), text(form.match), text(form.value), record=form.record.data == "1",
                retention_days=form.retention_days.data, consent=bool(form.consent.data),
            )  # fmt: skip
        except RecordingError as exc:
            refuse(form, exc.field, translate(exc), "value")
        else:
            corectl.applied(_("Recording rule %(id)s added.", id=rule.id))
            return redirect(url_for("recordings.index"))
    return page(form, RecordingStorageForm(formdata=None, data=_storage_data())), 400


def _storage_data() -> dict[str, Any]:
    current = recordings.all_settings(get_db())
    return {
        "quota_mib": int(current["recording.quota_mib"]),
        "floor_mib": int(current["recording.floor_mib"]),
        "retention_days": int(current["recording.retention_days"]),
        "feature_code": current["recording.feature_code"],
        "viewers_listen": current["recording.viewers_listen"] == "1",
    }


@bp.route("/rules/<int:rule_id>/delete", methods=["POST"])
@access("admin")
def remove_rule(rule_id: int) -> ResponseReturnValue:
    if ConfirmForm().validate_on_submit():
        try:
            recordings.remove_rule(get_db(), rule_id)
        except RecordingError as exc:
            abort(404, translate(exc))
        corectl.applied(_("Recording rule %(id)s removed.", id=rule_id))
    return redirect(url_for("recordings.index"))


@bp.route("/settings", methods=["POST"])
@access("admin")
def save_settings() -> ResponseReturnValue:
    form = RecordingStorageForm()
    if form.validate_on_submit():
        db = get_db()
        values = {
            "recording.quota_mib": str(form.quota_mib.data),
            "recording.floor_mib": str(form.floor_mib.data),
            "recording.retention_days": str(form.retention_days.data),
            "recording.feature_code": text(form.feature_code),
            "recording.viewers_listen": "1" if form.viewers_listen.data else "0",
        }
        try:
            for key, value in values.items():
                recordings.validate_setting(recordings.SETTINGS[key], value)
            for key, value in values.items():
                recordings.set_setting(db, key, value)
        except RecordingError as exc:
            refuse(form, exc.field.removeprefix("recording."), translate(exc), "feature_code")
        else:
            corectl.applied(_("Recording settings saved."))
            return redirect(url_for("recordings.index"))
    return page(RecordingRuleForm(formdata=None), form), 400


@bp.route("/<int:recording_id>/file")
@access("viewer")
def play(recording_id: int) -> ResponseReturnValue:
    db = get_db()
    user = current_user()
    assert user is not None
    if not may_listen(db, user.role):
        abort(403)
    rec = recordings.get(db, recording_id)
    if rec is None or rec.deleted_at is not None:
        abort(404, _("There is no recording %(id)s.", id=recording_id))
    return serve(rec, user.username)


@bp.route("/<int:recording_id>/delete", methods=["POST"])
@access("admin")
def delete(recording_id: int) -> ResponseReturnValue:
    data_dir = current_app.config["DATA_DIR"]
    if ConfirmForm().validate_on_submit() and recordings.delete(get_db(), data_dir, recording_id):
        flash(_("Recording %(id)s deleted.", id=recording_id))
    return redirect(request.referrer or url_for("recordings.index"))


# -- the API (/api/v1/recordings, on the API's blueprint and its token check) ----------------


def _json(rec: Recording) -> dict[str, Any]:
    return {
        "id": rec.id, "call_id": rec.call_id, "started_at": rec.started_at,
        "seconds": rec.seconds, "bytes": rec.bytes, "rule": rec.rule,
        "format": Path(rec.path).suffix.lstrip("."), "deleted_at": rec.deleted_at,
        "deleted_reason": rec.deleted_reason,
        "file": url_for("api.recording_file", recording_id=rec.id),
    }  # fmt: skip


def _api_id(text: str, what: str) -> int:
    """A row id from the URL. Ids are taken as text so that a viewer's write to any URL gets
    403 (from the access check, before this runs), not Flask's 404 for a non-number."""
    if not API_ID_RE.fullmatch(text) or int(text) >= 2**63:
        raise ApiError(404, f"there is no {what} {text}")
    return int(text)


def _api_recording(text: str) -> Recording:
    recording_id = _api_id(text, "recording")
    rec = recordings.get(get_db(), recording_id)
    if rec is None:
        raise ApiError(404, f"there is no recording {recording_id}")
    return rec


@api_bp.route("/recordings", methods=["GET"])
@access("viewer")
def list_recordings() -> ResponseReturnValue:
    if request.args.get("deleted", "0") not in ("0", "1"):
        raise ApiError(400, "deleted must be 0 or 1")
    if len(request.args.getlist("deleted")) > 1:
        raise ApiError(400, "deleted is given once")
    limit = int(_number_arg("limit", 1, 1000, integer=True) or 100)
    offset = int(_number_arg("offset", 0, 1e9, integer=True) or 0)
    rows = recordings.listing(
        get_db(), call_id=request.args.get("call_id") or None,
        include_deleted=request.args.get("deleted") == "1", limit=limit, offset=offset,
    )  # fmt: skip
    return {"recordings": [_json(r) for r in rows]}


@api_bp.route("/recordings/<recording_id>", methods=["GET"])
@access("viewer")
def get_recording(recording_id: str) -> ResponseReturnValue:
    return _json(_api_recording(recording_id))


@api_bp.route("/recordings/<recording_id>/file", methods=["GET"])
@access("viewer")
def recording_file(recording_id: str) -> ResponseReturnValue:
    """Any token: the API's reads are for every token, and a token is made by an admin for a
    script on purpose (`recording.viewers_listen` is about people on the Calls page)."""
    who = f"token:{g.token.name}"
    rec = _api_recording(recording_id)
    if rec.deleted_at is not None:
        raise ApiError(410, f"recording {recording_id} was deleted ({rec.deleted_reason})")
    return serve(rec, who)


@api_bp.route("/recordings/<recording_id>", methods=["DELETE"])
@access("admin")
def delete_recording(recording_id: str) -> ResponseReturnValue:
    rec = _api_recording(recording_id)
    if rec.deleted_at is None:
        recordings.delete(get_db(), current_app.config["DATA_DIR"], rec.id)
    return "", 204


@api_bp.route("/recording-rules", methods=["GET"])
@access("viewer")
def list_recording_rules() -> ResponseReturnValue:
    return {"rules": [_rule_json(r) for r in recordings.rules(get_db())]}


def _rule_json(rule: recordings.Rule) -> dict[str, Any]:
    return {
        "id": rule.id, "match": rule.match, "value": rule.value, "record": rule.record,
        "retention_days": rule.retention_days, "consent": rule.consent,
    }  # fmt: skip


@api_bp.route("/recording-rules", methods=["POST"])
@access("admin")
def create_recording_rule() -> ResponseReturnValue:
    body = _body(
        {"match": True, "value": True, "record": False, "retention_days": False,
         "consent": False},
        {"record": "boolean", "retention_days": "integer or null", "consent": "boolean"},
        enums={"match": MATCH_KINDS},
    )  # fmt: skip
    try:
        rule = recordings.add_rule(
            get_db(), body["match"], body["value"], record=body.get("record", True),
            retention_days=body.get("retention_days"), consent=body.get("consent", False),
        )  # fmt: skip
    except RecordingError as exc:
        raise ApiError(409 if isinstance(exc, RuleExists) else 400, str(exc)) from None
    corectl.reload()
    return _rule_json(rule), 201


@api_bp.route("/recording-rules/<rule_id>", methods=["DELETE"])
@access("admin")
def delete_recording_rule(rule_id: str) -> ResponseReturnValue:
    try:
        recordings.remove_rule(get_db(), _api_id(rule_id, "recording rule"))
    except RecordingError as exc:
        raise ApiError(404, str(exc)) from None
    corectl.reload()
    return "", 204
