"""Who may use the setup page, in the store: scrypt password hashes, the password and user-name
rules, the first admin made once, the last admin kept, sessions ended by password and role
changes (session_epoch); API tokens shown once and stored only as SHA-256 hashes; and the
lock-out after failed logins from one source address."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.store import logins, tokens, users
from appliance.store.database import Database
from appliance.store.db import database_path, open_db
from appliance.store.users import UserError

GOOD = "Corr3ct-Horse!"
"""A password every rule accepts (for users whose name it does not contain)."""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def db(data: Path) -> Iterator[Database]:
    handle = open_db(data)
    yield handle
    handle.conn.close()


def stored_hash(db: Database, username: str) -> str:
    row = db.execute("SELECT password_hash FROM users WHERE username = ?", [username]).fetchone()
    assert row is not None, username
    return str(row[0])


def file_bytes(data: Path) -> bytes:
    """Everything SQLite keeps on disk for the database: the main file and its WAL."""
    main = database_path(data)
    parts = [main, main.with_name(main.name + "-wal"), main.with_name(main.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


# --- password hashes ---------------------------------------------------------------------------


def test_a_password_hash_is_scrypt_with_its_parameters_salt_and_key() -> None:
    stored = users.hash_password(GOOD)
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    assert len(bytes.fromhex(salt)) == 16
    expected = hashlib.scrypt(
        GOOD.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1, maxmem=64 << 20
    )
    assert bytes.fromhex(key) == expected
    assert GOOD not in stored
    assert users.hash_password(GOOD).split("$")[4] != salt  # a new salt every time


def test_verify_accepts_the_right_password_and_refuses_a_wrong_one() -> None:
    stored = users.hash_password(GOOD)
    assert users.verify_password(GOOD, stored)
    assert not users.verify_password(GOOD + "x", stored)
    assert not users.verify_password(GOOD.lower(), stored)
    assert not users.verify_password("", stored)


@pytest.mark.parametrize(
    "stored",
    ["", "garbage", "bcrypt$16384$8$1$00$00", "scrypt$16384$8$1$zz$zz", "scrypt$16384$8$1$00"],
)
def test_verify_refuses_a_damaged_hash_without_raising(stored: str) -> None:
    assert users.verify_password(GOOD, stored) is False


def test_a_user_is_stored_with_a_hash_and_authenticates_with_the_right_password(
    db: Database,
) -> None:
    anna = users.add(db, "anna", GOOD, "viewer")
    assert (anna.username, anna.role) == ("anna", "viewer")
    stored = stored_hash(db, "anna")
    assert stored.startswith("scrypt$") and users.verify_password(GOOD, stored)
    assert users.authenticate(db, "anna", GOOD) == anna
    assert users.authenticate(db, "anna", "Wr0ng-Password!") is None
    assert users.authenticate(db, "nobody", GOOD) is None


# --- password and user-name rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt-pw!", "at least 10 characters"),
        ("abcdefghijkl", "too weak"),  # one class only
        ("abcdefgh1234", "too weak"),  # two classes, shorter than 16
        ("ABCDEFGH!!!!", "too weak"),
        ("Password123", "too easy to guess"),  # three classes, but common
        ("QwertyUIOP", "too weak"),
        ("My-anna-Pass1", "too easy to guess"),  # contains the user name
        ("xxANNA-2024-yy", "too easy to guess"),  # the name in another case
        ("A1!" + "b" * 126, "at most 128 characters"),
    ],
)
def test_a_weak_password_is_refused_with_a_readable_message_and_no_user_is_made(
    db: Database, password: str, message: str
) -> None:
    with pytest.raises(UserError, match=message) as caught:
        users.add(db, "anna", password, "viewer")
    assert caught.value.field == "password"
    assert str(caught.value).startswith("password ")
    assert users.count(db) == 0
    with pytest.raises(UserError, match=message):
        users.add_first_admin(db, "anna", password)
    assert users.count(db) == 0


@pytest.mark.parametrize(
    "password", [GOOD, "correcthorsebatterystaple", "Abcdefgh12", "ab12!!cd34", "x" * 8 + "Y1"]
)
def test_a_strong_password_is_accepted(db: Database, password: str) -> None:
    assert users.check_password("anna", password) == password


@pytest.mark.parametrize(
    "username", ["a", "Admin", "1admin", "_admin", "ad min", "admin!", "a" * 33, "", "anna\n"]
)
def test_a_bad_user_name_is_refused(db: Database, username: str) -> None:
    with pytest.raises(UserError, match="user name must be 2 to 32 characters") as caught:
        users.add(db, username, GOOD, "viewer")
    assert caught.value.field == "username"
    assert users.count(db) == 0


@pytest.mark.parametrize("username", ["ab", "anna.k", "tech_2", "front-desk", "a" * 32])
def test_a_good_user_name_is_accepted(username: str) -> None:
    assert users.check_username(username) == username


def test_an_unknown_role_is_refused(db: Database) -> None:
    with pytest.raises(UserError, match="role must be one of admin, viewer") as caught:
        users.add(db, "anna", GOOD, "root")
    assert caught.value.field == "role"
    assert users.count(db) == 0


def test_a_user_name_is_taken_once(db: Database) -> None:
    users.add(db, "anna", GOOD, "viewer")
    with pytest.raises(UserError, match="user anna already exists"):
        users.add(db, "anna", "0ther-Secret!", "admin")
    assert people(db) == [("anna", "viewer")]
    assert users.authenticate(db, "anna", GOOD) is not None


def people(db: Database) -> list[tuple[str, str]]:
    return [(u.username, u.role) for u in users.list_all(db)]


# --- the first admin, the last admin ------------------------------------------------------------


def test_the_first_admin_is_made_only_while_there_is_no_user(db: Database) -> None:
    assert users.add_first_admin(db, "boss", GOOD).role == "admin"
    with pytest.raises(UserError, match="exists already"):
        users.add_first_admin(db, "intruder", "Intrud3r-Pass!")
    assert people(db) == [("boss", "admin")]
    assert users.authenticate(db, "intruder", "Intrud3r-Pass!") is None


def test_the_first_admin_is_refused_when_any_user_exists(db: Database) -> None:
    users.add(db, "clerk", GOOD, "viewer")
    with pytest.raises(UserError, match="exists already"):
        users.add_first_admin(db, "boss", GOOD)
    assert [u.username for u in users.list_all(db)] == ["clerk"]


def test_the_last_admin_cannot_be_removed_or_demoted(db: Database) -> None:
    users.add_first_admin(db, "boss", GOOD)
    users.add(db, "clerk", GOOD, "viewer")
    with pytest.raises(UserError, match="the last admin cannot be removed"):
        users.remove(db, "boss")
    with pytest.raises(UserError, match="the last admin cannot become a viewer"):
        users.set_role(db, "boss", "viewer")
    assert people(db) == [("boss", "admin"), ("clerk", "viewer")]

    users.set_role(db, "clerk", "admin")  # two admins: either may go now, not both
    users.set_role(db, "boss", "viewer")
    with pytest.raises(UserError, match="the last admin cannot be removed"):
        users.remove(db, "clerk")
    with pytest.raises(UserError, match="the last admin cannot become a viewer"):
        users.set_role(db, "clerk", "viewer")
    users.remove(db, "boss")
    assert [(u.username, u.role) for u in users.list_all(db)] == [("clerk", "admin")]


def test_removing_or_changing_an_unknown_user_is_an_error(db: Database) -> None:
    users.add_first_admin(db, "boss", GOOD)
    with pytest.raises(UserError, match="no user ghost"):
        users.remove(db, "ghost")
    with pytest.raises(UserError, match="no user ghost"):
        users.set_role(db, "ghost", "admin")
    with pytest.raises(UserError, match="no user ghost"):
        users.set_password(db, "ghost", GOOD)
    assert people(db) == [("boss", "admin")]


# --- session epochs ---------------------------------------------------------------------------


def test_set_password_set_role_and_logout_move_the_session_epoch_on(db: Database) -> None:
    boss_epoch = users.add_first_admin(db, "boss", GOOD).session_epoch
    start = users.add(db, "clerk", GOOD, "viewer").session_epoch
    users.set_password(db, "clerk", "N3w-Password!")
    clerk = users.get(db, "clerk")
    assert clerk is not None and clerk.session_epoch == start + 1
    assert users.authenticate(db, "clerk", "N3w-Password!") == clerk
    assert users.authenticate(db, "clerk", GOOD) is None

    users.set_role(db, "clerk", "admin")
    assert users.get(db, "clerk") == users.User("clerk", "admin", start + 2)
    users.end_sessions(db, "clerk")
    assert users.get(db, "clerk") == users.User("clerk", "admin", start + 3)
    boss = users.get(db, "boss")
    assert boss is not None and boss.session_epoch == boss_epoch  # other users' go on


def test_a_user_added_again_under_a_removed_name_starts_a_new_epoch(db: Database) -> None:
    """The removed user's cookies carry its epoch; the new user of that name must not match."""
    users.add_first_admin(db, "boss", GOOD)
    first = [users.add(db, f"clerk{i}", GOOD, "viewer").session_epoch for i in range(3)]
    assert len(set(first)) == 3  # random, not 0 for everyone
    old = users.add(db, "bob", GOOD, "viewer").session_epoch
    users.remove(db, "bob")
    assert users.add(db, "bob", GOOD, "admin").session_epoch != old


def test_a_refused_password_change_keeps_the_password_and_the_sessions(db: Database) -> None:
    boss = users.add_first_admin(db, "boss", GOOD)
    before = stored_hash(db, "boss")
    with pytest.raises(UserError) as caught:
        users.set_password(db, "boss", "weak")
    assert caught.value.field == "password"
    assert stored_hash(db, "boss") == before
    assert users.get(db, "boss") == boss


# --- API tokens -------------------------------------------------------------------------------


def test_a_token_is_returned_in_clear_once_and_only_its_sha256_is_stored(
    db: Database, data: Path
) -> None:
    token, clear = tokens.create(db, "CRM integration", "viewer")
    other, other_clear = tokens.create(db, "Wallboard", "admin")
    assert clear.startswith("pbx_") and len(clear) >= 40
    assert other_clear != clear
    assert (token.name, token.role, token.last_used_at) == ("CRM integration", "viewer", None)
    rows = db.execute("SELECT * FROM api_tokens ORDER BY id").fetchall()
    digest = hashlib.sha256(clear.encode()).hexdigest()
    assert rows[0][3] == digest
    assert all(clear not in map(str, row) for row in rows)
    assert tokens.list_all(db) == [token, other]

    stored = file_bytes(data)
    assert digest.encode() in stored  # the check below reads where the rows really are
    assert clear.encode() not in stored
    assert clear.removeprefix("pbx_").encode() not in stored
    assert other_clear.removeprefix("pbx_").encode() not in stored


def test_lookup_finds_the_token_and_records_its_use(db: Database) -> None:
    token, clear = tokens.create(db, "CRM", "admin")
    before = time.time()
    found = tokens.lookup(db, clear)
    after = time.time()
    assert found is not None and (found.id, found.name, found.role) == (token.id, "CRM", "admin")
    (listed,) = tokens.list_all(db)
    assert listed.last_used_at is not None and before <= listed.last_used_at <= after
    for wrong in (clear[:-1], clear + "x", clear.removeprefix("pbx_"), "pbx_", ""):
        assert tokens.lookup(db, wrong) is None, wrong


def test_a_revoked_token_is_refused(db: Database) -> None:
    token, clear = tokens.create(db, "CRM", "viewer")
    kept, kept_clear = tokens.create(db, "Wallboard", "viewer")
    tokens.revoke(db, token.id)
    assert tokens.lookup(db, clear) is None
    assert [t.id for t in tokens.list_all(db)] == [kept.id]
    assert tokens.lookup(db, kept_clear) is not None
    with pytest.raises(UserError, match=f"no token {token.id}"):
        tokens.revoke(db, token.id)


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("", "viewer"),
        ("  ", "viewer"),
        ("x" * 65, "viewer"),
        ("bad\nname", "viewer"),
        ("CRM", "root"),
    ],
)
def test_a_token_with_a_bad_name_or_role_is_not_made(db: Database, name: str, role: str) -> None:
    with pytest.raises(UserError):
        tokens.create(db, name, role)
    assert tokens.list_all(db) == []


# --- login lock-out ---------------------------------------------------------------------------

T0 = 1_700_000_000.0
SOURCE = "192.0.2.7"


def test_five_failures_within_the_window_lock_the_source_for_15_minutes(db: Database) -> None:
    for i in range(4):
        assert logins.failed(db, SOURCE, T0 + 60 * i) == 0
        assert logins.locked_for(db, SOURCE, T0 + 60 * i) == 0
    fifth = T0 + 14 * 60
    assert logins.failed(db, SOURCE, fifth) == 15 * 60
    assert logins.locked_for(db, SOURCE, fifth) == 15 * 60
    assert logins.locked_for(db, SOURCE, fifth + 60) == 14 * 60
    assert logins.locked_for(db, SOURCE, fifth + 15 * 60 - 1) == 1
    assert logins.locked_for(db, SOURCE, fifth + 15 * 60) == 0
    assert logins.locked_for(db, "192.0.2.8", fifth) == 0  # another source is not locked


def test_after_a_lock_out_ends_the_count_starts_again(db: Database) -> None:
    for i in range(5):
        logins.failed(db, SOURCE, T0 + i)
    free = T0 + 4 + 15 * 60
    assert logins.locked_for(db, SOURCE, free) == 0
    assert logins.failed(db, SOURCE, free + 1) == 0  # one failure, not a sixth
    assert logins.locked_for(db, SOURCE, free + 1) == 0


def test_a_failure_during_a_lock_out_does_not_end_it(db: Database) -> None:
    """A guess checked just before the lock began and counted after it must not reset it."""
    for i in range(5):
        logins.failed(db, SOURCE, T0 + i)
    assert logins.failed(db, SOURCE, T0 + 10) == 15 * 60 - 6
    assert logins.locked_for(db, SOURCE, T0 + 11) == 15 * 60 - 7


def test_failures_older_than_the_window_restart_the_count(db: Database) -> None:
    for i in range(4):
        logins.failed(db, SOURCE, T0 + i)
    later = T0 + 15 * 60 + 10  # the first failures are more than 15 minutes old
    for i in range(4):
        assert logins.failed(db, SOURCE, later + i) == 0
        assert logins.locked_for(db, SOURCE, later + i) == 0
    assert logins.failed(db, SOURCE, later + 4) == 15 * 60


def test_the_lock_out_is_kept_across_a_restart(data: Path, db: Database) -> None:
    for i in range(5):
        logins.failed(db, SOURCE, T0 + i)
    reopened = open_db(data)
    try:
        assert logins.locked_for(reopened, SOURCE, T0 + 5) > 0
    finally:
        reopened.conn.close()
