"""A call the core closed as `interrupted` after a crash (`store.live_calls`) is a result like
the others everywhere calls are shown: the call list and its filter in both languages, the CSV
(its code) and the API (filter and schema)."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

from flask import Flask

from appliance.store import cdrs
from appliance.store.db import open_db
from appliance.web.openapi import document
from tests.web.conftest import Pages
from tests.web.test_api import Api, make_token


def interrupted_call(data: Path) -> None:
    now = time.time()
    db = open_db(data)
    try:
        cdrs.write(db, [
            cdrs.Cdr(id="crashed", started_at=now - 60, answered_at=now - 55, ended_at=now - 2,
                     caller="101", dialled="102", answered_by="102", disposition="interrupted",
                     hangup_side="system", hangup_cause="pbx-core stopped during the call"),
            cdrs.Cdr(id="normal", started_at=now - 50, ended_at=now - 40, caller="101",
                     dialled="103", disposition="busy", hangup_side="callee", hangup_cause="486"),
        ])  # fmt: skip
    finally:
        db.conn.close()


def option(page: str) -> str | None:
    """The text of the result filter's option for `interrupted`."""
    found = re.search(r'<option[^>]* value="interrupted"[^>]*>([^<]*)</option>', page)
    return found[1] if found else None


def test_the_call_list_shows_and_filters_interrupted_calls_in_both_languages(
    admin: Pages, data: Path
) -> None:
    interrupted_call(data)
    english = admin.get("/calls?disposition=interrupted").get_data(as_text=True)
    assert '<span class="disp interrupted">interrupted</span>' in english
    assert "disp busy" not in english
    assert option(english) == "Interrupted"
    assert admin.submit("/language", {"language": "ru", "next": "/calls"}).status_code == 302
    russian = admin.get("/calls?disposition=interrupted").get_data(as_text=True)
    assert '<span class="disp interrupted">прерван</span>' in russian
    assert option(russian) == "Прерван"
    exported = admin.get("/calls/export.csv?disposition=interrupted").get_data(as_text=True)
    (row,) = list(csv.reader(io.StringIO(exported)))[1:]
    assert "interrupted" in row and "crashed" in row  # the code, as for every result


def test_the_api_filters_interrupted_calls_and_documents_the_result(
    app: Flask, admin: Pages, data: Path
) -> None:
    interrupted_call(data)
    api = Api(app.test_client(), make_token(data, "viewer"))
    response = api.get("/api/v1/cdrs?disposition=interrupted")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["total"] == 1
    assert [(r["id"], r["disposition"], r["duration"]) for r in body["cdrs"]] == [
        ("crashed", "interrupted", 58.0)]  # fmt: skip
    schema = document("http://box")["components"]["schemas"]["Cdr"]["properties"]["disposition"]
    assert "interrupted" in schema["enum"]
