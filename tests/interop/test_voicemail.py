"""Voicemail with real peers: sipp phones, the test's own RTP endpoint, and an SMTP server.

101 (a sipp caller whose media is the test's RTP endpoint) calls 102, whose phone (sipp)
answers 486 Busy: the call goes to 102's mailbox, the caller hears the greeting naming the
extension, leaves a spoken message and presses #. 102's other phone (sipp, subscribed to
`message-summary`) receives NOTIFY Messages-Waiting: no, then yes with 1/0; the e-mail with the
message attached arrives at the test's aiosmtpd. 102 dials *97, keys its PIN, hears the
message (its decoded audio correlates with what 101 said), deletes it with 7, and the
subscriber receives Messages-Waiting: no and, on unsubscribing, the terminated NOTIFY.

No answer: 102's phone (sipp) rings and nobody answers; after `calls.ring_timeout` (its minimum,
5 s) the box CANCELs it, answers 101 itself with the greeting saying 102 is unavailable, and
records the tone 101 sends until #: the message is stored with its length, the subscriber is
told Messages-Waiting: yes and the e-mail carries the same file.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile
from aiosmtpd.controller import Controller

from appliance.store import voicemail
from appliance.store.db import open_db
from tests.conftest import CoreProcess
from tests.interop.call_records import wait_cdrs
from tests.interop.rtp_endpoint import RtpEndpoint
from tests.interop.sipp import (
    BackgroundSipp,
    SipMessage,
    SippPeers,
    SippRun,
    credentials,
    free_media_port,
    free_port,
    ulaw_tone,
)
from tests.interop.test_ivr import best_correlation, decoded
from tests.interop.test_sipp_calls import RTP_PORTS, Office, free_rtp_range, statuses

with warnings.catch_warnings():  # deprecated in 3.11, gone in 3.13 (audioop-lts)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

CALLER, CALLER_PASSWORD = "101", "Kq7vT9pLm2"
OWNER, OWNER_PASSWORD = "102", "Zr4wX8nQp3"
PIN = "4321"
EMAIL = "owner@office.test"
PACK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
SPEECH = "demo-congrats"
SPOKEN_SECONDS = 3.0
DTMF_PT = 96
TIMEOUT = 120.0
RING_SECONDS = 5
"""`calls.ring_timeout` in the no-answer test: the least the setting allows."""
TONE_HZ, TONE_SECONDS = 1200.0, 3.0
"""The message left after no answer: a tone apart from the beep (700 Hz) and ringback."""


def pack_seconds(*names: str) -> float:
    return float(sum(soundfile.info(str(PACK / f"{name}.wav")).duration for name in names))


def speech() -> npt.NDArray[np.float64]:
    """What the caller says: the first seconds of a prompt of the pack (speech, 8 kHz)."""
    data, rate = soundfile.read(PACK / f"{SPEECH}.wav", dtype="float64")
    assert rate == 8000
    return np.asarray(data[: int(SPOKEN_SECONDS * rate)], dtype=np.float64)


def as_ulaw(samples: npt.NDArray[np.float64]) -> bytes:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    return audioop.lin2ulaw(pcm, 2)


@dataclass
class Mailroom:
    """What the test's SMTP server received."""

    letters: list[EmailMessage] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.letters.append(msg)
        self.arrived.set()
        return "250 OK"


@dataclass
class Voicemail:
    office: Office
    peers: SippPeers
    mailroom: Mailroom

    def caller(self, rtp: RtpEndpoint, number: str, password: str, dialled: str) -> BackgroundSipp:
        """`number` dials `dialled` with its media on `rtp`, which starts sending at once."""
        row: list[str | int] = [number, credentials(number, password), rtp.port, dialled, 0]
        sipp = self.peers.start("pj_uac_answer.xml", [row], port=free_port(),
                                media_port=free_media_port(), timeout=TIMEOUT)  # fmt: skip
        port = sipp.wait_media_port()
        rtp.start((self.office.core.host, port))
        return sipp

    def subscriber(self) -> BackgroundSipp:
        row = [OWNER, credentials(OWNER, OWNER_PASSWORD)]
        return self.peers.start("mwi_subscribe.xml", [row], port=free_port(),
                                media_port=free_media_port(), timeout=TIMEOUT)  # fmt: skip


def _notified(sipp: BackgroundSipp, waiting: str, counts: str) -> str:
    return sipp.wait_stderr(lambda line: line.startswith(f"mwi-notify {waiting} {counts}"),
                            timeout=60.0)  # fmt: skip


@pytest.fixture
def vm(core_factory: type[CoreProcess], tmp_path: Path) -> Iterator[Voicemail]:
    mailroom = Mailroom()
    smtp_port = free_port()
    controller = Controller(mailroom, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    core = core_factory(data=tmp_path / "var")
    low = free_rtp_range()
    for key, value in (("rtp.port_min", str(low)), ("rtp.port_max", str(low + RTP_PORTS - 1)),
                       ("office.language", "en"), ("mail.host", "127.0.0.1"),
                       ("mail.port", str(smtp_port)), ("mail.starttls", "no"),
                       ("mail.from", "pbx@office.test")):  # fmt: skip
        core.cli("config", "set", key, value)
    core.cli("ext", "add", CALLER, "--password", CALLER_PASSWORD)
    core.cli("ext", "add", OWNER, "--password", OWNER_PASSWORD)
    db = open_db(core.data)
    try:
        voicemail.set_mailbox(db, OWNER, pin=PIN, email=EMAIL, on_busy=True,
                              on_no_answer=True, max_seconds=30)  # fmt: skip
    finally:
        db.conn.close()
    core.start()
    peers = SippPeers((core.host, core.port), tmp_path / "sipp")
    try:
        yield Voicemail(Office(core, peers, tmp_path / "sipp"), peers, mailroom)
    finally:
        peers.close()
        controller.stop()
        (tmp_path / "core.log").write_text("\n".join(core.output))


def _the_new_message(
    core: CoreProcess,
) -> tuple[voicemail.Message, npt.NDArray[np.float64]]:
    """The one message in OWNER's mailbox (new, from CALLER) and its audio, 8 kHz mono."""
    db = open_db(core.data, migrate_schema=False)
    try:
        (message,) = voicemail.messages(db, OWNER)
    finally:
        db.conn.close()
    assert message.caller == CALLER and message.folder == "new", message
    audio, rate = soundfile.read(core.data / message.path, dtype="float64")
    assert rate == 8000 and audio.ndim == 1, (rate, audio.shape)
    return message, np.asarray(audio)


def test_busy_message_mwi_email_and_retrieval(vm: Voicemail) -> None:
    core = vm.office.core
    subscriber = vm.subscriber()
    granted = subscriber.wait_stderr(lambda line: line.startswith("mwi-subscribed"))
    assert granted.split()[1] == "600", granted
    _notified(subscriber, "no", "0/0 active")

    busy = vm.office.callee("call_uas_busy.xml", rtp=False, timeout=TIMEOUT)
    said = speech()
    with RtpEndpoint() as rtp:
        caller = vm.caller(rtp, CALLER, CALLER_PASSWORD, OWNER)
        greeting = pack_seconds("vm-theperson", "digits/1", "digits/0", "digits/2",
                                "vm-isonphone", "vm-intro", "beep")  # fmt: skip
        heard = rtp.wait_packets(lambda p: p.payload_type == 0, int(greeting * 50) - 50,
                                 timeout=30.0)  # fmt: skip
        score = best_correlation(decoded(heard), _pack("vm-isonphone"))
        assert score > 0.9, f"the busy greeting was not heard: {score:.3f}"
        _wait_for(rtp, _pack("beep"), since=0)  # the tone: speak now
        rtp.send_audio(as_ulaw(np.concatenate([np.zeros(8000), said])))
        rtp.send_digits("#", payload_type=DTMF_PT)
        caller.wait().assert_passed()  # the box says goodbye and hangs up
    busy.wait().assert_passed()

    line = _notified(subscriber, "yes", "1/0")
    assert line.split()[3] == "active", line
    message, audio = _the_new_message(core)
    stored = core.data / message.path
    assert SPOKEN_SECONDS - 1.0 <= message.seconds <= SPOKEN_SECONDS + 2.0, message
    stored_score = best_correlation(np.asarray(audio), said[4000:20000])
    assert stored_score > 0.6, f"the stored message is not what was said: {stored_score:.3f}"

    assert vm.mailroom.arrived.wait(30.0), "no e-mail arrived at the SMTP server"
    (letter,) = vm.mailroom.letters
    assert letter["To"] == EMAIL and OWNER in letter["Subject"], letter
    (attached,) = list(letter.iter_attachments())
    assert attached.get_content_type() == "audio/ogg"
    assert attached.get_content() == stored.read_bytes()

    with RtpEndpoint() as rtp:
        owner = vm.caller(rtp, OWNER, OWNER_PASSWORD, "*97")
        rtp.wait_packets(lambda p: p.payload_type == 0, 20, timeout=15.0)  # "password"
        rtp.send_digits(PIN + "#", payload_type=DTMF_PT)
        mark = rtp.mark()
        before = pack_seconds("vm-youhave", "digits/1", "vm-INBOX", "vm-message",
                              "vm-message", "digits/1")  # fmt: skip
        frames = int((before + SPOKEN_SECONDS) * 50) + 50
        played = decoded(rtp.wait_packets(lambda p: p.payload_type == 0, frames, since=mark,
                                          timeout=40.0))  # fmt: skip
        heard_score = best_correlation(played, said[4000:20000])
        assert heard_score > 0.6, f"the message played is not what was left: {heard_score:.3f}"
        assert best_correlation(played, _pack("vm-youhave")) > 0.9, "no 'you have' heard"
        rtp.send_digits("7", payload_type=DTMF_PT)
        owner.wait().assert_passed()  # deleted, "no more messages", goodbye, BYE

    line = _notified(subscriber, "no", "0/0")
    run = subscriber.wait()
    run.assert_passed()
    last = run.requests("NOTIFY")[-1]
    assert last.one("Subscription-State").startswith("terminated"), str(last)
    assert not stored.exists(), "the deleted message's file is still there"
    rows = wait_cdrs(core.data, lambda r: len(r) >= 2, 10.0)
    assert rows[0]["disposition"] == "answered", rows[0]


def test_no_answer_greeting_message_mwi_and_email(vm: Voicemail) -> None:
    core = vm.office.core
    core.cli("config", "set", "calls.ring_timeout", str(RING_SECONDS))
    subscriber = vm.subscriber()
    subscriber.wait_stderr(lambda line: line.startswith("mwi-subscribed"))
    _notified(subscriber, "no", "0/0 active")

    rings = vm.office.callee("call_uas_ring.xml", rtp=False, timeout=TIMEOUT)  # 180, no answer
    with RtpEndpoint() as rtp:
        caller = vm.caller(rtp, CALLER, CALLER_PASSWORD, OWNER)
        _wait_for(rtp, _pack("beep"), since=0)  # the greeting's end: speak now
        greeting_end = rtp.mark()
        rtp.send_audio(ulaw_tone(TONE_HZ, TONE_SECONDS))
        rtp.send_digits("#", payload_type=DTMF_PT)
        called = caller.wait()  # "message saved", goodbye, the box's BYE
        called.assert_passed()
        heard = decoded(rtp.packets.items[:greeting_end])
        after = decoded(rtp.packets.items[greeting_end:])
    for prompt in ("vm-theperson", "digits/1", "digits/0", "digits/2", "vm-isunavail", "vm-intro"):
        score = best_correlation(heard, _pack(prompt))
        assert score > 0.9, f"the no-answer greeting lacks {prompt}: {score:.3f}"
    busy_score = best_correlation(heard, _pack("vm-isonphone"))
    assert busy_score < 0.5, f"the no-answer greeting says 'is on the phone': {busy_score:.3f}"
    saved_score = best_correlation(after, _pack("vm-msgsaved"))
    assert saved_score > 0.9, f"'message saved' was not heard: {saved_score:.3f}"

    ringing = rings.wait()
    ringing.assert_passed()  # 180, then the box's CANCEL, 487, ACK
    rung = _only(ringing.requests("INVITE"), ringing)
    cancel = _only(ringing.requests("CANCEL"), ringing)
    rang_for = ringing.time_of(cancel) - ringing.time_of(rung)
    assert RING_SECONDS - 0.5 <= rang_for <= RING_SECONDS + 3.0, f"CANCEL after {rang_for:.2f} s"
    assert statuses(called.responses_to("INVITE", 2)) == [100, 180, 200], called.describe()
    invite = called.requests("INVITE", "sent")[-1]
    answer = next(m for m in called.responses_to("INVITE", 2) if m.status == 200)
    answered_after = called.time_of(answer) - called.time_of(invite)
    assert RING_SECONDS - 0.5 <= answered_after <= RING_SECONDS + 3.0, (
        f"voicemail answered after {answered_after:.2f} s, expected about {RING_SECONDS} s"
    )

    line = _notified(subscriber, "yes", "1/0")
    assert line.split()[3] == "active", line
    message, audio = _the_new_message(core)
    rate = 8000
    stored = core.data / message.path
    assert TONE_SECONDS - 0.5 <= message.seconds <= TONE_SECONDS + 1.0, message
    assert abs(len(audio) / rate - message.seconds) < 0.1, (len(audio) / rate, message)
    spectrum = np.abs(np.fft.rfft(audio))
    peak = float(np.argmax(spectrum)) * rate / len(audio)
    assert abs(peak - TONE_HZ) < 15.0, f"the stored message's tone is {peak:.0f} Hz"
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
    loud = float(np.sum(np.sqrt(np.mean(frames**2, axis=1)) > 0.05)) / 50
    assert TONE_SECONDS - 0.5 <= loud <= TONE_SECONDS + 0.2, f"{loud:.2f} s of tone stored"

    assert vm.mailroom.arrived.wait(30.0), "no e-mail arrived at the SMTP server"
    (letter,) = vm.mailroom.letters
    assert letter["To"] == EMAIL and OWNER in letter["Subject"], letter
    (attached,) = list(letter.iter_attachments())
    assert attached.get_content() == stored.read_bytes()

    (row,) = wait_cdrs(core.data, lambda r: len(r) >= 1, 10.0)
    assert (row["disposition"], row["answered_by"]) == ("answered", None), row
    assert row["hangup_cause"] == f"voicemail left for {OWNER}", row
    assert RING_SECONDS - 0.5 <= row["answered_at"] - row["started_at"] <= RING_SECONDS + 3.0, row


def _only(messages: list[SipMessage], run: SippRun) -> SipMessage:
    assert len(messages) == 1, run.describe()
    return messages[0]


def _wait_for(rtp: RtpEndpoint, prompt: npt.NDArray[np.float64], since: int) -> None:
    """Return once the audio the box sent (from packet `since`) holds `prompt` (polled on what
    arrived, every few packets, within a bounded time)."""
    deadline = time.monotonic() + 30.0
    got = since
    while time.monotonic() < deadline:
        rtp.wait_packets(lambda p: p.payload_type == 0, 5, since=got, timeout=30.0)
        got = rtp.mark()
        if best_correlation(decoded(rtp.packets.items[since:got]), prompt) > 0.9:
            return
    raise AssertionError("the box never played the prompt awaited")


def _pack(name: str) -> npt.NDArray[np.float64]:
    data, _rate = soundfile.read(PACK / f"{name}.wav", dtype="float64")
    return np.asarray(data, dtype=np.float64)
