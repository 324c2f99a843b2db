"""The Voicemail page: every extension's mailbox (enabled, new and saved messages, e-mail),
its settings (PIN set or cleared, never shown; the greeting; the message length; e-mail
delivery; when calls go to it; unsolicited message-waiting NOTIFY), and its messages, played in
the browser (HTTP range requests, so the player can seek), downloaded, saved or deleted.

Admins change mailboxes and messages; viewers see them and listen. A custom greeting is one of
the office's custom prompts (typed and synthesised, or uploaded, on the Prompts page), picked
and heard here before saving, or the greeting a phone recorded (kept as it is). Deleting a
message or a mailbox removes its files; the core is told, so phones' message-waiting lamps
follow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import InputRequired, NumberRange

from appliance.i18n import T
from appliance.store import extensions, prompts, voicemail
from appliance.store.database import Database
from appliance.store.voicemail import Mailbox, Message, VoicemailError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.forms import ConfirmForm, choices, refuse, secret, text
from appliance.web.i18n import _, _l, translate

bp = Blueprint("voicemail", __name__, url_prefix="/voicemail")

MAX_ID = 2**62
"""The largest message id a page's path may name (beyond, SQLite's integer would not hold it)."""

MIMETYPES = {".ogg": "audio/ogg", ".opus": "audio/ogg", ".wav": "audio/wav", ".flac": "audio/flac"}
"""What a message's file is, by its suffix (the core writes Ogg/Opus)."""

NEW_MAILBOX = Mailbox(
    number="", enabled=True, has_pin=False, greeting="default", greeting_file="",
    max_seconds=120, email="", attach=True, on_busy=True, on_no_answer=True,
    unsolicited_mwi=True,
)  # fmt: skip
"""What a mailbox not yet made starts as (the store's column defaults)."""


# -- files ---------------------------------------------------------------------------------


def data_dir() -> Path:
    return Path(current_app.config["DATA_DIR"])


def serve_message(msg: Message) -> ResponseReturnValue:
    """The message's audio, whole or by range (206), or as a download with `?download=1`."""
    path = voicemail.message_file(data_dir(), msg)
    if path is None:
        abort(404, _("The file of message %(id)s is missing.", id=msg.id))
    download = request.args.get("download") == "1"
    response = send_file(
        path, mimetype=MIMETYPES.get(path.suffix, "application/octet-stream"), conditional=True,
        as_attachment=download, download_name=f"voicemail-{msg.mailbox}-{msg.id}{path.suffix}",
        max_age=0,
    )  # fmt: skip
    response.headers["Cache-Control"] = "private, no-store"
    return response


def prompt_of(db: Database, greeting_file: str) -> str:
    """The custom prompt whose file the greeting is, by name; else the file itself (recorded
    by phone), or '' for none."""
    if not greeting_file:
        return ""
    found = next((p for p in prompts.list_all(db) if p.path == greeting_file), None)
    return found.name if found is not None else greeting_file


# -- the form ------------------------------------------------------------------------------


class MailboxForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no types
    """A mailbox's settings; the PIN is write-only (empty keeps it, or clear it)."""

    enabled = BooleanField(
        _l("Mailbox on"), description=_l("Off: calls are not sent here and it takes no messages.")
    )
    pin = PasswordField(
        _l("New PIN"),
        description=_l("4 to 10 digits, entered on the phone's keypad at *97. Empty: unchanged."),
    )
    clear_pin = BooleanField(
        _l("Remove the PIN"),
        description=_l("Without a PIN the mailbox cannot be listened to by phone."),
    )
    greeting = SelectField(
        _l("Greeting"),
        choices=choices([("default", _l("Default: the recorded pack names the extension")),
                         ("custom", _l("Custom"))]),
        description=_l("What callers hear before they leave a message."),
    )  # fmt: skip
    greeting_prompt = StringField(
        _l("Custom greeting"),
        description=_l(
            "A custom prompt's name (typed or uploaded on the Prompts page), or the greeting"
            " recorded by phone."
        ),
        render_kw={"list": "prompt-names"},
    )
    max_seconds = IntegerField(
        _l("Longest message (seconds)"),
        [InputRequired(), NumberRange(*voicemail.MAX_SECONDS_RANGE)],
        description=_l("Recording stops here; a caller may end sooner with # or silence."),
    )
    email = StringField(
        _l("E-mail"), description=_l("Each new message is sent here (empty: no e-mail).")
    )
    attach = BooleanField(
        _l("Attach the message"), description=_l("The e-mail carries the audio, not just a note.")
    )
    on_busy = BooleanField(
        _l("When busy"), description=_l("Calls to a busy extension go to the mailbox.")
    )
    on_no_answer = BooleanField(
        _l("When not answered"), description=_l("Calls nobody answers go to the mailbox.")
    )
    unsolicited_mwi = BooleanField(
        _l("Tell phones without asking"),
        description=_l(
            "Send message-waiting NOTIFY to phones that did not subscribe (most desk phones"
            " light their lamp by it)."
        ),
    )


def _form_data(db: Database, box: Mailbox) -> dict[str, Any]:
    return {
        "enabled": box.enabled, "greeting": box.greeting,
        "greeting_prompt": prompt_of(db, box.greeting_file), "max_seconds": box.max_seconds,
        "email": box.email, "attach": box.attach, "on_busy": box.on_busy,
        "on_no_answer": box.on_no_answer, "unsolicited_mwi": box.unsolicited_mwi,
    }  # fmt: skip


def greeting_file(db: Database, box: Mailbox, name: str) -> str | None:
    """The file a greeting field names: a custom prompt's file, the greeting as it is (its
    name or its file unchanged), or None (nothing given: keep). Raises VoicemailError for a
    name that is neither."""
    if not name:
        return None
    found = prompts.get(db, name)
    if found is not None:
        return found.path
    if name == box.greeting_file:
        return name
    raise VoicemailError(T("there is no custom prompt {name}", name=name), "greeting_prompt")


def save(db: Database, number: str, form: MailboxForm, box: Mailbox) -> Mailbox:
    """Apply the form to the mailbox (made when it does not exist)."""
    chosen = greeting_file(db, box, text(form.greeting_prompt))
    pin: str | None = None
    if form.clear_pin.data:
        pin = ""
    elif secret(form.pin):
        pin = secret(form.pin)
    return voicemail.set_mailbox(
        db, number, pin=pin, enabled=bool(form.enabled.data), greeting=text(form.greeting),
        greeting_file=chosen, max_seconds=int(form.max_seconds.data or 0),
        email=text(form.email), attach=bool(form.attach.data), on_busy=bool(form.on_busy.data),
        on_no_answer=bool(form.on_no_answer.data),
        unsolicited_mwi=bool(form.unsolicited_mwi.data),
    )  # fmt: skip


# -- pages ---------------------------------------------------------------------------------


def _extension(number: str) -> extensions.Extension:
    ext = extensions.get(get_db(), number)
    if ext is None:
        abort(404, _("There is no extension %(number)s.", number=number))
    return ext


def _mailbox(number: str) -> Mailbox:
    box = voicemail.mailbox(get_db(), number)
    if box is None:
        abort(404, _("Extension %(number)s has no mailbox.", number=number))
    return box


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    db = get_db()
    boxes = voicemail.mailboxes(db)
    rows = [(box, *voicemail.counts(db, box.number)) for box in boxes]
    have = {box.number for box in boxes}
    without = [e for e in extensions.list_all(db) if e.number not in have]
    return render_template("voicemail.html", rows=rows, without=without, form=ConfirmForm())


@bp.route("/add")
@access("admin")
def add() -> ResponseReturnValue:
    """The "add a mailbox" picker's target: the form of the chosen extension's new mailbox."""
    number = request.args.get("number", "")
    _extension(number)
    return redirect(url_for("voicemail.edit", number=number))


@bp.route("/<number>/edit", methods=["GET", "POST"])
@access("admin")
def edit(number: str) -> ResponseReturnValue:
    ext = _extension(number)
    db = get_db()
    box = voicemail.mailbox(db, number)
    form = MailboxForm(data=_form_data(db, box or NEW_MAILBOX))
    if form.validate_on_submit():
        try:
            save(db, number, form, box or NEW_MAILBOX)
        except VoicemailError as exc:
            field = {"mailbox": "enabled", "path": "greeting_prompt"}.get(exc.field, exc.field)
            if field == "greeting" and text(form.greeting) == "custom":
                field = "greeting_prompt"
            refuse(form, field, translate(exc), "enabled")
        else:
            corectl.applied(_("Mailbox %(number)s saved.", number=number))
            return redirect(url_for("voicemail.index"))
    names = [p.name for p in prompts.list_all(db)]
    return render_template(
        "voicemail_form.html", form=form, ext=ext, box=box, prompt_names=names
    ), (400 if form.is_submitted() else 200)


@bp.route("/<number>/delete", methods=["POST"])
@access("admin")
def delete(number: str) -> ResponseReturnValue:
    _mailbox(number)
    if ConfirmForm().validate_on_submit():
        voicemail.remove_mailbox(get_db(), data_dir(), number)
        corectl.applied(_("Mailbox %(number)s deleted with its messages.", number=number))
    return redirect(url_for("voicemail.index"))


@bp.route("/<number>")
@access("viewer")
def messages(number: str) -> ResponseReturnValue:
    box = _mailbox(number)
    db = get_db()
    found = voicemail.messages(db, number)
    new, saved = voicemail.counts(db, number)
    return render_template(
        "voicemail_messages.html", box=box, messages=found, new=new, saved=saved,
        form=ConfirmForm(),
    )  # fmt: skip


def _message(message_id: int) -> Message:
    msg = voicemail.message(get_db(), message_id)
    if msg is None or msg.deleted:
        abort(404, _("There is no message %(id)s.", id=message_id))
    return msg


@bp.route(f"/messages/<int(max={MAX_ID}):message_id>/audio")
@access("viewer")
def audio(message_id: int) -> ResponseReturnValue:
    return serve_message(_message(message_id))


@bp.route(f"/messages/<int(max={MAX_ID}):message_id>/save", methods=["POST"])
@access("admin")
def keep(message_id: int) -> ResponseReturnValue:
    msg = _message(message_id)
    if ConfirmForm().validate_on_submit() and voicemail.move(get_db(), message_id, "saved"):
        corectl.applied(_("Message %(id)s moved to saved.", id=message_id))
    return redirect(url_for("voicemail.messages", number=msg.mailbox))


@bp.route(f"/messages/<int(max={MAX_ID}):message_id>/delete", methods=["POST"])
@access("admin")
def remove(message_id: int) -> ResponseReturnValue:
    msg = _message(message_id)
    confirmed = ConfirmForm().validate_on_submit()
    if confirmed and voicemail.remove_message(get_db(), data_dir(), message_id):
        corectl.applied(_("Message %(id)s deleted.", id=message_id))
    return redirect(url_for("voicemail.messages", number=msg.mailbox))
