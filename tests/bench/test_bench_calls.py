"""bench/calls: its measuring parts on captures whose answers are known, then a smoke run.

The smoke run (`bench/calls --quick`) makes real calls through a real `pbx run` and checks that
the figures are sane, not that they meet the issue's bars: benchmarks measure, tests don't time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import pcap
from bench.calls_bench import (
    END_MARGIN,
    analyse_relay,
    analyse_setup,
    percentile,
    read_signalling,
)
from tests.bench.smoke import assert_cleaned_up, run_quick

LO = "127.0.0.1"
BOX_SIP, CALLER_SIP, CALLEE_SIP = 5080, 5090, 5100
CALLER_RTP, CALLEE_RTP = 40000, 40010
BOX_RANGE = range(22000, 23000)


def rtp(seq: int, ssrc: int, payload: bytes) -> bytes:
    return bytes([0x80, 0]) + seq.to_bytes(2, "big") + bytes(4) + ssrc.to_bytes(4, "big") + payload


def sip(start: str, headers: list[tuple[str, str]], body: str = "") -> bytes:
    lines = [start, *(f"{n}: {v}" for n, v in headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def sdp(port: int) -> str:
    lines = ["v=0", f"o=- 1 1 IN IP4 {LO}", "s=-", f"c=IN IP4 {LO}", "t=0 0"]
    return "\r\n".join([*lines, f"m=audio {port} RTP/AVP 0", ""])


def call_signalling(
    t: float, caller: str, call_id: str, a_port: int, b_port: int, bye: float
) -> list[pcap.Datagram]:
    """A caller's authenticated INVITE, the box's INVITE 2 ms later, its 200, the caller's BYE."""
    head = [("Call-ID", call_id), ("From", f'"x" <sip:{caller}@{LO}>;tag=1'), ("To", "<sip:9@x>")]
    box_head = [("Call-ID", f"box-{call_id}"), ("From", f'"{caller}" <sip:{caller}@{LO}>;tag=2'),
                ("To", "<sip:9@x>"), ("CSeq", "1 INVITE")]  # fmt: skip
    return [
        pcap.Datagram(t - 0.001, (LO, CALLER_SIP), (LO, BOX_SIP),
                      sip("INVITE sip:9@x SIP/2.0", [*head, ("CSeq", "1 INVITE")], sdp(1))),
        pcap.Datagram(t, (LO, CALLER_SIP), (LO, BOX_SIP), sip(
            "INVITE sip:9@x SIP/2.0",
            [*head, ("CSeq", "2 INVITE"), ("Proxy-Authorization", "Digest x")], sdp(1))),
        pcap.Datagram(t + 0.002, (LO, BOX_SIP), (LO, CALLEE_SIP),
                      sip("INVITE sip:9@y SIP/2.0", box_head, sdp(b_port))),
        pcap.Datagram(t + 0.003, (LO, BOX_SIP), (LO, CALLEE_SIP),  # a retransmission
                      sip("INVITE sip:9@y SIP/2.0", box_head, sdp(b_port))),
        pcap.Datagram(t + 0.010, (LO, BOX_SIP), (LO, CALLER_SIP),
                      sip("SIP/2.0 200 OK", [*head, ("CSeq", "2 INVITE")], sdp(a_port))),
        pcap.Datagram(bye, (LO, CALLER_SIP), (LO, BOX_SIP),
                      sip("BYE sip:9@x SIP/2.0", [*head, ("CSeq", "3 BYE")])),
    ]  # fmt: skip


def relayed_stream(
    src: int, box_in: int, box_out: int, dst: int, *, start: float, first_seq: int, ssrc: int,
    packets: int, transit: dict[int, float | None], tag: bytes,
) -> list[pcap.Datagram]:  # fmt: skip
    """A phone's stream into the box and the box's relay of it (1 ms later unless `transit`
    says otherwise for packet i; None = dropped). Its own SSRC and sequence numbers out."""
    out = []
    for i in range(packets):
        t = start + 0.02 * i
        payload = tag + i.to_bytes(4, "big") + bytes(150)
        out.append(pcap.Datagram(t, (LO, src), (LO, box_in), rtp(first_seq + i, ssrc, payload)))
        delay = transit.get(i, 0.001)
        if delay is not None:
            relay = rtp(9000 + first_seq + i, ssrc ^ 0xFFFF, payload)
            out.append(pcap.Datagram(t + delay, (LO, box_out), (LO, dst), relay))
    return out


def test_relay_matches_every_packet_to_its_relay_even_when_calls_send_the_same_audio(
    tmp_path: Path,
) -> None:
    # Two calls started at the same instant stream the same audio (sipp plays one file to
    # all): only the signalling tells which box port relays to which.
    datagrams = call_signalling(0.5, "100", "c1", 22000, 22002, bye=3.505)
    datagrams += call_signalling(0.5, "101", "c2", 22004, 22006, bye=9.0)
    dropped = {10: None, **{i: None for i in range(130, 200)}}
    streams = [
        # call 1, caller → box 22000 → 22002 → callee: packet 10 dropped, 20 late by 3 ms,
        # nothing relayed from packet 130 (t = 3.2 s) on; the caller's BYE reaches the box at
        # 3.505 s, so only packets 130 … 145 (t <= 3.5 s) count as lost.
        dict(src=CALLER_RTP, box_in=22000, box_out=22002, dst=CALLEE_RTP, first_seq=100,
             ssrc=1, transit={**dropped, 20: 0.004}),
        # call 1, callee → box 22002 → 22000 → caller: all relayed.
        dict(src=CALLEE_RTP, box_in=22002, box_out=22000, dst=CALLER_RTP, first_seq=500,
             ssrc=2, transit={}),
        # call 2, the same audio at the same times as call 1: packets 30 and 31 dropped.
        dict(src=CALLER_RTP, box_in=22004, box_out=22006, dst=CALLEE_RTP, first_seq=100,
             ssrc=3, transit={30: None, 31: None}),
        dict(src=CALLEE_RTP, box_in=22006, box_out=22004, dst=CALLER_RTP, first_seq=500,
             ssrc=4, transit={}),
    ]  # fmt: skip
    for stream in streams:
        tag = b"A" if stream["src"] == CALLER_RTP else b"B"
        datagrams += relayed_stream(**stream, start=0.6, packets=200, tag=tag)  # type: ignore[arg-type]
    datagrams.sort(key=lambda d: d.time)
    path = tmp_path / "calls.pcap"
    pcap.write(path, datagrams)
    captured = list(pcap.read(path))
    assert [(d.src, d.dst, d.payload) for d in captured] == [
        (d.src, d.dst, d.payload) for d in datagrams
    ]

    sig = read_signalling(captured, BOX_SIP, CALLER_SIP, CALLEE_SIP)
    pairs = sig.media_pairs()
    assert pairs == {22000: 22002, 22002: 22000, 22004: 22006, 22006: 22004}
    ends = sig.media_ends()
    assert ends == pytest.approx({22000: 3.505, 22002: 3.505, 22004: 9.0, 22006: 9.0})
    fig = analyse_relay(captured, BOX_RANGE, frozenset({CALLER_RTP, CALLEE_RTP}), pairs, ends)

    # Packets go in at 0.6 + 0.02 i s (i < 200); the capture ends with the last relay at
    # 4.581 s, and packets after 4.581 - END_MARGIN = 4.081 s (i > 174) are not judged.
    def t(i: int) -> float:
        return 0.6 + 0.02 * i

    judged = [i for i in range(200) if t(i) <= 4.581 - END_MARGIN]
    after_bye = [i for i in judged if t(i) > 3.505]  # call 1's caller stream only
    assert len(judged) == 175 and len(after_bye) == 29
    assert fig.streams == fig.streams_paired == 4
    assert fig.streams_ambiguous == fig.streams_unpaired == fig.streams_edge == 0
    assert fig.teardown == len(after_bye)
    assert fig.lost == 1 + len(range(130, 146)) + 2
    assert fig.packets_in == 4 * len(judged) - len(after_bye)
    assert fig.transit_p50_ms == pytest.approx(1.0, abs=0.01)
    assert fig.transit_max_ms == pytest.approx(4.0, abs=0.01)
    assert fig.added_jitter_max_ms == pytest.approx(3.0, abs=0.01)
    assert fig.capture_s == pytest.approx(4.581 - 0.6, abs=0.001)  # its RTP


def test_relay_without_signalling_pairs_streams_by_payload_and_counts_a_dead_one() -> None:
    datagrams = relayed_stream(CALLER_RTP, 22000, 22002, CALLEE_RTP, start=0.0, first_seq=7,
                               ssrc=5, packets=200, transit={}, tag=b"A")  # fmt: skip
    # A stream the box never relays, still sending when the capture ends: all of it is lost.
    datagrams += relayed_stream(CALLEE_RTP, 22002, 22000, CALLER_RTP, start=0.0, first_seq=70,
                                ssrc=6, packets=200, transit=dict.fromkeys(range(200)),
                                tag=b"B")  # fmt: skip
    datagrams.sort(key=lambda d: d.time)
    fig = analyse_relay(datagrams, BOX_RANGE, frozenset({CALLER_RTP, CALLEE_RTP}))
    judged = sum(1 for i in range(200) if 0.02 * i <= 0.02 * 199 + 0.001 - END_MARGIN)
    assert (fig.streams_paired, fig.streams_unpaired) == (1, 1)
    assert fig.lost == judged
    assert fig.packets_in == 2 * judged
    assert fig.loss_pct == pytest.approx(50.0)


def test_post_dial_delay_pairs_invites_by_caller_and_time() -> None:
    datagrams = call_signalling(10.0, "100", "c1", 22000, 22002, bye=20.0)
    datagrams += call_signalling(10.5, "101", "c2", 22004, 22006, bye=20.0)
    datagrams += call_signalling(11.0, "100", "c3", 22008, 22010, bye=20.0)
    datagrams.sort(key=lambda d: d.time)
    sig = read_signalling(datagrams, BOX_SIP, CALLER_SIP, CALLEE_SIP)
    assert [(i, o) for _, _, i, o in sig.matched()] == [
        ("c1", "box-c1"), ("c2", "box-c2"), ("c3", "box-c3")
    ]  # fmt: skip
    fig = analyse_setup(sig)
    assert (fig.invites_in, fig.invites_out, fig.answered, fig.pdd_n) == (3, 3, 3, 3)
    assert fig.pdd_p50_ms == pytest.approx(2.0, abs=0.01)
    assert fig.pdd_max_ms == pytest.approx(2.0, abs=0.01)
    assert analyse_setup(sig, since=10.6).pdd_n == 1


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) == 0.0


def test_pcap_reader_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))  # pcapng
    with pytest.raises(pcap.PcapError, match="not a pcap file"):
        list(pcap.read(bad))
    short = tmp_path / "short.pcap"
    short.write_bytes(b"\xd4\xc3")
    with pytest.raises(pcap.PcapError, match="shorter than a pcap header"):
        list(pcap.read(short))
    cut = tmp_path / "cut.pcap"
    pcap.write(cut, [pcap.Datagram(1.5, (LO, 1), (LO, 2), b"x" * 100)] * 2)
    cut.write_bytes(cut.read_bytes()[:-10])  # a capture stopped mid-record
    assert [d.payload for d in pcap.read(cut)] == [b"x" * 100]


@pytest.mark.timeout(540)
def test_quick_calls_bench(tmp_path: Path) -> None:
    # About 35 s; more when the bench first installs tcpdump with apt-get (up to 3 x 150 s).
    stdout, figures = run_quick("calls", tmp_path, timeout=500)
    assert "CPU-s per call-second" in stdout
    assert "highest setup rate with < 1% failures" in stdout

    [step] = figures["concurrency"]
    assert step["calls"] == 5
    assert step["failures_pct"] < 1.0, step["sipp"]
    assert step["sipp"]["successful"] == 10
    assert 1 <= step["calls_in_box"] <= 7
    assert 0 < step["cpu_s_per_call_s"] < 1
    assert 0 < step["step_cpu_s_per_call_s"] < 1
    relay = step["relay"]
    assert relay["streams_paired"] >= 8  # 5 calls, both ways, in the capture window
    assert relay["packets_in"] >= 300  # 10 streams x 50 packets/s, about 1.5 s judged
    assert 0 <= relay["lost"] <= relay["packets_in"]
    assert 0 < relay["transit_p50_ms"] <= relay["transit_p99_ms"] <= relay["transit_max_ms"]
    assert relay["transit_max_ms"] <= 2000
    assert 0 <= relay["added_jitter_p99_ms"] <= relay["added_jitter_max_ms"]
    setup = step["setup"]
    assert setup["invites_in"] == setup["invites_out"] == setup["answered"] == 10
    assert setup["pdd_n"] >= 4  # the calls started with 5 up
    assert 0 < setup["pdd_p50_ms"] <= setup["pdd_p99_ms"] <= setup["pdd_max_ms"] < 5000
    cdr = step["cdr"]
    assert cdr["records"] == cdr["answered"] == 10
    assert cdr["packets"] > 0
    assert step["calls_left"] == 0

    [rate] = figures["rates"]
    assert rate["offered_rate"] == 10 and rate["passed"], rate
    assert rate["sipp"]["successful"] == 40
    assert rate["setup"]["invites_in"] == rate["setup"]["pdd_n"] == 40
    assert 5 < rate["achieved_rate"] < 100  # sipp bursts when its CPU is busy
    assert rate["peak_calls_in_box"] >= 10  # 10/s held 2 s
    assert rate["calls_left"] == 0 and rate["core_cpu_pct"] > 0 and rate["tools_cpu_pct"] > 0
    kept_up = rate["achieved_rate"] >= 9.5
    assert figures["max_setup_rate_under_1pct"] == (10 if kept_up else None)
    clean = kept_up and rate["sipp"]["retransmissions"] == 0
    assert figures["max_setup_rate_without_retransmissions"] == (10 if clean else None)
    machine = figures["machine"]
    assert machine["nproc"] >= 2 and machine["kernel"] and machine["python"]
    # Everything it started is stopped and its temporary directory removed.
    assert_cleaned_up(stdout)
