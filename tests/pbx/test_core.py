"""The pbx-core process as a whole: hostile input, systemd notification, control socket."""

from __future__ import annotations

import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from appliance import control
from appliance.sip.message import Response, parse
from tests.conftest import READY_PREFIX, CoreProcess
from tests.notify import NotifySocket
from tests.sip.peer import authorization, request_bytes

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sip"


def udp_client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    return sock


def exchange(sock: socket.socket, core: CoreProcess, data: bytes) -> Response:
    sock.sendto(data, (core.host, core.port))
    msg = parse(sock.recv(65536))
    assert isinstance(msg, Response)
    return msg


def mutations(seed: int, count: int) -> list[bytes]:
    """Damaged copies of real captured messages: flips, cuts, insertions of SIP punctuation."""
    rng = random.Random(seed)
    corpus = [p.read_bytes() for p in sorted(FIXTURES.glob("*.sip"))]
    out = []
    for _ in range(count):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            op = rng.randrange(3)
            if op == 0:
                data[i] = rng.randrange(256)
            elif op == 1:
                del data[i : i + rng.randint(1, 40)]
            else:
                data[i:i] = rng.choice([b"\r\n", b":", b"\x00", b",", b'"', b"<", b";", b" "])
        out.append(bytes(data))
    return out


def test_hostile_input_gets_answers_not_tracebacks(core: CoreProcess) -> None:
    sock = udp_client()
    for data in mutations(seed=7, count=2000):
        sock.sendto(data, (core.host, core.port))
    with socket.create_connection((core.host, core.port), timeout=5) as tcp:
        for data in mutations(seed=8, count=200):
            tcp.sendall(data)
    # Still serving: a well-formed OPTIONS (from a fresh socket, whose buffer the answers to
    # the junk cannot fill) is answered.
    probe = udp_client()
    answer = exchange(probe, core, request_bytes("OPTIONS", probe.getsockname()[1]))
    assert (answer.status, answer.cseq.method) == (200, "OPTIONS")
    assert core.stop() == 0
    log = "\n".join(core.output)
    assert "Traceback" not in log
    assert "ERROR" not in log
    assert "Bad Request (" in log  # the junk was answered with reasons


def test_unknown_user_is_indistinguishable_from_wrong_password(core: CoreProcess) -> None:
    core.add_extension("101")
    sock = udp_client()
    port = sock.getsockname()[1]

    def attempt(user: str, n: int) -> tuple[Response, Response, float]:
        call_id = f"probe-{user}-{n}"
        challenge = exchange(sock, core, request_bytes("REGISTER", port, branch=f"z9hG4bK-{n}a",
                                                       call_id=call_id, user=user))  # fmt: skip
        auth = authorization(challenge.get_all("WWW-Authenticate")[0], user, "Wrong-pass-123")
        data = request_bytes("REGISTER", port, branch=f"z9hG4bK-{n}b", cseq=2,
                             extra=f"Authorization: {auth}\r\n", call_id=call_id,
                             user=user)  # fmt: skip
        start = time.perf_counter()
        answer = exchange(sock, core, data)
        return challenge, answer, time.perf_counter() - start

    def shape(r: Response) -> list[tuple[str, str]]:
        masked = {"to": "tag", "www-authenticate": "nonce", "call-id": "", "via": "", "from": "",
                  "date": ""}  # fmt: skip
        return [(h.name, h.value if h.key not in masked else h.key) for h in r.headers]

    timings: dict[str, list[float]] = {"101": [], "999": []}
    for n in range(300):
        for user in ("101", "999") if n % 2 else ("999", "101"):
            challenge, answer, elapsed = attempt(user, n)
            timings[user].append(elapsed)
            assert (challenge.status, answer.status) == (401, 403)
            assert answer.reason == "Forbidden"
            if n == 0:
                assert shape(answer) == shape(attempt("999" if user == "101" else "101", 999)[1])
                assert shape(challenge)[:-1] == shape(attempt("999", 998)[0])[:-1]
    known, unknown = statistics.median(timings["101"]), statistics.median(timings["999"])
    # Same code path: medians within 25% of each other (loopback round trips of ~0.2 ms).
    assert abs(known - unknown) <= 0.25 * max(known, unknown), (known, unknown)


def test_systemd_notification_and_watchdog(tmp_path: Path) -> None:
    with NotifySocket(tmp_path / "notify.sock", timeout=10) as notify:
        env = {**os.environ, **notify.env, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "--data", str(tmp_path / "var"), "run", "--sip",
             "127.0.0.1:0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            assert [notify.recv() for _ in range(3)] == ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]
            # A restart over the control socket is a reload to systemd, not a stop: after
            # STOPPING=1 systemd would wait for the process to exit and kill it at the timeout.
            assert control.call(tmp_path / "var", "restart")["restarting"] is True
            reloading = notify.next_state().split("\n")
            assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
            assert 0 < int(reloading[1].partition("=")[2]) <= time.monotonic_ns() // 1000
            assert notify.next_state() == "READY=1"  # the same process, started again
            proc.terminate()
            assert notify.next_state() == "STOPPING=1"
            assert proc.wait(timeout=10) == 0
            assert proc.stdout is not None
            assert READY_PREFIX in proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_control_socket_status_and_errors(core: CoreProcess) -> None:
    status = control.call(core.data, "status")
    assert status["sip"] == f"{core.host}:{core.port}"
    assert status["registrations"] == [] and status["calls"] == []
    try:
        control.call(core.data, "frobnicate")
    except control.ControlError as exc:
        assert "unknown command" in str(exc)
    else:
        raise AssertionError("unknown command accepted")
    core.stop()
    try:
        control.call(core.data, "status")
    except control.ControlError as exc:
        assert "the core is not running" in str(exc)
    else:
        raise AssertionError("status answered by a stopped core")


def test_cli_changes_apply_to_the_running_core(core: CoreProcess) -> None:
    sock = udp_client()
    port = sock.getsockname()[1]
    n = 0

    def register(user: str, password: str) -> int:
        nonlocal n
        n += 1
        contact = f"Contact: <sip:{user}@127.0.0.1:{port}>\r\n"
        challenge = exchange(
            sock,
            core,
            request_bytes(
                "REGISTER", port, branch=f"z9hG4bK-c{n}a", call_id=f"c{n}", user=user, extra=contact
            ),
        )
        auth = authorization(challenge.get_all("WWW-Authenticate")[0], user, password)
        return exchange(sock, core, request_bytes(
            "REGISTER", port, branch=f"z9hG4bK-c{n}b", call_id=f"c{n}", cseq=2, user=user,
            extra=f"Authorization: {auth}\r\n{contact}")).status  # fmt: skip

    old = core.add_extension("101")
    assert register("101", old) == 200
    new = core.cli("ext", "passwd", "101").stdout.split()[-1]
    assert register("101", old) == 403
    assert register("101", new) == 200
    assert "registrations: 1" in core.cli("status").stdout
    core.cli("ext", "remove", "101")
    assert "registrations: 0" in core.cli("status").stdout
    assert register("101", new) == 403


def test_a_wildcard_listen_address_is_never_advertised() -> None:
    """Bound to 0.0.0.0, the core must still tell phones (SDP, Via, Contact) an address they
    can send to: the one the default route leaves by."""
    from appliance.pbx.core import advertised_address

    assert advertised_address("10.1.2.3") == "10.1.2.3"
    chosen = advertised_address("0.0.0.0")
    assert chosen not in ("0.0.0.0", "")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((chosen, 0))  # an address of this machine
