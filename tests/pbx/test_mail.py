"""Voicemail e-mail against a real SMTP server (aiosmtpd on 127.0.0.1): the letter in the
office's language with the audio attached, AUTH with the configured user, STARTTLS refused by
a relay that does not offer it (never a fall-back to clear text), and a letter that failed
because the relay was down sent on a retry once it is up.

STARTTLS for real: a relay requiring it (and AUTH over it) with a self-signed certificate made
by the box's own helper (`appliance.certs`). The mailer verifies the relay against the system's
certificate authorities (`ssl.create_default_context`), so a relay on the LAN with its own
certificate is trusted the way OpenSSL is told to: its CA in the system store, or
`SSL_CERT_FILE`, which these tests set. Trusted, the letter arrives over TLS with its
attachment intact; untrusted, the try fails naming the certificate and the letter is kept and
sent on the retry once the certificate is trusted."""

from __future__ import annotations

import email
import email.policy
import ssl
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

from appliance.certs import certificate, server_context
from appliance.pbx.mail import Letter, MailConfig, Mailer, MailError, compose, send
from tests.interop.sipp import free_port

USER, PASSWORD = "pbx", "Mail-Pass-7"


@dataclass
class Inbox:
    letters: list[EmailMessage] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    logins: list[str] = field(default_factory=list)
    tls: list[str | None] = field(default_factory=list)
    """The TLS version each letter came over (None: clear text), by the same index."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.tls.append(None if session.ssl is None else session.ssl["ssl_object"].version())
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


def relay(inbox: Inbox, port: int, *, auth: bool = False,
          tls: ssl.SSLContext | None = None) -> Controller:  # fmt: skip
    """A relay on 127.0.0.1:`port`; with `tls`, STARTTLS is required before anything else and
    AUTH (when `auth`) is offered only over it."""
    kwargs: dict[str, Any] = {}
    if auth:
        kwargs = {"authenticator": inbox.authenticate, "auth_require_tls": tls is not None,
                  "auth_required": True}  # fmt: skip
    if tls is not None:
        kwargs |= {"tls_context": tls, "require_starttls": True}
    return Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)


pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def ogg(tmp_path: Path) -> Path:
    path = tmp_path / "20270115T080000Z-abc.ogg"
    path.write_bytes(b"OggS" + bytes(200))
    return path


@pytest.fixture
def tls_relay(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    """A relay requiring STARTTLS and AUTH, with a self-signed certificate for 127.0.0.1 (the
    box's helper makes it: `openssl req -x509`, EC P-256); its port and certificate file."""
    cert, key = certificate(tmp_path / "relay")
    box, port = Inbox(), free_port()
    server = relay(box, port, auth=True, tls=server_context(cert, key))
    server.start()
    yield box, port, cert
    server.stop()


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


def test_a_letter_over_starttls_to_a_trusted_relay(
    tls_relay: tuple[Inbox, int, Path], ogg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, port, cert = tls_relay
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the office trusts its relay's certificate
    config = MailConfig("127.0.0.1", port, True, USER, PASSWORD, "pbx@office.test")
    send(config, compose(Letter("owner@office.test", "102", "101", 3.0, 0.0, "en", ogg),
                         config.sender))  # fmt: skip
    assert box.logins == [USER]  # AUTH is offered only once the session is encrypted
    (got,) = box.letters
    assert box.tls[0] in ("TLSv1.2", "TLSv1.3"), box.tls
    assert got["Subject"] == "New voicemail for 102 from 101 (3 s)"
    (part,) = list(got.iter_attachments())
    assert part.get_content_type() == "audio/ogg" and part.get_content() == ogg.read_bytes()


def test_an_untrusted_relay_certificate_is_refused_and_the_letter_kept(
    tls_relay: tuple[Inbox, int, Path], ogg: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    box, port, cert = tls_relay
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the system's CAs only: not the relay's
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    errors: list[str] = []
    retrying, trusted, delivered = threading.Event(), threading.Event(), threading.Event()

    def transport(config: MailConfig, msg: EmailMessage) -> None:
        if errors:  # the retry: it waits for the test to make the office trust the relay
            retrying.set()
            assert trusted.wait(10.0)
        try:
            send(config, msg)
        except MailError as exc:
            errors.append(str(exc))
            raise
        delivered.set()

    mailer = Mailer(MailConfig("127.0.0.1", port, True, USER, PASSWORD, "pbx@office.test"),
                    delays=(0.2, 0.2, 0.2), transport=transport)  # fmt: skip
    caplog.set_level("WARNING", logger="appliance.pbx.mail")
    try:
        mailer.submit(Letter("owner@office.test", "102", "101", 3.0, 0.0, "en", ogg))
        assert retrying.wait(10.0), f"the letter was not kept for a retry: {errors}"
        (error,) = errors
        assert f"127.0.0.1:{port}" in error and "certificate verify failed" in error, error
        assert box.letters == [] and box.logins == [], "something was sent to an unverified relay"
        assert any("not e-mailed" in r.message and "certificate verify failed" in r.message
                   and "again in" in r.message for r in caplog.records), caplog.text  # fmt: skip
        assert (mailer.sent, mailer.lost) == (0, 0)

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusted.set()
        assert delivered.wait(10.0), f"the letter was not sent on the retry: {errors}"
    finally:
        trusted.set()  # a retry waiting (the test failed above) goes on, and close() ends it
        mailer.close()  # joins the mailer's thread: its counts are final
    assert (mailer.sent, mailer.lost) == (1, 0) and len(errors) == 1, errors
    (got,) = box.letters
    assert box.tls[0] in ("TLSv1.2", "TLSv1.3") and box.logins == [USER], (box.tls, box.logins)
    (part,) = list(got.iter_attachments())
    assert part.get_content() == ogg.read_bytes()


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
