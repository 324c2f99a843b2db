"""Extensions' calling permissions and outside caller ID in the store: permission classes known
and canonical, internal calls never barred; a caller ID is one of the office's DIDs."""

from __future__ import annotations

import pytest

from appliance.store import dids, extensions
from appliance.store.database import Database
from appliance.store.extensions import Extension, ExtensionError


@pytest.fixture
def db(office: Database) -> Database:
    extensions.add(office, "101", "Reception")
    dids.add(office, "+74951234567", "extension:101", "Main")
    return office


def reception(db: Database) -> Extension:
    ext = extensions.get(db, "101")
    assert ext is not None
    return ext


def test_a_new_extension_has_the_default_permissions_and_no_caller_id(db: Database) -> None:
    expected = Extension("101", "Reception", ("internal", "local", "mobile", "long-distance"), "")
    assert extensions.get(db, "101") == expected
    assert extensions.list_all(db) == [expected]
    assert Extension("102", "x") == Extension("102", "x", expected.permissions, "")


def test_permissions_are_canonical_and_always_internal(db: Database) -> None:
    assert extensions.set_permissions(db, "101", [" International", "local", "local"]) == (
        "internal", "local", "international"
    )  # fmt: skip
    assert reception(db).permissions == ("internal", "local", "international")
    assert extensions.set_permissions(db, "101", []) == ("internal",)
    with pytest.raises(ExtensionError) as refused:
        extensions.set_permissions(db, "101", ["local", "satellite"])
    assert (str(refused.value), refused.value.field) == (
        "unknown permission class 'satellite'; known: internal, local, mobile, long-distance,"
        " international, premium",
        "permissions",
    )
    assert reception(db).permissions == ("internal",)
    with pytest.raises(ExtensionError, match=r"^no extension 999$"):
        extensions.set_permissions(db, "999", ["local"])


def test_the_caller_id_is_one_of_the_offices_numbers(db: Database) -> None:
    assert extensions.set_caller_id(db, "101", "8 (495) 123-45-67") == "+74951234567"
    assert reception(db).caller_id == "+74951234567"
    for given, shown in [("+74950000000", "+74950000000"), ("8 495 000 00 00", "+74950000000"),
                         ("not a number", "not a number")]:  # fmt: skip
        with pytest.raises(ExtensionError) as refused:
            extensions.set_caller_id(db, "101", given)
        assert (str(refused.value), refused.value.field) == (
            f"caller ID {shown} is not one of the office's numbers (DIDs)",
            "caller_id",
        )
    assert reception(db).caller_id == "+74951234567"
    assert extensions.set_caller_id(db, "101", "") == ""
    with pytest.raises(ExtensionError, match=r"^no extension 999$"):
        extensions.set_caller_id(db, "999", "+74951234567")


def test_store_calls_nest_in_a_callers_transaction(db: Database) -> None:
    """The setup wizard adds extensions inside its own transaction: a failing one inside is
    undone alone, and the caller's transaction decides the rest."""
    from appliance.store.db import transaction

    with transaction(db):
        extensions.add(db, "102")
        with pytest.raises(ExtensionError):
            extensions.add(db, "102")
        extensions.add(db, "103")
    assert [e.number for e in extensions.list_all(db)] == ["101", "102", "103"]
    with pytest.raises(RuntimeError), transaction(db):
        extensions.add(db, "104")
        raise RuntimeError("the caller fails")
    assert extensions.get(db, "104") is None and not db.conn.in_transaction
