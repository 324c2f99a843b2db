"""bench/trunks: its reading of the signalling on a capture whose answers are known, its bars,
then a smoke run.

The smoke run (`bench/trunks --quick`) makes real inbound calls from a sipp "PSTN" caller
through a real Kamailio provider and a real `pbx run` to a sipp extension, and times the dial
plan in process; it checks that the figures are sane, not that they meet the issue's bars:
benchmarks measure, tests don't time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import pcap
from bench.calls_bench import SippFigures
from bench.trunks_bench import (
    ConcurrencyStep,
    Delays,
    LookupRow,
    RateStep,
    Result,
    analyse_trunk_setup,
    caller_key,
    read_trunk_signalling,
)
from tests.bench.smoke import assert_cleaned_up, run_quick

LO = "127.0.0.1"
BOX, PROVIDER, CALLEE, PSTN = 5080, 5090, 5100, 5110


def sip(start: str, headers: list[tuple[str, str]], body: str = "") -> bytes:
    lines = [start, *(f"{n}: {v}" for n, v in headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def sdp(port: int) -> str:
    lines = ["v=0", f"o=- 1 1 IN IP4 {LO}", "s=-", f"c=IN IP4 {LO}", "t=0 0"]
    return "\r\n".join([*lines, f"m=audio {port} RTP/AVP 0", ""])


def packet(t: float, src: int, dst: int, payload: bytes) -> pcap.Datagram:
    return pcap.Datagram(t, (LO, src), (LO, dst), payload)


def inbound_call(
    t: float, caller: str, call_id: str, a_port: int, b_port: int
) -> list[pcap.Datagram]:
    """A PSTN call to a DID as the box's and the provider's ports see it: the PSTN INVITE at
    the provider at t - 1 ms, the provider's INVITE to the box at t (and a retransmission), the
    box's INVITE to the extension 2 ms later, 180 and 200 from the extension relayed by the box
    0.5 and 1 ms later, the provider's 180 to the PSTN caller, the caller's BYE at t + 5 s."""
    pstn = [("Call-ID", call_id), ("From", f"<sip:{caller}@{LO}>;tag=p"), ("To", "<sip:7495@x>"),
            ("CSeq", "1 INVITE")]  # fmt: skip
    answered = [(n, v + ";tag=b" if n == "To" else v) for n, v in pstn]
    box = [("Call-ID", f"box-{call_id}"), ("From", f'"DID: +{caller}" <sip:+{caller}@{LO}>;tag=x'),
           ("To", "<sip:101@x>"), ("CSeq", "1 INVITE")]  # fmt: skip
    ext = [(n, v + ";tag=e" if n == "To" else v) for n, v in box]
    invite = sip("INVITE sip:office1@x SIP/2.0", pstn, sdp(1))
    return [
        packet(t - 0.001, PSTN, PROVIDER, sip("INVITE sip:7495@x SIP/2.0", pstn, sdp(1))),
        packet(t, PROVIDER, BOX, invite),
        packet(t + 0.0005, BOX, PROVIDER, sip("SIP/2.0 100 Trying", pstn)),
        packet(t + 0.001, PROVIDER, BOX, invite),  # a retransmission: not a new call
        packet(t + 0.002, BOX, CALLEE, sip("INVITE sip:101@y SIP/2.0", box, sdp(b_port))),
        packet(t + 0.010, CALLEE, BOX, sip("SIP/2.0 180 Ringing", ext)),
        packet(t + 0.0105, BOX, PROVIDER, sip("SIP/2.0 180 Ringing", answered)),
        packet(t + 0.011, PROVIDER, PSTN, sip("SIP/2.0 180 Ringing", answered)),
        packet(t + 0.020, CALLEE, BOX, sip("SIP/2.0 200 OK", ext, sdp(2))),
        packet(t + 0.021, BOX, PROVIDER, sip("SIP/2.0 200 OK", answered, sdp(a_port))),
        packet(t + 5.0, PROVIDER, BOX, sip("BYE sip:office1@x SIP/2.0",
                                           [*answered[:3], ("CSeq", "2 BYE")])),
        packet(t + 5.001, BOX, PROVIDER, sip("SIP/2.0 200 OK", [*answered[:3], ("CSeq", "2 BYE")])),
    ]  # fmt: skip


def test_the_delays_through_the_box_pair_each_call_by_its_caller() -> None:
    datagrams = inbound_call(10.0, "74990000001", "c1", 22000, 22002)
    datagrams += inbound_call(10.3, "74990000002", "c2", 22004, 22006)
    datagrams += inbound_call(11.0, "74990000003", "c3", 22008, 22010)
    datagrams.sort(key=lambda d: d.time)
    sig = read_trunk_signalling(datagrams, BOX, PROVIDER, CALLEE, PSTN)
    assert [(i, o) for _, _, i, o in sig.matched()] == [
        ("c1", "box-c1"), ("c2", "box-c2"), ("c3", "box-c3")
    ]  # fmt: skip
    assert sig.media_pairs() == {
        22000: 22002, 22002: 22000, 22004: 22006, 22006: 22004, 22008: 22010, 22010: 22008
    }  # fmt: skip
    assert sig.media_ends()[22000] == pytest.approx(15.0)
    fig = analyse_trunk_setup(sig)
    assert (fig.invites_in, fig.invites_out, fig.answered) == (3, 3, 3)
    assert fig.invite.n == fig.ringing.n == fig.answer.n == fig.ringback.n == 3
    assert fig.invite.p50_ms == pytest.approx(2.0, abs=0.01)
    assert fig.ringing.p99_ms == pytest.approx(0.5, abs=0.01)
    assert fig.answer.max_ms == pytest.approx(1.0, abs=0.01)
    assert fig.ringback.p50_ms == pytest.approx(12.0, abs=0.01)
    assert fig.first_invite == 10.0 and fig.last_invite == 11.0
    late = analyse_trunk_setup(sig, since=10.2)
    assert late.invites_in == 3 and late.invite.n == late.ringing.n == 2


def test_the_caller_is_keyed_by_its_last_ten_digits_as_provider_and_box_write_it() -> None:
    assert caller_key("<sip:74990000001@127.0.0.1>;tag=1") == "4990000001"
    assert caller_key('"Main: +74990000001" <sip:+74990000001@127.0.0.1>') == "4990000001"
    assert caller_key("<sip:anonymous@x>") == ""


def rate(offered: int, successful: int, achieved: float, peak: float, pdd_ms: float) -> RateStep:
    step = RateStep(offered, 15.0, 5.0, SippFigures(count=100, successful=successful))
    step.achieved_rate, step.core_cpu_peak_pct = achieved, peak
    step.setup.invite.p99_ms = pdd_ms
    return step


def test_the_bars_read_the_steps_they_are_about() -> None:
    result = Result(machine={}, config={})
    assert result.rate_bar() is None and result.best_rate() is None
    result.rates = [rate(10, 100, 10.0, 10, 3), rate(25, 100, 25.0, 30, 5)]
    assert result.rate_bar() is None  # no step reached 50/s
    result.rates.append(rate(50, 100, 49.0, 60, 20))
    result.rates.append(rate(75, 100, 75.0, 80, 150))  # calls queue in the box
    result.rates.append(rate(100, 90, 70.0, 99, 900))
    assert result.rate_bar() is True
    assert result.best_rate() is result.rates[3]
    assert result.best_clean_rate() is result.rates[2]
    result.rates[2].sipp.retransmissions = 3
    assert result.best_clean_rate() is result.rates[1]
    result.rates[1].core_cpu_peak_pct = 95  # passed, but the core had no CPU left
    assert result.rate_bar() is False
    result.rates[1].core_wait_pct = 30  # ... while others used its CPU: decides nothing
    assert result.rate_bar() is None

    assert result.pdd_bar() is None
    step = ConcurrencyStep(50, 12.0, 5)
    step.setup.invite = Delays(201, 1.2, 6.0, 9.0)
    result.concurrency = [ConcurrencyStep(20, 12.0, 5), step]
    assert result.pdd_bar() is False
    step.relay.core_wait_pct = 20
    assert result.pdd_bar() is None
    step.setup.invite.p99_ms = 3.0
    assert result.pdd_bar() is True
    result.lookups = [
        LookupRow(dids, routes, 3 * routes, did_origin_us=1.0 + dids / 10_000,
                  did_resolve_us=0.5, out_last_us=2.0 * routes, table_last_us=1.0)
        for routes in (1, 100) for dids in (10, 10_000)
    ]  # fmt: skip
    scaling = result.scaling()
    assert scaling["did_origin"] == pytest.approx(2.0 / 1.001)
    assert scaling["out_last"] == pytest.approx(100.0)  # a linear search shows
    assert scaling["table_last"] == pytest.approx(1.0)


@pytest.mark.timeout(540)
def test_quick_trunks_bench(tmp_path: Path) -> None:
    # About 35 s; more when the bench first installs tcpdump with apt-get (up to 3 x 150 s).
    stdout, figures = run_quick("trunks", tmp_path, timeout=500)
    assert "PDD through the box" in stdout
    assert "highest setup rate with < 1% failures" in stdout
    assert "bar: dial-plan lookup" in stdout

    [step] = figures["concurrency"]
    assert step["calls"] == 5
    assert step["failures_pct"] < 1.0, step["sipp"]
    assert step["sipp"]["successful"] == 15
    assert 1 <= step["calls_in_box"] <= 7
    assert 0 < step["cpu_s_per_call_s"] < 1
    setup = step["setup"]
    assert setup["invites_in"] == setup["invites_out"] == setup["answered"] == 15
    invite = setup["invite"]
    assert invite["n"] >= 5  # the calls started with 5 up
    assert 0 < invite["p50_ms"] <= invite["p99_ms"] <= invite["max_ms"] < 5000
    for delays in ("ringing", "answer", "ringback"):
        assert setup[delays]["n"] == invite["n"], setup
        assert 0 < setup[delays]["p50_ms"] <= setup[delays]["max_ms"] < 5000, setup
    relay = step["relay"]
    assert relay["streams_paired"] >= 8  # 5 calls, both ways, in the capture window
    assert relay["packets_in"] >= 300
    assert 0 <= relay["lost"] <= relay["packets_in"]
    cdr = step["cdr"]
    assert cdr["records"] == cdr["answered"] == 15
    assert step["calls_left"] == 0

    [rate_step] = figures["rates"]
    assert rate_step["offered_rate"] == 10 and rate_step["passed"], rate_step
    assert rate_step["sipp"]["successful"] == 30
    assert rate_step["setup"]["invites_in"] == rate_step["setup"]["invite"]["n"] == 30
    assert rate_step["peak_calls_in_box"] >= 5  # 10/s held 2 s
    assert rate_step["calls_left"] == 0 and rate_step["core_cpu_pct"] > 0
    assert rate_step["cdr"]["records"] == 30
    assert figures["box_never_the_limit_to_50"] is None  # no step at 50/s in the smoke run
    assert figures["pdd_p99_ms_at_50"] is None

    lookups = figures["lookups"]
    assert [(r["dids"], r["routes"]) for r in lookups] == [
        (d, r) for r in (1, 10) for d in (10, 100, 1000)
    ]  # fmt: skip
    for row in lookups:
        for key in ("did_origin_us", "did_resolve_us", "out_last_us", "table_last_us"):
            assert 0 < row[key] < 10_000, row
    assert set(figures["lookup_scaling"]) == {"did_origin", "did_resolve", "out_last", "table_last"}
    assert figures["gc_after"]["unreachable"] >= 0, figures["gc_after"]
    reloads = figures["reloads"]  # the running core's reload, with the load's DIDs and 1,000
    assert [r["dids"] for r in reloads] == [20, 1000]
    assert all(0 < r["median_ms"] <= r["max_ms"] < 30_000 for r in reloads), reloads
    machine = figures["machine"]
    assert machine["nproc"] >= 2 and machine["kamailio"] != "unknown"
    # Everything it started (Kamailio, the core, sipps, tcpdumps) is stopped, its data removed.
    assert_cleaned_up(stdout)
