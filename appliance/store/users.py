"""People who may use the setup page (admin or viewer), with scrypt password hashes (RFC 7914)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass

from appliance.i18n import LANGUAGES, T
from appliance.store.database import Database
from appliance.store.db import transaction

ROLES = ("admin", "viewer")
USERNAME_RE = re.compile(r"[a-z][a-z0-9._-]{1,31}\Z")
MIN_PASSWORD = 10
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""16 MiB and about 50 ms per hash on a Pi 4 class CPU: slow for a guesser, quick for a login."""

COMMON_PASSWORDS = frozenset(
    [
        "password",
        "password1",
        "password12",
        "password123",
        "1234567890",
        "0123456789",
        "qwertyuiop",
        "qwerty12345",
        "letmein123",
        "administrator",
        "admin12345",
        "welcome123",
        "iloveyou12",
        "changeme12",
        "abcdefghij",
        "abc1234567",
        "passw0rd12",
        "trustno1234",
        "monkey1234",
        "dragon1234",
    ]
)


class UserError(ValueError):
    """A request about a user cannot be done. `str()` says why, for a technician; `field`
    names what was wrong (username, password, role) so a form can show it there."""

    def __init__(self, message: str, field: str = "username") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    session_epoch: int
    language: str = ""
    """The page's language this user chose (`appliance.i18n.LANGUAGES`), or "" for none yet."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=64 << 20,
        dklen=64,
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


HASH_RE = re.compile(r"scrypt\$(\d{1,7})\$(\d{1,3})\$(\d{1,3})\$([0-9a-f]{32})\$([0-9a-f]{128})\Z")


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, key) of a stored hash; ValueError when it is not one `hash_password`
    makes (a damaged hash would lock its user out for good)."""
    match = HASH_RE.match(stored)
    if match is None:
        raise ValueError("not an scrypt password hash")
    n, r, p = (int(match.group(i)) for i in (1, 2, 3))
    if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("scrypt parameters out of range")
    return n, r, p, bytes.fromhex(match.group(4)), bytes.fromhex(match.group(5))


def verify_password(password: str, stored: str) -> bool:
    try:
        n, r, p, salt, key = parse_hash(stored)
        got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 << 20)
    except ValueError:
        return False
    return hmac.compare_digest(got, key)


_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * 16}${'00' * 64}"
"""Verified against when the user does not exist, so a login takes as long either way."""


def check_username(username: str) -> str:
    if not USERNAME_RE.match(username):
        raise UserError(
            T(
                "user name must be 2 to 32 characters: lower-case letters, digits, '.', '_' or"
                " '-', starting with a letter"
            )
        )
    return username


def check_password(username: str, password: str) -> str:
    """A password a guesser will not find: long, mixed, not common, not the user name."""
    if len(password) < MIN_PASSWORD:
        raise UserError(
            T("password must be at least {length} characters", length=MIN_PASSWORD), "password"
        )
    if len(password) > 128:
        raise UserError(T("password must be at most 128 characters"), "password")
    classes = sum(
        any(test(c) for c in password)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if classes < 3 and len(password) < 16:
        raise UserError(
            T(
                "password is too weak: use at least three of lower-case, upper-case, digits and"
                " symbols, or 16 characters or more"
            ),
            "password",
        )
    if password.lower() in COMMON_PASSWORDS or username.lower() in password.lower():
        raise UserError(
            T("password is too easy to guess: it is common or contains the user name"),
            "password",
        )
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(T("role must be one of {roles}", roles=", ".join(ROLES)), "role")
    return role


def count(db: Database) -> int:
    return int(db.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def add(db: Database, username: str, password: str, role: str) -> User:
    check_username(username)
    check_password(username, password)
    check_role(role)
    epoch = new_epoch()
    try:
        db.execute(
            "INSERT INTO users (username, role, password_hash, session_epoch, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [username, role, hash_password(password), epoch, time.time()],
        )
    except sqlite3.IntegrityError:
        raise UserError(T("user {username} already exists", username=username)) from None
    return User(username, role, epoch)


def new_epoch() -> int:
    """A new user's first session epoch: random, so that the cookies of a removed user of the
    same name (epoch 0, 1, ...) are no good for the new one."""
    return secrets.randbits(31)


def add_first_admin(db: Database, username: str, password: str) -> User:
    """Create the first admin, only while there is no user at all (first boot)."""
    check_username(username)
    check_password(username, password)
    password_hash = hash_password(password)
    epoch = new_epoch()
    with transaction(db) as conn:
        if conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]:
            raise UserError(T("the admin account exists already; log in instead"))
        conn.execute(
            "INSERT INTO users (username, role, password_hash, session_epoch, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [username, "admin", password_hash, epoch, time.time()],
        )
    return User(username, "admin", epoch)


def end_sessions(db: Database, username: str) -> None:
    """Every session of this user ends (logging out, everywhere)."""
    db.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE username = ?", [username])


def get(db: Database, username: str) -> User | None:
    row = db.execute(
        "SELECT username, role, session_epoch, language FROM users WHERE username = ?",
        [username],
    ).fetchone()
    return None if row is None else User(*row)


def list_all(db: Database) -> list[User]:
    rows = db.execute("SELECT username, role, session_epoch, language FROM users ORDER BY username")
    return [User(*row) for row in rows.fetchall()]


def set_language(db: Database, username: str, language: str) -> None:
    """Keep the page's language this user chose (their sessions go on)."""
    if language not in LANGUAGES:
        raise UserError(
            T("language must be one of {languages}", languages=", ".join(LANGUAGES)), "language"
        )
    cur = db.execute("UPDATE users SET language = ? WHERE username = ?", [language, username])
    if cur.rowcount == 0:
        raise UserError(T("no user {username}", username=username))


def authenticate(db: Database, username: str, password: str) -> User | None:
    row = db.execute(
        "SELECT username, role, session_epoch, language, password_hash FROM users"
        " WHERE username = ?",
        [username],
    ).fetchone()
    if row is None:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, row[4]):
        return None
    return User(row[0], row[1], row[2], row[3])


def set_password(db: Database, username: str, password: str) -> None:
    """Change a password; every session of that user ends (its epoch moves on)."""
    check_password(username, password)
    cur = db.execute(
        "UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1 WHERE username = ?",
        [hash_password(password), username],
    )
    if cur.rowcount == 0:
        raise UserError(T("no user {username}", username=username))


def _admins_left(conn: sqlite3.Connection, username: str) -> int:
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND username != ?", [username]
        ).fetchone()[0]
    )


def set_role(db: Database, username: str, role: str) -> None:
    check_role(role)
    with transaction(db) as conn:
        if role != "admin" and not _admins_left(conn, username):
            raise UserError(T("the last admin cannot become a viewer"))
        cur = conn.execute(
            "UPDATE users SET role = ?, session_epoch = session_epoch + 1 WHERE username = ?",
            [role, username],
        )
        if cur.rowcount == 0:
            raise UserError(T("no user {username}", username=username))


def remove(db: Database, username: str) -> None:
    with transaction(db) as conn:
        if not _admins_left(conn, username):
            raise UserError(T("the last admin cannot be removed"))
        cur = conn.execute("DELETE FROM users WHERE username = ?", [username])
        if cur.rowcount == 0:
            raise UserError(T("no user {username}", username=username))
