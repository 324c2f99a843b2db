"""E-mail delivery of voicemail through the office's SMTP relay (RFC 5321 with STARTTLS,
RFC 3207, and AUTH, RFC 4954), the message's audio attached (RFC 2046 multipart/mixed).

`smtplib` blocks, so letters go to one thread of their own (`Mailer`), never the event loop.
A letter that fails (the relay is down, a timeout, a refused login) is logged and tried again
after `RETRY_DELAYS`; after the last try it is logged as lost, and the message itself stays in
the mailbox either way. The relay is configured by the `mail.*` settings (System page, CLI).

Why not the event outbox (`appliance.pbx.outbox`): it is a log of what happened, written in
order by the store's writer and read by webhooks; a letter is a delivery with retries and an
attachment of up to a few hundred kilobytes. The voicemail feature writes its event through
the outbox as every feature does, and hands the letter to the mailer beside it.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from appliance.store import settings
from appliance.store.database import Database

logger = logging.getLogger(__name__)

RETRY_DELAYS = (10.0, 60.0, 300.0)
"""Seconds before each new try of a letter that failed; len + 1 tries in all."""
TIMEOUT = 30.0
"""Seconds an SMTP conversation may stall before the try fails."""

LETTER = {
    "en": {
        "subject": "New voicemail for {mailbox} from {caller} ({seconds} s)",
        "body": (
            "A new voicemail message is waiting in mailbox {mailbox}.\n\n"
            "From: {caller}\nReceived: {when}\nLength: {seconds} s\n\n"
            "{attached}\nDial {code} on your phone to listen to your messages.\n"
        ),
        "attached": "The recording is attached.",
        "not_attached": "Listen to it on your phone or on the setup page.",
        "unknown": "an unknown caller",
    },
    "ru": {
        "subject": "Новое голосовое сообщение для {mailbox} от {caller} ({seconds} с)",
        "body": (
            "В почтовом ящике {mailbox} новое голосовое сообщение.\n\n"
            "От: {caller}\nПолучено: {when}\nДлительность: {seconds} с\n\n"
            "{attached}\nНаберите {code} на своём телефоне, чтобы прослушать сообщения.\n"
        ),
        "attached": "Запись приложена к письму.",
        "not_attached": "Прослушайте её по телефону или на странице настройки.",
        "unknown": "неизвестного абонента",
    },
}
"""The letter in each office language (the core has no page catalogue: the texts are here,
like the recording feature's consent announcement)."""


class MailError(Exception):
    """A letter cannot be sent; `str()` says why."""


@dataclass(frozen=True, slots=True)
class MailConfig:
    """The SMTP relay, from the `mail.*` settings. No host: e-mail is off."""

    host: str = ""
    port: int = 587
    starttls: bool = True
    user: str = ""
    password: str = ""
    sender: str = ""

    @classmethod
    def read(cls, db: Database) -> MailConfig:
        return cls(
            settings.get_str(db, "mail.host"),
            settings.get_int(db, "mail.port"),
            settings.get_str(db, "mail.starttls") == "yes",
            settings.get_str(db, "mail.user"),
            settings.get_str(db, "mail.password"),
            settings.get_str(db, "mail.from"),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def __repr__(self) -> str:  # the password never reaches a log
        return (
            f"MailConfig(host={self.host!r}, port={self.port}, starttls={self.starttls},"
            f" user={self.user!r}, password={settings.MASK!r}, sender={self.sender!r})"
        )


@dataclass(frozen=True, slots=True)
class Letter:
    """One voicemail e-mail: to whom, about which message, in which language."""

    to: str
    mailbox: str
    caller: str
    seconds: float
    received_at: float
    language: str = "en"
    attachment: Path | None = None
    feature_code: str = "*97"


def compose(letter: Letter, sender: str) -> EmailMessage:
    """The letter as a MIME message: text in the office's language, the audio attached."""
    words = LETTER.get(letter.language, LETTER["en"])
    attach = letter.attachment is not None
    fields = {
        "mailbox": letter.mailbox,
        "caller": letter.caller or words["unknown"],
        "seconds": round(letter.seconds),
        "when": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(letter.received_at)),
        "attached": words["attached"] if attach else words["not_attached"],
        "code": letter.feature_code,
    }
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = letter.to
    msg["Subject"] = words["subject"].format(**fields)
    msg["Date"] = formatdate(letter.received_at, localtime=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(words["body"].format(**fields))
    if letter.attachment is not None:
        try:
            data = letter.attachment.read_bytes()
        except OSError as exc:
            raise MailError(f"the message's file cannot be read: {exc}") from exc
        name = f"voicemail-{letter.mailbox}-{letter.attachment.name}"
        msg.add_attachment(data, maintype="audio", subtype="ogg", filename=name)
    return msg


def send(config: MailConfig, msg: EmailMessage) -> None:
    """Hand `msg` to the relay (blocking: call it from a thread). STARTTLS when configured
    (refused by the relay: an error, never a silent fall-back to clear text), then AUTH when
    a user is set."""
    if not config.enabled:
        raise MailError("no SMTP relay is configured (mail.host)")
    try:
        with smtplib.SMTP(config.host, config.port, timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            if config.starttls:
                if not smtp.has_extn("starttls"):
                    raise MailError(f"{config.host}:{config.port} offers no STARTTLS")
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if config.user:
                smtp.login(config.user, config.password)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{config.host}:{config.port}: {exc}") from exc


class Mailer:
    """Sends letters from one thread, retrying the ones that fail; never blocks its caller."""

    def __init__(
        self,
        config: MailConfig | None = None,
        *,
        delays: tuple[float, ...] = RETRY_DELAYS,
        transport: Callable[[MailConfig, EmailMessage], None] = send,
    ) -> None:
        self.config = config or MailConfig()
        self.delays = delays
        self._transport = transport
        self._jobs: queue.SimpleQueue[tuple[Letter, int] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._timers: set[threading.Timer] = set()
        self.sent = 0
        self.lost = 0

    def submit(self, letter: Letter) -> None:
        """Queue a letter (sent with the configuration current when it is tried)."""
        self._put(letter, 0)

    def _put(self, letter: Letter, attempt: int) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="mailer", daemon=True)
                self._thread.start()
        self._jobs.put((letter, attempt))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            letter, attempt = job
            config = self.config
            try:
                self._transport(config, compose(letter, config.sender or f"pbx@{config.host}"))
            except MailError as exc:
                self._failed(letter, attempt, str(exc))
            else:
                self.sent += 1
                logger.info("voicemail of %s e-mailed to %s", letter.mailbox, letter.to)

    def _failed(self, letter: Letter, attempt: int, why: str) -> None:
        if attempt >= len(self.delays):
            self.lost += 1
            logger.error("voicemail of %s not e-mailed to %s after %d tries: %s",
                         letter.mailbox, letter.to, attempt + 1, why)  # fmt: skip
            return
        delay = self.delays[attempt]
        logger.warning("voicemail of %s not e-mailed to %s (try %d): %s; again in %.0f s",
                       letter.mailbox, letter.to, attempt + 1, why, delay)  # fmt: skip
        timer = threading.Timer(delay, self._retry, (letter, attempt + 1))
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def _retry(self, letter: Letter, attempt: int) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive()}
        self._put(letter, attempt)

    def close(self) -> None:
        """Stop retrying and end the thread once the queue is sent."""
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            thread = self._thread
        self._jobs.put(None)
        if thread is not None:
            thread.join(timeout=TIMEOUT)
