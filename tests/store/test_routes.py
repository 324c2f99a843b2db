"""Outbound routes in the store: patterns parsed and made canonical, trunks checked in
failover order, caller ID one of the office's numbers, and the order routes are tried kept
dense (1..n) through adds, moves and removals."""

from __future__ import annotations

import pytest

from appliance.numbering import DialPattern, PatternError
from appliance.store import dids, routes, trunks
from appliance.store.database import Database
from appliance.store.routes import Route, RouteError, RouteExists


@pytest.fixture
def db(office: Database) -> Database:
    for name in ("sipnet", "backup"):
        trunks.add(office, name, kind="ip", server="192.0.2.1")
    dids.add(office, "+74951234567", "hangup:busy", "Main")
    return office


def order(db: Database) -> list[tuple[int, str]]:
    return [(r.position, r.name) for r in routes.list_all(db)]


def test_a_route_is_stored_canonical(db: Database) -> None:
    route = routes.add(
        db, "city", ["_8xxxxxxxxxx", "9|8[0-9]XXXXXXXXX"], ["sipnet", "backup"], prepend="+7",
        caller_id="8 (495) 123-45-67",
    )  # fmt: skip
    assert route == Route(
        "city", 1, ("8XXXXXXXXXX", "9|8XXXXXXXXXX"), "+7", ("sipnet", "backup"), "+74951234567",
        route.created_at,
    )  # fmt: skip
    assert routes.get(db, "city") == route and routes.list_all(db) == [route]


def test_routes_are_added_last_or_at_a_position_and_stay_dense(db: Database) -> None:
    for name in ("a", "b", "c"):
        routes.add(db, name, ["X."], ["sipnet"])
    assert order(db) == [(1, "a"), (2, "b"), (3, "c")]
    routes.add(db, "first", ["112"], ["sipnet"], position=1)
    routes.add(db, "middle", ["8X."], ["sipnet"], position=3)
    assert order(db) == [(1, "first"), (2, "a"), (3, "middle"), (4, "b"), (5, "c")]
    routes.add(db, "last", ["9X."], ["sipnet"], position=6)
    assert order(db)[-1] == (6, "last")


def test_move_reorders_and_remove_closes_up(db: Database) -> None:
    for name in ("a", "b", "c", "d"):
        routes.add(db, name, ["X."], ["sipnet"])
    assert routes.move(db, "d", 1).position == 1
    assert order(db) == [(1, "d"), (2, "a"), (3, "b"), (4, "c")]
    routes.move(db, "d", 3)
    assert order(db) == [(1, "a"), (2, "b"), (3, "d"), (4, "c")]
    routes.move(db, "a", 4)
    assert order(db) == [(1, "b"), (2, "d"), (3, "c"), (4, "a")]
    routes.move(db, "c", 3)
    assert order(db) == [(1, "b"), (2, "d"), (3, "c"), (4, "a")]
    with pytest.raises(RouteError) as refused:
        routes.move(db, "a", 5)
    assert (str(refused.value), refused.value.field) == (
        "position must be 1 to 4, not 5",
        "position",
    )
    with pytest.raises(RouteError, match=r"^position must be 1 to 4, not 0$"):
        routes.move(db, "a", 0)
    with pytest.raises(RouteError, match=r"^no route zz$"):
        routes.move(db, "zz", 1)
    routes.remove(db, "d")
    assert order(db) == [(1, "b"), (2, "c"), (3, "a")]
    with pytest.raises(RouteError, match=r"^no route d$"):
        routes.remove(db, "d")


def test_update_replaces_what_is_given(db: Database) -> None:
    routes.add(db, "a", ["X."], ["sipnet"])
    route = routes.add(db, "city", ["8XXXXXXXXXX"], ["sipnet"], prepend="9")
    changed = routes.update(db, "city", trunks=["backup", "sipnet"], caller_id="+74951234567")
    assert changed == Route(
        "city", 2, route.patterns, "9", ("backup", "sipnet"), "+74951234567", route.created_at
    )
    assert routes.get(db, "city") == changed
    assert routes.update(db, "city", patterns=["810X."], prepend="").patterns == ("810X.",)
    assert routes.update(db, "city", position=1).position == 1
    assert order(db) == [(1, "city"), (2, "a")]
    with pytest.raises(RouteError, match=r"^no route nothere$"):
        routes.update(db, "nothere", prepend="1")


def _pattern_error(text: str) -> str:
    with pytest.raises(PatternError) as exc:
        DialPattern.parse(text)
    return str(exc.value)


BAD = [
    ({"patterns": ["8[XX"]}, "patterns", "pattern '8[XX': unclosed '[' at 1"),
    ({"patterns": ["8XXX", "8Y"]}, "patterns", _pattern_error("8Y")),
    ({"patterns": ["8[0-9]", "8X"]}, "patterns", "pattern 8X is listed twice"),
    ({"patterns": []}, "patterns", "a route needs at least one dial pattern"),
    ({"patterns": [" "]}, "patterns", "a route needs at least one dial pattern"),
    ({"trunks": []}, "trunks", "a route needs at least one trunk"),
    ({"trunks": ["sipnet", "nope"]}, "trunks", "there is no trunk 'nope'"),
    ({"trunks": ["sipnet", "backup", "sipnet"]}, "trunks", "trunk sipnet is listed twice"),
    ({"prepend": "9a"}, "prepend",
     "prepend may hold only digits, after an optional leading +, not '9a'"),
    ({"prepend": "1+"}, "prepend",
     "prepend may hold only digits, after an optional leading +, not '1+'"),
    ({"caller_id": "+74950000000"}, "caller_id",
     "caller ID +74950000000 is not one of the office's numbers (DIDs)"),
    ({"caller_id": "8 495 000-00-00"}, "caller_id",
     "caller ID +74950000000 is not one of the office's numbers (DIDs)"),
    ({"position": 3}, "position", "position must be 1 to 2, not 3"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field", "message"), BAD, ids=[m for _, _, m in BAD])
def test_bad_input_is_refused_with_a_clear_message(
    db: Database, change: dict[str, object], field: str, message: str
) -> None:
    routes.add(db, "other", ["X."], ["sipnet"])
    args: dict[str, object] = {"patterns": ["8XXXXXXXXXX"], "trunks": ["sipnet"], **change}
    with pytest.raises(RouteError) as refused:
        routes.add(db, "city", **args)  # type: ignore[arg-type]
    assert (str(refused.value), refused.value.field) == (message, field)
    assert order(db) == [(1, "other")]


def test_names_are_checked_and_used_once(db: Database) -> None:
    routes.add(db, "city", ["X."], ["sipnet"])
    with pytest.raises(RouteExists, match=r"^route city already exists$"):
        routes.add(db, "city", ["8X."], ["sipnet"])
    with pytest.raises(RouteError) as refused:
        routes.add(db, "City Calls", ["X."], ["sipnet"])
    assert str(refused.value) == (
        "route name must be 1 to 32 lower-case letters, digits, '-' or '_', starting with a"
        " letter or digit, not 'City Calls'"
    )
    assert order(db) == [(1, "city")]
