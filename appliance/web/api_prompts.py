"""/api/v1/prompts: the office's custom prompts for scripts: list, make from text (JSON) or an
uploaded file (multipart), read, fetch the audio, delete. Routes of `appliance.web.api`'s
blueprint (its bearer tokens, its JSON errors); described in `appliance.web.openapi_prompts`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, jsonify, request, send_file, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage

from appliance import tts
from appliance.i18n import LANGUAGES
from appliance.store import prompts
from appliance.store.prompts import CustomPrompt, PromptError, PromptExists
from appliance.web import corectl
from appliance.web.api import ApiError, _body, bp
from appliance.web.auth import access, get_db


def _json(prompt: CustomPrompt) -> dict[str, Any]:
    return {
        "name": prompt.name, "language": prompt.language, "kind": prompt.kind,
        "text": prompt.text, "duration": round(prompt.duration, 3),
        "created_at": prompt.created_at,
        "audio": url_for("api.prompt_audio", name=prompt.name),
    }  # fmt: skip


def _prompt(name: str) -> CustomPrompt:
    prompt = prompts.get(get_db(), name)
    if prompt is None:
        raise ApiError(404, f"no prompt {name}")
    return prompt


def _create(name: str, language: str, kind: str, kept: str, make: tts.Maker) -> CustomPrompt:
    data: Path = current_app.config["DATA_DIR"]
    try:
        return prompts.create(get_db(), data, name, language, kind, kept, make)
    except PromptExists as exc:
        raise ApiError(409, str(exc)) from None
    except tts.ToolMissing as exc:
        raise ApiError(503, str(exc)) from None
    except (PromptError, tts.TtsError) as exc:
        raise ApiError(400, str(exc)) from None


@bp.route("/prompts", methods=["GET"])
@access("viewer")
def list_prompts() -> ResponseReturnValue:
    return jsonify(prompts=[_json(p) for p in prompts.list_all(get_db())])


@bp.route("/prompts", methods=["POST"])
@access("admin")
def create_prompt() -> ResponseReturnValue:
    """JSON {name, language, text} is synthesised; multipart/form-data with name, language and
    file is converted."""
    if request.mimetype == "multipart/form-data":
        name = request.form.get("name", "")
        language = request.form.get("language", "")
        upload = request.files.get("file")
        if language not in LANGUAGES:
            raise ApiError(400, f"language must be one of {', '.join(LANGUAGES)}")
        if not isinstance(upload, FileStorage):
            raise ApiError(400, "missing fields: file")
        content = upload.read(tts.MAX_UPLOAD_BYTES + 1)
        original = Path(upload.filename or "").name
        made = _create(name, language, "upload", original,
                       lambda target: tts.convert_upload(content, target))  # fmt: skip
    else:
        data = _body({"name": True, "language": True, "text": True},
                     enums={"language": LANGUAGES})  # fmt: skip
        typed = data["text"]
        made = _create(data["name"], data["language"], "tts", typed.strip(),
                       lambda target: tts.synthesize(typed, data["language"], target))  # fmt: skip
    corectl.reload()
    return jsonify(_json(made)), 201


@bp.route("/prompts/<name>", methods=["GET"])
@access("viewer")
def get_prompt(name: str) -> ResponseReturnValue:
    return jsonify(_json(_prompt(name)))


@bp.route("/prompts/<name>/audio", methods=["GET"])
@access("viewer")
def prompt_audio(name: str) -> ResponseReturnValue:
    found = _prompt(name).file(current_app.config["DATA_DIR"])
    if not found.is_file():
        raise ApiError(404, f"the file of prompt {name} is missing")
    return send_file(found, mimetype="audio/wav", conditional=True, max_age=0)


@bp.route("/prompts/<name>", methods=["DELETE"])
@access("admin")
def delete_prompt(name: str) -> ResponseReturnValue:
    _prompt(name)
    try:
        prompts.remove(get_db(), current_app.config["DATA_DIR"], name)
    except PromptError as exc:
        raise ApiError(404, str(exc)) from None
    corectl.reload()
    return "", 204
