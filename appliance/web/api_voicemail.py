"""/api/v1/voicemail: the extensions' mailboxes and their messages for scripts: list, read,
create or change (the PIN write-only), delete; a message's audio (HTTP range requests), moved
to saved, deleted. Routes of `appliance.web.api`'s blueprint (its bearer tokens, its JSON
errors); described in `appliance.web.openapi_voicemail`.

A message id in a path is taken as text and read here, so a path that is not a number is
refused by the token check first (403 for a viewer's write) and then with a JSON 404."""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify, request, url_for
from flask.typing import ResponseReturnValue

from appliance.store import extensions, prompts, voicemail
from appliance.store.voicemail import FOLDERS, GREETINGS, Mailbox, Message, VoicemailError
from appliance.web import corectl
from appliance.web.api import ApiError, _body, bp
from appliance.web.auth import access, get_db
from appliance.web.voicemail import data_dir, serve_message

FLAGS = ("enabled", "attach", "on_busy", "on_no_answer", "unsolicited_mwi")
MAILBOX_FIELDS = {
    "pin": False, "greeting": False, "greeting_prompt": False, "max_seconds": False,
    "email": False, **{flag: False for flag in FLAGS},
}  # fmt: skip
ID_RE = re.compile(r"[0-9]{1,18}")
"""A message id as a path gives it (beyond 18 digits it would not fit SQLite's integer)."""
MAILBOX_KINDS = {"max_seconds": "integer", **{flag: "boolean" for flag in FLAGS}}


def mailbox_json(box: Mailbox) -> dict[str, Any]:
    new, saved = voicemail.counts(get_db(), box.number)
    return {
        "number": box.number, "enabled": box.enabled, "has_pin": box.has_pin,
        "greeting": box.greeting, "greeting_file": box.greeting_file,
        "max_seconds": box.max_seconds, "email": box.email, "attach": box.attach,
        "on_busy": box.on_busy, "on_no_answer": box.on_no_answer,
        "unsolicited_mwi": box.unsolicited_mwi, "new": new, "saved": saved,
    }  # fmt: skip


def message_json(msg: Message) -> dict[str, Any]:
    return {
        "id": msg.id, "mailbox": msg.mailbox, "caller": msg.caller,
        "caller_name": msg.caller_name, "started_at": msg.started_at, "seconds": msg.seconds,
        "folder": msg.folder,
        "audio": url_for("api.voicemail_message_audio", message_id=str(msg.id)),
    }  # fmt: skip


def _mailbox(number: str) -> Mailbox:
    box = voicemail.mailbox(get_db(), number)
    if box is None:
        raise ApiError(404, f"extension {number} has no mailbox")
    return box


def _message(message_id: str) -> Message:
    number = int(message_id) if ID_RE.fullmatch(message_id) else None
    found = voicemail.message(get_db(), number) if number else None
    if found is None or found.deleted:
        raise ApiError(404, f"no message {message_id}")
    return found


@bp.route("/voicemail/mailboxes", methods=["GET"])
@access("viewer")
def list_mailboxes() -> ResponseReturnValue:
    return jsonify(mailboxes=[mailbox_json(b) for b in voicemail.mailboxes(get_db())])


@bp.route("/voicemail/mailboxes/<number>", methods=["GET"])
@access("viewer")
def get_mailbox(number: str) -> ResponseReturnValue:
    return jsonify(mailbox_json(_mailbox(number)))


@bp.route("/voicemail/mailboxes/<number>", methods=["PUT"])
@access("admin")
def put_mailbox(number: str) -> ResponseReturnValue:
    """Make the extension's mailbox, or change the fields the body gives (the rest stay)."""
    db = get_db()
    if extensions.get(db, number) is None:
        raise ApiError(404, f"no extension {number}")
    body = _body(MAILBOX_FIELDS, MAILBOX_KINDS, enums={"greeting": GREETINGS})
    greeting_file = None
    if body.get("greeting_prompt"):
        found = prompts.get(db, body["greeting_prompt"])
        if found is None:
            name = body["greeting_prompt"]
            raise ApiError(400, f"greeting_prompt: there is no custom prompt {name}")
        greeting_file = found.path
    existed = voicemail.mailbox(db, number) is not None
    try:
        box = voicemail.set_mailbox(
            db, number, pin=body.get("pin"), greeting=body.get("greeting"),
            greeting_file=greeting_file, max_seconds=body.get("max_seconds"),
            email=body.get("email"), **{flag: body.get(flag) for flag in FLAGS},
        )  # fmt: skip
    except VoicemailError as exc:
        raise ApiError(400, f"{exc.field}: {exc}") from None
    corectl.reload()
    return jsonify(mailbox_json(box)), (200 if existed else 201)


@bp.route("/voicemail/mailboxes/<number>", methods=["DELETE"])
@access("admin")
def delete_mailbox_route(number: str) -> ResponseReturnValue:
    _mailbox(number)
    voicemail.remove_mailbox(get_db(), data_dir(), number)
    corectl.reload()
    return "", 204


@bp.route("/voicemail/mailboxes/<number>/messages", methods=["GET"])
@access("viewer")
def list_voicemail_messages(number: str) -> ResponseReturnValue:
    _mailbox(number)
    folder = request.args.get("folder") or None
    if folder is not None and folder not in FOLDERS:
        raise ApiError(400, f"folder must be one of {', '.join(FOLDERS)}")
    found = voicemail.messages(get_db(), number, folder)
    return jsonify(messages=[message_json(m) for m in found])


@bp.route("/voicemail/messages/<message_id>", methods=["GET"])
@access("viewer")
def get_voicemail_message(message_id: str) -> ResponseReturnValue:
    return jsonify(message_json(_message(message_id)))


@bp.route("/voicemail/messages/<message_id>/audio", methods=["GET"])
@access("viewer")
def voicemail_message_audio(message_id: str) -> ResponseReturnValue:
    msg = _message(message_id)
    if voicemail.message_file(data_dir(), msg) is None:
        raise ApiError(404, f"the file of message {message_id} is missing")
    return serve_message(msg)


@bp.route("/voicemail/messages/<message_id>", methods=["PATCH"])
@access("admin")
def move_voicemail_message(message_id: str) -> ResponseReturnValue:
    """Move a message to another folder ("saved" once it was heard, or back to "new")."""
    msg = _message(message_id)
    body = _body({"folder": True}, enums={"folder": FOLDERS})
    voicemail.move(get_db(), msg.id, body["folder"])
    corectl.reload()
    return jsonify(message_json(_message(message_id)))


@bp.route("/voicemail/messages/<message_id>", methods=["DELETE"])
@access("admin")
def delete_voicemail_message(message_id: str) -> ResponseReturnValue:
    msg = _message(message_id)
    voicemail.remove_message(get_db(), data_dir(), msg.id)
    corectl.reload()
    return "", 204
