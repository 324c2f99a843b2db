"""The registrar (RFC 3261 §10.3) as sipp, a real UAC on loopback, sees it through `pbx run`.

Every test starts the core (fixture `core`, MD5 offered first for sipp), runs one or more sipp
instances each on its own port, and checks three things: the status codes sipp received, the
headers of those responses (the Contact list of a 200 with its expires values), and what the
box kept: the `registrations` table of its SQLite file and the output of `pbx status`.
"""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CoreProcess
from tests.interop.sipp import (
    SipMessage,
    SippRun,
    Transport,
    credentials,
    free_port,
    run_sipp,
)

AOR = "101"
SLACK = 15.0
"""Seconds a test may take between the registrar answering and the test reading the store."""


@dataclass(frozen=True, slots=True)
class Binding:
    """One row of the `registrations` table that has not expired."""

    aor: str
    contact: str
    expires_in: float
    call_id: str
    cseq: int
    transport: str
    source: str
    user_agent: str


@dataclass(frozen=True, slots=True)
class StatusLine:
    """One registration as `pbx status` prints it."""

    aor: str
    contact: str
    source: str
    expires_in: int
    user_agent: str


_STATUS_LINE = re.compile(
    r"^\s*(?P<aor>\S+)  (?P<contact>\S+)  via (?P<source>.+?)  "
    r"expires in (?P<expires>-?\d+) s\s*(?P<ua>.*)$"
)


@dataclass
class Box:
    """The core under test plus a way to point sipp at it."""

    core: CoreProcess
    workdir: Path

    def sipp(
        self, scenario: str, rows: list[list[str | int]], *, port: int,
        transport: Transport = "u1",
    ) -> SippRun:  # fmt: skip
        return run_sipp(
            scenario, (self.core.host, self.core.port), rows, workdir=self.workdir, port=port,
            transport=transport,
        )  # fmt: skip

    def register(
        self, user: str, password: str, expires: int, *, port: int, transport: Transport = "u1"
    ) -> SippRun:
        """REGISTER `user` from 127.0.0.1:`port` with `register.xml`; it must end with a 200."""
        run = self.sipp(
            "register.xml", [[user, credentials(user, password), expires]], port=port,
            transport=transport,
        )  # fmt: skip
        run.assert_passed()
        assert run.statuses == [401, 200], run.describe()
        return run

    def bindings(self, aor: str | None = None) -> list[Binding]:
        """Unexpired bindings in the box's database, read through a read-only connection."""
        uri = f"file:{self.core.data / 'pbx.sqlite3'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            rows = conn.execute(
                "SELECT aor, contact, expires_at, call_id, cseq, transport, source, user_agent"
                " FROM registrations WHERE expires_at > ? ORDER BY registered_at",
                (time.time(),),
            ).fetchall()
        now = time.time()
        found = [
            Binding(r[0], r[1], float(r[2]) - now, r[3], int(r[4]), r[5], r[6], r[7]) for r in rows
        ]
        return [b for b in found if aor is None or b.aor == aor]

    def status(self) -> list[StatusLine]:
        """The registrations `pbx status` reports (and it must say the core is running)."""
        out = self.core.cli("status").stdout
        lines = out.splitlines()
        assert lines[0].startswith("core: running"), out
        count_line = next(line for line in lines if line.startswith("registrations: "))
        entries = []
        for line in lines[lines.index(count_line) + 1 :]:
            if line.startswith("calls: "):
                break
            match = _STATUS_LINE.match(line)
            assert match, f"unexpected status line {line!r} in\n{out}"
            entries.append(
                StatusLine(
                    match["aor"], match["contact"], match["source"], int(match["expires"]),
                    match["ua"],
                )
            )  # fmt: skip
        assert int(count_line.split()[1]) == len(entries), out
        return entries


@pytest.fixture
def box(core: CoreProcess, tmp_path: Path) -> Box:
    return Box(core, tmp_path / "sipp")


def contact_of(port: int, transport: str = "UDP", user: str = AOR) -> str:
    """The Contact the scenarios send from 127.0.0.1:`port`."""
    return f"<sip:{user}@127.0.0.1:{port};transport={transport}>"


def listed_contacts(response: SipMessage) -> dict[str, int]:
    """The bindings a 200 lists: each Contact (without its expires) and its expires value."""
    listed: dict[str, int] = {}
    for value in response.all("Contact"):
        match = re.fullmatch(r"(<[^>]*>)(.*)", value)
        assert match, f"Contact {value!r} is not in name-addr form"
        params = dict(
            p.partition("=")[::2] for p in match[2].split(";") if p.strip()
        )  # fmt: skip
        assert "expires" in params, f"Contact {value!r} lacks ;expires="
        assert match[1] not in listed, f"{match[1]} listed twice in\n{response}"
        listed[match[1]] = int(params["expires"])
    return listed


def assert_about(value: float, expected: float, slack: float = SLACK) -> None:
    """`value` is `expected` less at most `slack` seconds gone by (plus rounding)."""
    assert expected - slack <= value <= expected + 1, f"{value} is not about {expected}"


# -- 1. challenge, then 200 with the binding -----------------------------------------------------


def test_register_is_challenged_then_bound(box: Box) -> None:
    password = box.core.add_extension(AOR)
    port = free_port()

    run = box.register(AOR, password, 300, port=port)

    challenge, ok = run.responses
    schemes = challenge.all("WWW-Authenticate")
    assert schemes and schemes[0].startswith('Digest realm="'), challenge
    assert "algorithm=MD5" in schemes[0] and 'qop="auth"' in schemes[0], challenge
    assert ok.start_line == "SIP/2.0 200 OK"
    assert ok.all("Contact") == [f"{contact_of(port)};expires=300"]
    assert ok.one("Date").endswith(" GMT")
    assert ok.one("Call-ID") == run.sent[1].one("Call-ID")

    (binding,) = box.bindings()
    assert (binding.aor, binding.contact) == (AOR, contact_of(port))
    assert_about(binding.expires_in, 300)
    assert binding.call_id == run.sent[1].one("Call-ID")
    assert binding.cseq == 2
    assert binding.transport == "UDP"
    assert binding.source == f"UDP 127.0.0.1:{port}"
    assert binding.user_agent == "sipp"

    (line,) = box.status()
    assert (line.aor, line.contact, line.source) == (AOR, contact_of(port), binding.source)
    assert_about(line.expires_in, 300)
    assert line.user_agent == "sipp"


# -- 2. refresh; two contacts for one AOR ---------------------------------------------------------


def test_refresh_keeps_one_binding_and_updates_its_expiry(box: Box) -> None:
    password = box.core.add_extension(AOR)
    port = free_port()

    run = box.sipp("register_refresh.xml", [[AOR, credentials(AOR, password), 120, 600]], port=port)

    run.assert_passed()
    assert run.statuses == [401, 200, 200]
    first, refresh = run.sent[1], run.sent[2]
    assert refresh.one("Call-ID") == first.one("Call-ID")
    assert (first.one("CSeq"), refresh.one("CSeq")) == ("2 REGISTER", "3 REGISTER")
    assert listed_contacts(run.responses[1]) == {contact_of(port): 120}
    assert listed_contacts(run.responses[2]) == {contact_of(port): 600}

    (binding,) = box.bindings()
    assert binding.contact == contact_of(port)
    assert (binding.call_id, binding.cseq) == (first.one("Call-ID"), 3)
    assert_about(binding.expires_in, 600)
    (line,) = box.status()
    assert line.contact == contact_of(port)
    assert_about(line.expires_in, 600)


def test_second_contact_from_another_port_lists_both_bindings(box: Box) -> None:
    password = box.core.add_extension(AOR)
    port_a, port_b = free_port(), free_port()

    box.register(AOR, password, 300, port=port_a)
    run = box.register(AOR, password, 200, port=port_b)

    listed = listed_contacts(run.final)
    assert set(listed) == {contact_of(port_a), contact_of(port_b)}
    assert_about(listed[contact_of(port_a)], 300)
    assert listed[contact_of(port_b)] == 200

    bindings = {b.contact: b for b in box.bindings(AOR)}
    assert set(bindings) == {contact_of(port_a), contact_of(port_b)}
    assert_about(bindings[contact_of(port_a)].expires_in, 300)
    assert_about(bindings[contact_of(port_b)].expires_in, 200)
    assert bindings[contact_of(port_a)].call_id != bindings[contact_of(port_b)].call_id
    assert {line.contact for line in box.status()} == set(bindings)


# -- 3. unregister one contact --------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario", ["register.xml", "register_contact_expires.xml"], ids=["header", "param"]
)
def test_expires_zero_removes_only_that_contact(box: Box, scenario: str) -> None:
    """`Expires: 0`, or `;expires=0` on the Contact, removes that binding and no other."""
    password = box.core.add_extension(AOR)
    port_a, port_b = free_port(), free_port()
    box.register(AOR, password, 300, port=port_a)
    box.register(AOR, password, 300, port=port_b)

    run = box.sipp(scenario, [[AOR, credentials(AOR, password), 0]], port=port_b)

    run.assert_passed()
    assert run.statuses == [401, 200]
    if scenario == "register_contact_expires.xml":
        assert run.sent[1].one("Contact") == f"{contact_of(port_b)};expires=0"
        assert run.sent[1].all("Expires") == []
    listed = listed_contacts(run.final)
    assert list(listed) == [contact_of(port_a)]
    assert_about(listed[contact_of(port_a)], 300)
    assert [b.contact for b in box.bindings()] == [contact_of(port_a)]
    assert [line.contact for line in box.status()] == [contact_of(port_a)]


# -- 4. Contact: * ---------------------------------------------------------------------------------


def test_star_with_expires_zero_removes_every_binding_of_the_aor(box: Box) -> None:
    password = box.core.add_extension(AOR)
    other_password = box.core.add_extension("102")
    port_a, port_b, port_c, port_d = (free_port() for _ in range(4))
    box.register(AOR, password, 300, port=port_a)
    box.register(AOR, password, 300, port=port_b)
    box.register("102", other_password, 300, port=port_c)
    assert len(box.bindings(AOR)) == 2

    run = box.sipp("unregister_all.xml", [[AOR, credentials(AOR, password)]], port=port_d)

    run.assert_passed()
    assert run.statuses == [401, 200]
    assert run.sent[1].one("Contact") == "*" and run.sent[1].one("Expires") == "0"
    assert run.final.all("Contact") == []
    assert box.bindings(AOR) == []
    assert [b.contact for b in box.bindings()] == [contact_of(port_c, user="102")]
    assert [(line.aor, line.contact) for line in box.status()] == [
        ("102", contact_of(port_c, user="102"))
    ]


@pytest.mark.parametrize("expires", [300, 1])
def test_star_with_nonzero_expires_is_400(box: Box, expires: int) -> None:
    password = box.core.add_extension(AOR)
    port_a, port_b = free_port(), free_port()
    box.register(AOR, password, 300, port=port_a)

    run = box.sipp(
        "unregister_all_bad_expires.xml", [[AOR, credentials(AOR, password), expires]],
        port=port_b,
    )  # fmt: skip

    run.assert_passed()
    assert run.statuses == [401, 400]
    assert run.final.start_line.startswith("SIP/2.0 400 ")
    assert [b.contact for b in box.bindings()] == [contact_of(port_a)]
    assert len(box.status()) == 1


# -- 5. Min-Expires -------------------------------------------------------------------------------


@pytest.mark.parametrize("expires", [1, 59])
def test_expires_below_min_expires_is_423(box: Box, expires: int) -> None:
    password = box.core.add_extension(AOR)
    port_a, port_b = free_port(), free_port()
    box.register(AOR, password, 300, port=port_a)

    run = box.sipp(
        "register_interval_too_brief.xml", [[AOR, credentials(AOR, password), expires]],
        port=port_b,
    )  # fmt: skip

    run.assert_passed()
    assert run.statuses == [401, 423]
    assert run.final.start_line == "SIP/2.0 423 Interval Too Brief"
    assert run.final.one("Min-Expires") == "60"
    bindings = box.bindings()
    assert [b.contact for b in bindings] == [contact_of(port_a)]
    assert_about(bindings[0].expires_in, 300)
    assert [line.contact for line in box.status()] == [contact_of(port_a)]


def test_expires_equal_to_min_expires_is_accepted(box: Box) -> None:
    password = box.core.add_extension(AOR)
    port = free_port()

    run = box.register(AOR, password, 60, port=port)

    assert listed_contacts(run.final) == {contact_of(port): 60}
    (binding,) = box.bindings()
    assert_about(binding.expires_in, 60)


def test_min_expires_follows_the_setting_of_the_running_core(box: Box) -> None:
    password = box.core.add_extension(AOR)
    box.core.cli("config", "set", "sip.min_expires", "120")

    run = box.sipp(
        "register_interval_too_brief.xml", [[AOR, credentials(AOR, password), 90]],
        port=free_port(),
    )  # fmt: skip

    run.assert_passed()
    assert run.final.one("Min-Expires") == "120"
    assert box.bindings() == []


# -- 6. wrong password ----------------------------------------------------------------------------


def test_wrong_password_gets_403_after_the_challenge_and_binds_nothing(box: Box) -> None:
    password = box.core.add_extension(AOR)
    wrong = credentials(AOR, password + "0")

    run = box.sipp("register_forbidden.xml", [[AOR, wrong, 300]], port=free_port())

    run.assert_passed()
    assert run.statuses == [401, 403]
    assert run.sent[1].one("Authorization").startswith('Digest username="101"')
    assert run.final.start_line == "SIP/2.0 403 Forbidden"
    assert run.final.all("Contact") == []
    assert run.final.all("WWW-Authenticate") == []
    assert box.bindings() == []
    assert box.status() == []


def test_wrong_password_fails_the_plain_register_scenario(box: Box) -> None:
    """Seen from `register.xml` (expecting 200), the 403 is the unexpected message."""
    password = box.core.add_extension(AOR)

    run = box.sipp("register.xml", [[AOR, credentials(AOR, password + "0"), 300]], port=free_port())

    assert run.returncode != 0, run.describe()
    assert "SIP/2.0 403 Forbidden" in run.errors, run.describe()
    assert box.bindings() == []


# -- 7. unknown user answered like a wrong password -----------------------------------------------


def masked(response: SipMessage, user: str) -> tuple[str, list[tuple[str, str]], str]:
    """Start line, headers and body with what differs by request masked: tags, branch,
    Call-ID, nonce, Date, and the user's name where the request carried it."""
    headers = []
    for name, raw in response.headers:
        value = "*" if name.lower() in ("call-id", "date") else raw
        value = re.sub(r";tag=[^;>\s]+", ";tag=*", value)
        value = re.sub(r";branch=[^;\s]+", ";branch=*", value)
        value = re.sub(r'nonce="[^"]*"', 'nonce="*"', value)
        value = value.replace(f"sip:{user}@", "sip:USER@")
        headers.append((name, value))
    return response.start_line, headers, response.body


@pytest.mark.parametrize("unknown", ["999", "alice"])
def test_unknown_user_is_answered_exactly_like_a_wrong_password(box: Box, unknown: str) -> None:
    password = box.core.add_extension(AOR)
    port = free_port()

    wrong = box.sipp(
        "register_forbidden.xml", [[AOR, credentials(AOR, password + "0"), 300]], port=port
    )
    stranger = box.sipp(
        "register_forbidden.xml", [[unknown, credentials(unknown, password), 300]], port=port
    )

    for run in (wrong, stranger):
        run.assert_passed()
        assert run.statuses == [401, 403]
        for response in run.responses:
            assert ";tag=" in response.one("To"), response
    assert [masked(r, AOR) for r in wrong.responses] == [
        masked(r, unknown) for r in stranger.responses
    ]
    # Only the masked parts differ: the headers are otherwise byte for byte the same.
    assert wrong.responses[0].one("To") != stranger.responses[0].one("To")
    assert box.bindings() == []
    assert box.status() == []


# -- 8. TCP ---------------------------------------------------------------------------------------


def test_register_over_tcp(box: Box) -> None:
    password = box.core.add_extension(AOR)
    port = free_port()

    run = box.register(AOR, password, 300, port=port, transport="t1")

    assert {m.transport for m in run.messages} == {"TCP"}
    assert run.sent[1].one("Via").startswith("SIP/2.0/TCP ")
    assert run.final.all("Contact") == [f"{contact_of(port, 'TCP')};expires=300"]
    (binding,) = box.bindings()
    assert binding.contact == contact_of(port, "TCP")
    assert binding.transport == "TCP"
    assert binding.source.startswith("TCP 127.0.0.1:")
    assert_about(binding.expires_in, 300)
    (line,) = box.status()
    assert (line.contact, line.source) == (contact_of(port, "TCP"), binding.source)
