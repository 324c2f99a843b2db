"""The Prompts page: the office's own prompts, typed (synthesised offline by espeak-ng) or
uploaded (WAV, MP3, OGG), each heard in the browser before it is saved; the list plays them.

Admins make and delete prompts; viewers list and listen. A preview is synthesised into a
temporary file of its own (`prompts/preview/`, swept after PREVIEW_SECONDS) and played by an
<audio> element; saving makes the prompt again from what the form then holds, so what is saved
is what the form says even if it changed after the preview.

The audio is made by `appliance.tts`, which needs only the standard library and the
espeak-ng and sox programs: the one piece of `media` the setup page uses (it plays nothing).
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    send_file,
    url_for,
)  # fmt: skip
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from wtforms import SelectField, StringField, TextAreaField

from appliance import tts
from appliance.store import prompts, settings
from appliance.store.prompts import CustomPrompt, PromptError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.forms import ConfirmForm, choices, reject, text
from appliance.web.i18n import NAMES, _, _l, translate

bp = Blueprint("prompts", __name__, url_prefix="/prompts")

PREVIEW_SECONDS = 600.0
"""How long a preview file is kept (it is played at once, or never)."""
PREVIEWS = Path("prompts") / "preview"
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


class PromptForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no types
    """A new custom prompt: its name, language, and typed text or an uploaded file."""

    name = StringField(
        _l("Name"),
        description=_l(
            "How menus and announcements refer to it: letters, digits, '_', '-', '.' (e.g."
            " greeting-day)."
        ),
    )
    language = SelectField(
        _l("Language"),
        choices=choices(NAMES.items()),
        description=_l("The voice that speaks the text, and the prompt's language."),
    )
    kind = SelectField(
        _l("Made from"),
        choices=choices([("tts", _l("Typed text")), ("upload", _l("An audio file"))]),
        default="tts",
        description=_l("Text is spoken by the box's offline voice; a file is converted."),
    )
    text = TextAreaField(
        _l("Text"),
        description=_l("What the prompt says, at most %(limit)s characters.", limit=tts.MAX_TEXT),
    )
    upload = FileField(
        _l("Audio file"),
        description=_l(
            "WAV, MP3 or OGG, at most %(size)s MiB and %(minutes)s minutes; converted to"
            " 16 kHz mono.",
            size=tts.MAX_UPLOAD_BYTES >> 20,
            minutes=int(tts.MAX_SECONDS // 60),
        ),
    )


def data_dir() -> Path:
    path: Path = current_app.config["DATA_DIR"]
    return path


def _existing(name: str) -> CustomPrompt:
    prompt = prompts.get(get_db(), name)
    if prompt is None:
        abort(404, _("There is no prompt %(name)s.", name=name))
    return prompt


def _uploaded(form: PromptForm) -> bytes | None:
    """The uploaded file's bytes, or None when none was chosen."""
    storage = form.upload.data
    if not isinstance(storage, FileStorage) or not storage.filename:
        return None
    content: bytes = storage.read(tts.MAX_UPLOAD_BYTES + 1)
    return content


def _audio_maker(form: PromptForm) -> tuple[str, str, tts.Maker]:
    """(kind, text to keep, the function that writes the audio) for what the form holds; a
    refusal (nothing typed, no file) is put under its field and raised as PromptError."""
    language = form.language.data or "en"
    if form.kind.data == "upload":
        content = _uploaded(form)
        if content is None:
            message = _("Choose a WAV, MP3 or OGG file.")
            reject(form.upload, message)
            raise PromptError(message, "upload")
        storage = form.upload.data
        original = str(getattr(storage, "filename", "") or "")
        return "upload", Path(original).name, lambda target: tts.convert_upload(content, target)
    typed = text(form.text)
    if not typed:
        message = _("Type the text the prompt says.")
        reject(form.text, message)
        raise PromptError(message, "text")
    return "tts", typed, lambda target: tts.synthesize(typed, language, target)


def _sweep_previews(folder: Path) -> None:
    now = time.time()
    for old in folder.glob("*.wav"):
        try:
            if now - old.stat().st_mtime > PREVIEW_SECONDS:
                old.unlink(missing_ok=True)
        except FileNotFoundError:
            pass  # another request swept it


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    return render_template(
        "prompts.html", prompts=prompts.list_all(get_db()), names=NAMES, form=ConfirmForm()
    )


@bp.route("/<name>/audio")
@access("viewer")
def audio(name: str) -> ResponseReturnValue:
    """The prompt's WAV file; range requests answered, so the player can seek."""
    prompt = _existing(name)
    found = prompt.file(data_dir())
    if not found.is_file():
        abort(404, _("The file of prompt %(name)s is missing.", name=name))
    return send_file(found, mimetype="audio/wav", conditional=True, max_age=0)


@bp.route("/new", methods=["GET", "POST"])
@access("admin")
def new() -> ResponseReturnValue:
    form = PromptForm()
    if not form.is_submitted():
        form.language.data = settings.get_str(get_db(), "office.language")
    if form.validate_on_submit():
        try:
            kind, kept, make = _audio_maker(form)
            made = prompts.create(
                get_db(), data_dir(), text(form.name), form.language.data or "en", kind, kept,
                make,
            )  # fmt: skip
        except PromptError as exc:
            if exc.field in ("name", "language"):
                reject(form[exc.field], translate(exc))
        except tts.TtsError as exc:
            reject(form.upload if form.kind.data == "upload" else form.text, translate(exc))
        else:
            corectl.applied(_("Prompt %(name)s saved.", name=made.name))
            return redirect(url_for("prompts.index"))
    return render_template("prompt_form.html", form=form)


@bp.route("/preview", methods=["POST"])
@access("admin")
def preview() -> ResponseReturnValue:
    """Make the form's audio into a temporary file; answers {"url", "duration"} for the page's
    <audio> element, or {"error"} with 400. Nothing is saved."""
    form = PromptForm()
    if not form.validate_on_submit():
        return jsonify(error=_("The form has expired; reload the page.")), 400
    folder = data_dir() / PREVIEWS
    folder.mkdir(parents=True, exist_ok=True)
    _sweep_previews(folder)
    token = secrets.token_hex(16)
    try:
        make = _audio_maker(form)[2]
        seconds = make(folder / f"{token}.wav")
    except (PromptError, tts.TtsError) as exc:
        return jsonify(error=translate(exc)), 400
    return jsonify(url=url_for("prompts.preview_audio", name=token), duration=seconds)


@bp.route("/preview/<name>")
@access("admin")
def preview_audio(name: str) -> ResponseReturnValue:
    """A preview's WAV file; `name` is the random token the preview answered."""
    found = data_dir() / PREVIEWS / f"{name}.wav"
    if not _TOKEN.match(name) or not found.is_file():
        abort(404, _("This preview has expired; make it again."))
    return send_file(found, mimetype="audio/wav", conditional=True, max_age=0)


@bp.route("/<name>/delete", methods=["POST"])
@access("admin")
def delete(name: str) -> ResponseReturnValue:
    prompt = _existing(name)
    if ConfirmForm().validate_on_submit():
        try:
            prompts.remove(get_db(), data_dir(), prompt.name)
        except PromptError as exc:
            flash(translate(exc), "error")
        else:
            corectl.applied(_("Prompt %(name)s deleted.", name=prompt.name))
    return redirect(url_for("prompts.index"))
