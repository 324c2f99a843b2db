"""SIP over TLS and SRTP (SDES) through the box, against real peers: a PJSIP phone on TLS with
mandatory SRTP calls a sipp phone on plain UDP and RTP, and the box terminates SRTP on the
PJSIP leg (issue 13, item 4).

Extension 101 (PJSIP) has `media_encryption required`; 102 (sipp, UDP) `none`. The sipp side's
media is a socket of the test (:class:`RtpEndpoint`) that streams a 1 kHz tone; PJSIP plays
440 Hz and records what it decodes. What is asserted:
- audio both ways, by decoded tones: 440 Hz in the plain RTP the box sends the sipp side, 1 kHz
  in PJSIP's recording (decrypted by PJSIP with the box's key);
- the SRTP leg on the wire (a packet socket on `lo`): every packet between the box and PJSIP
  is an RTP header with a payload that is not the plain µ-law of either tone; the box's packets
  authenticate and decrypt with the key of the box's `a=crypto` (read from the 200 OK PJSIP
  received) into the sipp side's tone bytes, and with no other key; PJSIP's decrypt with
  PJSIP's own key into 440 Hz;
- the registration is a TLS binding, and the call went back to PJSIP over it;
- a TLS 1.0 client is refused by the box's TLS port (while the same client completes a TLS 1.0
  handshake with a permissive server: the client really offers TLS 1.0), and a PJSIP phone
  limited to TLS 1.0 (its OpenSSL 1.0.2k) cannot register.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pylibsrtp
import pytest

from appliance import control
from appliance.media.codecs import make_decoder
from tests.conftest import CoreProcess
from tests.interop.capture import Datagram, LoopbackCapture
from tests.interop.pjsip import PjsipPhone, free_rtp_port
from tests.interop.rtp_endpoint import RtpEndpoint
from tests.interop.sipp import (
    AUDIO,
    BackgroundSipp,
    credentials,
    free_media_port,
    free_port,
    run_sipp,
)
from tests.interop.tones import dominant_frequency, read_wav, tone_seconds

PASSWORDS = {"101": "Kq7vT9pLm2", "102": "Zr4wX8nQa6"}
PJSIP_TONE = 440.0
SIPP_TONE = 1000.0
"""The sipp side's tone: `AUDIO["callee.ulaw"]`."""
PACKETS = 100
"""RTP packets (2 s) each way before the call is hung up."""
AUTH_TAG = 10
"""Bytes of authentication tag at the end of an AES_CM_128_HMAC_SHA1_80 packet."""
CRYPTO = re.compile(r"^a=crypto:(\d+) AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]+)", re.M)


@pytest.fixture
def box(core_factory: type[CoreProcess], tmp_path: Path) -> CoreProcess:
    core = core_factory(data=tmp_path / "var")
    core.start()
    assert core.tls_port, core.output
    for number, password in PASSWORDS.items():
        core.cli("ext", "add", number, "--password", password)
    core.cli("ext", "set", "101", "--media-encryption", "required")
    core.cli("ext", "set", "102", "--media-encryption", "none")
    return core


def pcm(payloads: list[bytes]) -> npt.NDArray[np.float64]:
    decoder = make_decoder("PCMU")
    data = b"".join(decoder.decode(p) for p in payloads)
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def srtp_session(key: bytes) -> pylibsrtp.Session:
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))


def rtp_only(datagrams: list[Datagram]) -> list[Datagram]:
    """RTP (version 2, payload type not RTCP's 72-79) among the captured datagrams."""
    return [d for d in datagrams if len(d.payload) > 12 and d.payload[0] >> 6 == 2
            and not 72 <= d.payload[1] & 0x7F <= 79]  # fmt: skip


def test_tls_srtp_phone_calls_a_plain_phone(box: CoreProcess, tmp_path: Path) -> None:
    host = box.host
    sipp_port = free_port()
    run = run_sipp(
        "register.xml", (host, box.port), [["102", credentials("102", PASSWORDS["102"]), 300]],
        workdir=tmp_path, port=sipp_port,
    )  # fmt: skip
    run.assert_passed()
    pj_rtp = free_rtp_port()
    record_dir = tmp_path / "rec"
    record_dir.mkdir()
    log = tmp_path / "pjsua-101.log"
    with (
        RtpEndpoint() as rtp,
        BackgroundSipp(
            "pj_uas_answer.xml", (host, box.port), [["102", "", rtp.port, "", 1000]],
            workdir=tmp_path, port=sipp_port, media_port=free_media_port(), timeout=60,
        ) as sipp,
        LoopbackCapture(pj_rtp) as capture,
        PjsipPhone(
            f"{host}:{box.tls_port}", "101", PASSWORDS["101"], local_port=free_port(),
            rtp_port=pj_rtp, tone=int(PJSIP_TONE), record_dir=record_dir, stderr_path=log,
            tls=True, srtp="mandatory",
        ) as phone,
    ):  # fmt: skip
        phone.wait_registered()
        bindings = control.call(box.data, "status")["registrations"]
        assert [(b["aor"], b["transport"], b["source"].split()[0]) for b in bindings
                if b["aor"] == "101"] == [("101", "TLS", "TLS")], bindings  # fmt: skip
        call = phone.place_call(f"sip:102@{host}:{box.tls_port};transport=tls")
        ok = phone.wait_rx(call, "INVITE", role="uac", timeout=20)
        assert ok["status"] == 200, ok
        answer = ok["message"]
        assert re.search(r"^m=audio \d+ RTP/SAVP ", answer, re.M), answer
        assert re.search(r"^Contact: <sip:pbx@[^>]*;transport=tls>", answer, re.M), answer
        assert re.search(r"^Via: SIP/2.0/TLS ", answer, re.M), answer
        box_crypto = CRYPTO.search(answer)
        assert box_crypto is not None, answer
        phone.wait_state(call, "CONFIRMED")
        rtp.start((host, sipp.wait_media_port()), audio=AUDIO["callee.ulaw"])

        # PJSIP -> box (SRTP, decrypted) -> sipp side (plain RTP): PJSIP's tone.
        heard = rtp.wait_packets(lambda p: p.payload_type == 0, PACKETS, timeout=20)
        freq = dominant_frequency(pcm([p.payload for p in heard[10:]]), 8000)
        assert abs(freq - PJSIP_TONE) < 10, freq
        # sipp side -> box (plain) -> PJSIP (SRTP): PJSIP decrypts and decodes it.
        event = phone.wait_rtp(call, PACKETS, timeout=20)
        assert event["event"] == "rtp", event
        mark = phone.mark()
        phone.send(f"hangup {call}")
        phone.wait_state(call, "DISCONNECTED", since=mark)
        to_phone = rtp_only(capture.datagrams(dst_port=pj_rtp))
        from_phone = rtp_only(capture.datagrams(src_port=pj_rtp))
    sipp.wait().assert_passed()

    recording = read_wav(next(record_dir.glob("*.wav")))
    assert tone_seconds(recording, SIPP_TONE) >= 1.0, recording.seconds

    # The SRTP leg on the wire: not plain RTP either way.
    assert len(to_phone) >= PACKETS and len(from_phone) >= PACKETS, (
        len(to_phone), len(from_phone))  # fmt: skip
    tone_bytes = AUDIO["callee.ulaw"] * 2
    for datagram in to_phone:
        payload = datagram.payload[12:-AUTH_TAG]
        assert len(payload) == 160, len(datagram.payload)
        assert payload not in tone_bytes  # the sipp side's tone is not there in clear
    # PJSIP's packets read as µ-law are noise, not its 440 Hz tone.
    raw = pcm([d.payload[12:-AUTH_TAG] for d in from_phone[10:]])
    assert abs(dominant_frequency(raw, 8000) - PJSIP_TONE) > 50

    # The box's packets authenticate with the box's key, and decrypt into the sipp side's tone.
    box_key = base64.b64decode(box_crypto.group(2))
    session = srtp_session(box_key)
    plain = [session.unprotect(d.payload) for d in to_phone]
    assert all(p[12:] in tone_bytes for p in plain[5:]), "decrypted payload is not the tone"
    stranger = srtp_session(bytes(30))
    with pytest.raises(pylibsrtp.Error):
        stranger.unprotect(to_phone[-1].payload)
    # PJSIP's packets decrypt with PJSIP's own key (its offer's a=crypto of the chosen tag).
    tag = box_crypto.group(1)
    offered = [
        k for t, k in CRYPTO.findall(log.read_text()) if t == tag and k != box_crypto.group(2)
    ]
    assert offered, "PJSIP's a=crypto not found in its log"
    session = srtp_session(base64.b64decode(offered[0]))
    decrypted = [session.unprotect(d.payload)[12:] for d in from_phone]
    assert abs(dominant_frequency(pcm(decrypted[10:]), 8000) - PJSIP_TONE) < 10


@pytest.fixture
def tls10_server() -> Iterator[int]:
    """A permissive TLS server on loopback (TLS 1.0 allowed, any cipher) with the box's own
    kind of certificate: the control that shows the client below really speaks TLS 1.0."""
    from appliance.certs import certificate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    import tempfile

    with tempfile.TemporaryDirectory() as data:
        cert, key = certificate(Path(data))
        context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            with context.wrap_socket(conn, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    listener.close()
    thread.join(timeout=10)


def tls10_handshake(port: int) -> str:
    """A TLS 1.0-only client's handshake with 127.0.0.1:`port`; the version agreed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        context.wrap_socket(sock) as tls,
    ):
        return str(tls.version())


def test_tls10_client_is_refused(box: CoreProcess, tls10_server: int) -> None:
    assert tls10_handshake(tls10_server) == "TLSv1"  # the client can do TLS 1.0 ...
    started = time.monotonic()
    # ... and the box refuses it: an alert, or the connection closed in the handshake
    with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|EOF"):
        tls10_handshake(box.tls_port)
    assert time.monotonic() - started < 5
    # The box still serves TLS 1.2 on that port afterwards.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", box.tls_port), timeout=10) as sock,
        context.wrap_socket(sock) as tls,
    ):
        assert tls.version() == "TLSv1.2"
        cipher = tls.cipher()
        assert cipher is not None and cipher[0].startswith("ECDHE-") and "GCM" in cipher[0]
    assert not [line for line in box.output if "Traceback" in line], box.output


def test_a_tls10_pjsip_phone_cannot_register(box: CoreProcess, tmp_path: Path) -> None:
    """A real old client: PJSIP's own OpenSSL 1.0.2k limited to TLS 1.0 gets no binding."""
    with PjsipPhone(
        f"{box.host}:{box.tls_port}", "101", PASSWORDS["101"], local_port=free_port(),
        rtp_port=free_rtp_port(), tone=0, stderr_path=tmp_path / "pjsua-tls10.log", tls=True,
        tls_method="tlsv1",
    ) as phone:  # fmt: skip
        event = phone.wait_event(lambda e: e["event"] == "reg", timeout=20)
        assert event["code"] != 200, event
    assert "101" not in repr(control.call(box.data, "status")["registrations"])
