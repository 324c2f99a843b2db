"""Call records: a filtered, paged list and the same selection as CSV.

The list shows times in the page's language and the office's time zone; the CSV has its column
headers in the page's language and its times as ISO 8601 local times (2024-03-11 00:30:00, which
every spreadsheet reads), so that a file reads the same whoever exported it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from babel.dates import format_datetime
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale

from appliance.store import cdrs, recordings, settings
from appliance.store.database import Database
from appliance.store.db import open_db
from appliance.web.auth import access, current_user, get_db
from appliance.web.forms import CdrFilterForm, reject
from appliance.web.i18n import _, _l, language
from appliance.web.recordings import may_listen

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

bp = Blueprint("cdrs", __name__, url_prefix="/calls")

PAGE = 50
CSV_COLUMNS = (
    "id", "started", "answered", "ended", "caller", "caller_name", "dialled", "answered_by",
    "disposition", "duration", "billsec", "hangup_side", "hangup_cause", "codec_caller",
    "codec_callee", "direction", "trunk", "did", "did_label", "sent",
)  # fmt: skip
CSV_HEADERS = {
    "id": _l("Call ID"),
    "started": _l("Started"),
    "answered": _l("Answered at"),
    "ended": _l("Ended at"),
    "caller": _l("Caller"),
    "caller_name": _l("Caller's name"),
    "dialled": _l("Dialled"),
    "answered_by": _l("Answered by"),
    "disposition": _l("Result"),
    "duration": _l("Duration (s)"),
    "billsec": _l("Talk time (s)"),
    "hangup_side": _l("Ended by"),
    "hangup_cause": _l("Hang-up cause"),
    "codec_caller": _l("Caller's codec"),
    "codec_callee": _l("Callee's codec"),
    "direction": _l("Direction"),
    "trunk": _l("Trunk"),
    "did": _l("DID"),
    "did_label": _l("DID label"),
    "sent": _l("Number sent"),
}
"""The CSV's header row in another language than English, the columns' names. In English the
header row is the columns' codes (CSV_COLUMNS), as it always was: programs that read the file
rely on them. The cells are the store's codes and numbers in every language."""
assert set(CSV_HEADERS) == set(CSV_COLUMNS)


def csv_headers() -> list[str]:
    """The CSV's header row in this request's language."""
    if language() == "en":
        return list(CSV_COLUMNS)
    return [str(CSV_HEADERS[c]) for c in CSV_COLUMNS]


def cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def filter_form() -> CdrFilterForm:
    """The filter form over this request's query, its trunk choices from the store."""
    form = CdrFilterForm(request.args)
    form.offer(get_db())
    return form


def office_zone() -> ZoneInfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.get_str(get_db(), "office.timezone"))


def day_start(day: date, zone: ZoneInfo) -> float:
    return datetime.combine(day, time(), tzinfo=zone).timestamp()


def selection(form: CdrFilterForm, zone: ZoneInfo) -> cdrs.Filter | None:
    """The records the filter form asks for; None (with the reason under its field) when its
    dates are beyond what the calendar holds."""
    until = form.until.data
    try:
        return cdrs.Filter(
            since=day_start(form.since.data, zone) if form.since.data else None,
            until=day_start(until + timedelta(days=1), zone) if until else None,
            extension=(form.extension.data or "").strip() or None,
            disposition=form.disposition.data or None,
            direction=form.direction.data or None,
            trunk=form.trunk.data or None,
        )
    except (OverflowError, ValueError):
        reject(form.until, _("This date is out of range."))
        return None


def local_time(ts: float | None, zone: ZoneInfo) -> str:
    """A call's time as the list shows it: in `zone`, as the page's language writes a date and
    a time ("Mar 11, 2024, 12:30:00 AM", "11 мар. 2024 г., 00:30:00")."""
    if ts is None:
        return ""
    return format_datetime(datetime.fromtimestamp(ts, zone), "medium", tzinfo=zone,
                           locale=get_locale() or "en")  # fmt: skip


def iso_time(ts: float | None, zone: ZoneInfo) -> str:
    """A call's time as the CSV has it: in `zone`, ISO 8601 without the offset."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S")


@bp.route("")
@access("viewer")
def index() -> ResponseReturnValue:
    form = filter_form()
    zone = office_zone()
    db = get_db()
    page = request.args.get("page", 1, type=int) or 1
    rows: list[dict[str, Any]] = []
    total = 0
    where = selection(form, zone) if form.validate() else None
    if where is not None:
        total = cdrs.count(db, where)
        page = min(max(1, page), max(1, -(-total // PAGE)))  # a page that exists
        rows = cdrs.search(db, where, limit=PAGE, offset=(page - 1) * PAGE)
    query = {k: v for k, v in request.args.items() if k != "page" and v}
    user = current_user()
    listen = user is not None and may_listen(db, user.role)
    return render_template(
        "cdrs.html", form=form, rows=rows, total=total, page=page,
        pages=max(1, -(-total // PAGE)), query=query, zone=zone, local_time=local_time,
        recorded=recordings.for_calls(db, [r["id"] for r in rows]), listen=listen,
    )  # fmt: skip


@bp.route("/export.csv")
@access("viewer")
def export() -> ResponseReturnValue:
    form = filter_form()
    zone = office_zone()
    where = selection(form, zone) if form.validate() else None
    if where is None:  # the list shows what is wrong with the filter
        return redirect(
            f"{url_for('cdrs.index')}?{urlencode(list(request.args.items(multi=True)))}"
        )
    data_dir = current_app.config["DATA_DIR"]
    headers = csv_headers()  # now: the lines are made after the request

    def lines() -> Iterator[str]:
        # Its own connection: the request's is closed before the last line is streamed.
        db = open_db(data_dir, migrate_schema=False)
        try:
            yield from rows(db)
        finally:
            db.conn.close()

    def rows(db: Database) -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(headers)
        offset = 0
        while batch := cdrs.search(db, where, limit=1000, offset=offset):
            for row in batch:
                writer.writerow(
                    [
                        iso_time(row["started_at"], zone) if c == "started"
                        else iso_time(row["answered_at"], zone) if c == "answered"
                        else iso_time(row["ended_at"], zone) if c == "ended"
                        else cell(row[c])
                        for c in CSV_COLUMNS
                    ]
                )  # fmt: skip
            offset += len(batch)
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        if offset == 0:
            yield out.getvalue()

    return Response(
        lines(), mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=calls.csv"},
    )  # fmt: skip
