"""Talk time in the store: the seconds from answer to end of the answered calls a filter
selects (the dashboard says it in minutes)."""

from __future__ import annotations

import pytest

from appliance.store import cdrs
from appliance.store.database import Database


def call(call_id: str, started: float, talk: float | None, caller: str = "101") -> cdrs.Cdr:
    """A call that rang 3 s, then was talked over for `talk` seconds (None: not answered)."""
    answered = started + 3 if talk is not None else None
    return cdrs.Cdr(
        id=call_id, started_at=started, ended_at=(answered or started + 3) + (talk or 0),
        caller=caller, dialled="102", disposition="answered" if talk is not None else "busy",
        hangup_side="caller", hangup_cause="BYE", answered_at=answered,
        answered_by="102" if talk is not None else None,
    )  # fmt: skip


def test_talk_time_adds_up_the_answered_calls_only(db: Database) -> None:
    assert cdrs.talk_seconds(db) == 0
    cdrs.write(db, [
        call("a", 1000.0, 65.5), call("b", 2000.0, None), call("c", 3000.0, 120.25, caller="103"),
        call("d", 4000.0, 0.0),
    ])  # fmt: skip
    assert cdrs.talk_seconds(db) == pytest.approx(185.75)
    assert cdrs.talk_seconds(db, cdrs.Filter(since=1500.0)) == pytest.approx(120.25)
    assert cdrs.talk_seconds(db, cdrs.Filter(until=1500.0)) == pytest.approx(65.5)
    assert cdrs.talk_seconds(db, cdrs.Filter(extension="103")) == pytest.approx(120.25)
    assert cdrs.talk_seconds(db, cdrs.Filter(disposition="busy")) == 0
    assert cdrs.talk_seconds(db, cdrs.Filter(since=5000.0)) == 0


def test_an_unknown_disposition_is_refused_naming_it(db: Database) -> None:
    bad = call("x", 1000.0, 10.0)
    bad.disposition = "lost"
    with pytest.raises(ValueError, match="unknown CDR disposition 'lost'; known: answered, busy"):
        cdrs.write(db, [bad])
    assert cdrs.count(db) == 0
