"""The Prompts page and /api/v1/prompts over a real SQLite file, with the real espeak-ng and
sox: an admin makes prompts from typed text and from an uploaded MP3 (form and API), hears a
preview before saving (a WAV that nothing lists), deletes; bad input is refused with its reason
under the field or as a JSON error; a viewer lists and listens but changes nothing."""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from appliance.store import prompts
from appliance.store.db import open_db
from tests.web.conftest import Pages, csrf_token
from tests.web.test_api import Api, error, make_token

API = "/api/v1/prompts"


def wav_seconds(body: bytes) -> float:
    with wave.open(io.BytesIO(body), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return w.getnframes() / w.getframerate()


@pytest.fixture
def mp3(tmp_path: Path) -> bytes:
    path = tmp_path / "tone.mp3"
    subprocess.run(["sox", "-n", "-r", "22050", str(path), "synth", "1.5", "sine", "600"],
                   check=True, capture_output=True, timeout=30)  # fmt: skip
    return path.read_bytes()


def rows(data: Path) -> list[prompts.CustomPrompt]:
    db = open_db(data)
    try:
        return prompts.list_all(db)
    finally:
        db.conn.close()


def post_form(client: Pages, fields: dict[str, object]) -> TestResponse:
    token = csrf_token(client.get("/prompts/new").get_data(as_text=True))
    return client.client.post(
        "/prompts/new", data={"csrf_token": token, **fields}, content_type="multipart/form-data"
    )


def test_admin_makes_a_prompt_from_text_and_it_is_listed_and_played(
    admin: Pages, data: Path
) -> None:
    answer = post_form(admin, {"name": "welcome", "language": "ru", "kind": "tts",
                               "text": "Добро пожаловать в наш офис"})  # fmt: skip
    assert answer.status_code == 302, answer.get_data(as_text=True)
    (made,) = rows(data)
    assert (made.name, made.language, made.kind) == ("welcome", "ru", "tts")
    page = admin.get("/prompts/").get_data(as_text=True)
    assert "welcome" in page and "Добро пожаловать в наш офис" in page
    assert 'src="/prompts/welcome/audio"' in page
    audio = admin.get("/prompts/welcome/audio")
    assert audio.status_code == 200 and audio.mimetype == "audio/wav"
    assert wav_seconds(audio.data) == pytest.approx(made.duration, abs=0.01)
    ranged = admin.client.get("/prompts/welcome/audio", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.data) == 100


def test_admin_uploads_an_mp3(admin: Pages, data: Path, mp3: bytes) -> None:
    answer = post_form(admin, {"name": "tone", "language": "en", "kind": "upload",
                               "upload": (io.BytesIO(mp3), "tone.mp3")})  # fmt: skip
    assert answer.status_code == 302, answer.get_data(as_text=True)
    (made,) = rows(data)
    assert (made.kind, made.text) == ("upload", "tone.mp3")
    assert made.duration == pytest.approx(1.5, abs=0.1)


def test_bad_input_is_refused_under_its_field(admin: Pages, data: Path) -> None:
    answer = post_form(admin, {"name": "x", "language": "en", "kind": "tts", "text": "  "})
    assert answer.status_code == 200
    assert "Type the text the prompt says." in answer.get_data(as_text=True)
    answer = post_form(admin, {"name": "bad name", "language": "en", "kind": "tts",
                               "text": "hello"})  # fmt: skip
    assert "may contain only letters, digits" in answer.get_data(as_text=True)
    notes = (io.BytesIO(b"just some notes\n"), "notes.mp3")
    answer = post_form(
        admin, {"name": "notes", "language": "en", "kind": "upload", "upload": notes}
    )
    assert "the file is not audio in WAV, MP3 or OGG format" in answer.get_data(as_text=True)
    answer = post_form(admin, {"name": "nofile", "language": "en", "kind": "upload"})
    assert "Choose a WAV, MP3 or OGG file." in answer.get_data(as_text=True)
    assert rows(data) == []
    assert not list((data / prompts.FOLDER).glob("*.wav"))


def test_preview_makes_audio_without_saving(admin: Pages, data: Path) -> None:
    token = csrf_token(admin.get("/prompts/new").get_data(as_text=True))
    answer = admin.client.post("/prompts/preview", data={
        "csrf_token": token, "name": "", "language": "en", "kind": "tts",
        "text": "This is only a preview",
    }, content_type="multipart/form-data")  # fmt: skip
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["duration"] > 0.5
    audio = admin.get(body["url"])
    assert audio.status_code == 200 and audio.mimetype == "audio/wav"
    assert wav_seconds(audio.data) == pytest.approx(body["duration"], abs=0.01)
    assert rows(data) == []
    refused = admin.client.post("/prompts/preview", data={
        "csrf_token": token, "language": "en", "kind": "tts", "text": ""},
        content_type="multipart/form-data")  # fmt: skip
    assert refused.status_code == 400
    assert refused.get_json() == {"error": "Type the text the prompt says."}
    assert admin.get("/prompts/preview/" + "0" * 32).status_code == 404
    assert admin.get("/prompts/preview/../../etc").status_code == 404


def test_admin_deletes_a_prompt_and_its_file(admin: Pages, data: Path) -> None:
    post_form(admin, {"name": "bye", "language": "en", "kind": "tts", "text": "Goodbye"})
    (made,) = rows(data)
    answer = admin.submit("/prompts/", {}, "/prompts/bye/delete")
    assert answer.status_code == 302
    assert rows(data) == [] and not made.file(data).exists()


def test_a_viewer_lists_and_listens_but_changes_nothing(
    admin: Pages, viewer: Pages, data: Path
) -> None:
    post_form(admin, {"name": "hold", "language": "en", "kind": "tts", "text": "Please hold"})
    page = viewer.get("/prompts/").get_data(as_text=True)
    assert "hold" in page and "/prompts/hold/delete" not in page and "/prompts/new" not in page
    assert viewer.get("/prompts/hold/audio").status_code == 200
    assert viewer.get("/prompts/new").status_code == 403
    token = csrf_token(page)
    assert viewer.client.post("/prompts/hold/delete", data={"csrf_token": token}).status_code == 403
    assert viewer.client.post("/prompts/preview", data={"csrf_token": token}).status_code == 403
    assert [p.name for p in rows(data)] == ["hold"]


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture
def admin_api(app: Flask, admin: Pages, data: Path) -> Api:
    return Api(app.test_client(), make_token(data, "admin"))


@pytest.fixture
def viewer_api(app: Flask, admin: Pages, data: Path) -> Api:
    return Api(app.test_client(), make_token(data, "viewer"))


def test_the_api_makes_lists_plays_and_deletes(admin_api: Api, data: Path, mp3: bytes) -> None:
    made = admin_api.open("POST", API, {"name": "menu", "language": "ru",
                                        "text": "Нажмите один"})  # fmt: skip
    assert made.status_code == 201, made.get_data(as_text=True)
    body = made.get_json()
    assert body["kind"] == "tts" and body["audio"] == f"{API}/menu/audio"
    uploaded = admin_api.open("POST", API, data={"name": "tone", "language": "en",
                              "file": (io.BytesIO(mp3), "tone.mp3")},
                              content_type="multipart/form-data")  # fmt: skip
    assert uploaded.status_code == 201, uploaded.get_data(as_text=True)
    assert uploaded.get_json()["duration"] == pytest.approx(1.5, abs=0.1)
    listed = admin_api.get(API).get_json()
    assert [p["name"] for p in listed["prompts"]] == ["menu", "tone"]
    assert admin_api.get(f"{API}/menu").get_json() == body
    audio = admin_api.get(f"{API}/menu/audio")
    assert audio.status_code == 200 and wav_seconds(audio.data) == pytest.approx(
        body["duration"], abs=0.01
    )
    assert admin_api.open("DELETE", f"{API}/menu").status_code == 204
    error(admin_api.get(f"{API}/menu"), 404)
    assert [p.name for p in rows(data)] == ["tone"]


def test_the_api_refuses_bad_input(admin_api: Api) -> None:
    missing = admin_api.open("POST", API, {"name": "a", "language": "en"})
    assert "missing fields: text" in error(missing, 400)
    assert "language must be one of" in error(
        admin_api.open("POST", API, {"name": "a", "language": "de", "text": "x"}), 400
    )
    assert "the text to speak is empty" in error(
        admin_api.open("POST", API, {"name": "a", "language": "en", "text": " "}), 400
    )
    assert "may contain only letters" in error(
        admin_api.open("POST", API, {"name": "a b", "language": "en", "text": "x"}), 400
    )
    notes = admin_api.open("POST", API, data={"name": "n", "language": "en",
                           "file": (io.BytesIO(b"hello"), "n.ogg")},
                           content_type="multipart/form-data")  # fmt: skip
    assert "not audio in WAV, MP3 or OGG" in error(notes, 400)
    admin_api.open("POST", API, {"name": "a", "language": "en", "text": "hello"})
    assert "already exists" in error(
        admin_api.open("POST", API, {"name": "a", "language": "en", "text": "again"}), 409
    )
    error(admin_api.open("DELETE", f"{API}/nothing"), 404)


def test_a_viewer_token_reads_but_never_writes(admin_api: Api, viewer_api: Api) -> None:
    admin_api.open("POST", API, {"name": "a", "language": "en", "text": "hello"})
    assert viewer_api.get(API).status_code == 200
    assert viewer_api.get(f"{API}/a/audio").status_code == 200
    error(viewer_api.open("POST", API, {"name": "b", "language": "en", "text": "x"}), 403)
    error(viewer_api.open("DELETE", f"{API}/a"), 403)
