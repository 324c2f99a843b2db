"""Voicemail e-mail against a real SMTP server (aiosmtpd on 127.0.0.1): the letter in the
office's language with the audio attached, AUTH with the configured user, STARTTLS refused by
a relay that does not offer it (never a fall-back to clear text), and a letter that failed
because the relay was down sent on a retry once it is up."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from appliance.pbx.mail import Letter, MailConfig, Mailer, MailError, compose, send
from tests.interop.sipp import free_port

USER, PASSWORD = "pbx", "Mail-Pass-7"


@dataclass
class Inbox:
    letters: list[EmailMessage] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.letters.append(msg)
        self.arrived.set()
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:  # fmt: skip
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(), auth_data.password.decode()) == (USER, PASSWORD)  # fmt: skip
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok)


def relay(inbox: Inbox, port: int, *, auth: bool = False) -> Controller:
    kwargs: dict[str, Any] = {}
    if auth:
        kwargs = {"authenticator": inbox.authenticate, "auth_require_tls": False,
                  "auth_required": True}  # fmt: skip
    return Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)


pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def ogg(tmp_path: Path) -> Path:
    path = tmp_path / "20270115T080000Z-abc.ogg"
    path.write_bytes(b"OggS" + bytes(200))
    return path


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box, port = Inbox(), free_port()
    server = relay(box, port, auth=True)
    server.start()
    yield box, port
    server.stop()


def test_the_letter_in_russian_with_the_audio_attached(ogg: Path) -> None:
    letter = Letter("owner@office.test", "102", "101", 3.4, 1_800_000_000.0, "ru", ogg, "*97")
    msg = compose(letter, "pbx@office.test")
    assert msg["Subject"] == "Новое голосовое сообщение для 102 от 101 (3 с)"
    body = msg.get_body(("plain",))
    assert body is not None and "Наберите *97" in body.get_content()
    (part,) = list(msg.iter_attachments())
    assert part.get_content_type() == "audio/ogg" and part.get_content() == ogg.read_bytes()


def test_auth_with_the_configured_user(inbox: tuple[Inbox, int], ogg: Path) -> None:
    box, port = inbox
    config = MailConfig("127.0.0.1", port, False, USER, PASSWORD, "pbx@office.test")
    send(config, compose(Letter("owner@office.test", "102", "101", 3.0, 0.0, "en", ogg),
                         config.sender))  # fmt: skip
    assert box.logins == [USER]
    (got,) = box.letters
    assert got["Subject"] == "New voicemail for 102 from 101 (3 s)"


def test_starttls_required_but_not_offered_is_refused(inbox: tuple[Inbox, int]) -> None:
    _box, port = inbox
    config = MailConfig("127.0.0.1", port, True, USER, PASSWORD, "pbx@office.test")
    with pytest.raises(MailError, match="offers no STARTTLS"):
        send(config, compose(Letter("o@office.test", "102", "101", 3.0, 0.0), config.sender))


def test_the_password_never_shows_in_a_repr() -> None:
    assert PASSWORD not in repr(MailConfig("h", 25, True, USER, PASSWORD, "a@b.c"))


def test_a_letter_is_retried_until_the_relay_is_up(ogg: Path) -> None:
    box, port = Inbox(), free_port()
    tried = threading.Event()
    server = relay(box, port)

    def transport(config: MailConfig, msg: EmailMessage) -> None:
        try:
            send(config, msg)
        finally:
            tried.set()

    mailer = Mailer(MailConfig("127.0.0.1", port, False, "", "", "pbx@office.test"),
                    delays=(0.2, 0.2, 0.2), transport=transport)  # fmt: skip
    try:
        mailer.submit(Letter("owner@office.test", "102", "101", 3.0, 0.0, "en", ogg))
        assert tried.wait(10.0), "the mailer never tried"  # refused: nobody listens yet
        server.start()
        assert box.arrived.wait(10.0), "the letter was not sent on a retry"
        deadline = time.monotonic() + 10.0  # the relay has the letter before the client's QUIT
        while mailer.sent == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mailer.sent == 1 and mailer.lost == 0
    finally:
        mailer.close()
        server.stop()
