"""Hostile addresses (issue 7): the strings of tests/vectors/hostile.tsv, mixed into a batch of
valid addresses on a real loopback server (h.faults.test -> 127.0.2.200, a faultsmtp server
that records every byte it receives). Each hostile string must get undeliverable/syntaxerror
and never reach the wire; the valid addresses must be checked as usual, by the server's own
replies (it accepts local parts starting with alice or bob and refuses the rest with 550).
"""
import random
import re

import pytest

import faultlib as F
import vectors

IP = "127.0.2.200"
D = "h.faults.test"
USERS = {"alice": "250 2.1.5 Ok", "bob": "250 2.1.5 Ok",
         "": "550 5.1.1 <{addr}>: Recipient address rejected: User unknown"}

# (address, verdict, reason, what the server must see in its RCPT TO:<...>)
VALID = [
    ("alice@" + D, "deliverable", "delivered", "alice@" + D),
    ("bob@" + D, "deliverable", "delivered", "bob@" + D),
    ("unknown1@" + D, "undeliverable", "userunknown", "unknown1@" + D),
    ("alice.smith+tag@" + D, "deliverable", "delivered", "alice.smith+tag@" + D),
    ("bob-99@H.Faults.Test", "deliverable", "delivered", None),  # domain case is free
    ("carol@" + D, "undeliverable", "userunknown", "carol@" + D),
    # a quoted local part with a space is valid (RFC 5321 4.1.2): sent quoted, refused
    ('"carol x"@' + D, "undeliverable", "userunknown", '"carol x"@' + D),
    # an address literal goes to that address, no DNS
    ("alice@[%s]" % IP, "deliverable", "delivered", "alice@[%s]" % IP),
]


def hostile():
    """The vectors as Python strings: raw octets that are not UTF-8 become lone surrogates,
    which the binding passes on as (invalid) octets."""
    rows = vectors.load("hostile.tsv")
    return [r["input"].decode("utf-8", "surrogateescape") for r in rows]


HOSTILE = hostile()


@pytest.fixture(scope="module")
def faults_dns():
    """Our own instance of the DNS fixture (see faultlib.private_dns)."""
    with F.private_dns() as server:
        yield server


@pytest.fixture(scope="module")
def server(faults_dns):
    port = F.pick_port()
    srv = F.MatrixServers("hostile", [{"listen": "%s:%d" % (IP, port),
                                       "script": {"users": USERS}}])
    srv.port = port
    yield srv
    srv.stop()


def opts(dns, port):
    return dict(mail_from=F.SENDER, helo=F.HELO, port=port, dns_servers=dns, timeout=5.0,
                deadline=20.0, greylist_delay=-1.0)


def test_vectors_are_many_and_distinct():
    assert len(HOSTILE) >= 60
    assert len(set(HOSTILE)) == len(HOSTILE)


def _wire_lines(streams):
    lines = []
    for data in streams:
        assert data.endswith(b"\r\n") or not data, data[-100:]
        assert b"DATA" not in data and b"\0" not in data
        # only printable ASCII and CRLF line ends ever reach the server
        assert re.fullmatch(rb"(?:[\x20-\x7e]*\r\n)*", data), data[:300]
        lines.extend(data.split(b"\r\n")[:-1])
    return lines


def test_hostile_mixed_with_valid(server, faults_dns):
    batch = HOSTILE + [v[0] for v in VALID]
    random.Random(7).shuffle(batch)  # hostile strings in every position of the batch
    out = F.run_cell(batch, 120, **opts(faults_dns, server.port))
    assert "crash" not in out, out.get("crash")
    got = [r["address"] for r in out["results"]]
    assert sorted(got) == sorted(batch), "not exactly one result per input"
    res = {r["address"]: r for r in out["results"]}
    for h in HOSTILE:
        r = res[h]
        assert (r["verdict"], r["reason"]) == ("undeliverable", "syntaxerror"), (h, r)
        assert r["reply"] is None and r["mx"] is None, (h, r)
    for addr, verdict, reason, _ in VALID:
        r = res[addr]
        assert (r["verdict"], r["reason"]) == (verdict, reason), (addr, r)
        assert r["mx_address"] == IP, r
    assert out["rss_peak"] - out["rss_before"] < 24 << 10

    # what the server received: EHLO, MAIL, the valid RCPTs and the catch-all probes, QUIT
    lines = _wire_lines(server.received(IP))
    assert lines, "the valid addresses were never probed"
    rcpts = []
    for line in lines:
        m = re.fullmatch(rb"RCPT TO:<(.*)>", line)
        if m:
            rcpts.append(m.group(1).decode())
            continue
        assert re.fullmatch(rb"EHLO probe\.test|MAIL FROM:<probe@probe\.test>|RSET|QUIT",
                            line), line
    wanted = {w for _, _, _, w in VALID if w}
    probe = re.compile(r"[a-z0-9-]+@(?:h\.faults\.test|\[127\.0\.2\.200\])", re.I)
    for a in rcpts:
        assert a in wanted or a.lower() == "bob-99@h.faults.test" or probe.fullmatch(a), a
    assert wanted <= set(rcpts)


def test_hostile_alone_makes_no_traffic(server, faults_dns):
    before = len(server.received(IP))
    out = F.run_cell(HOSTILE, 60, **opts(faults_dns, server.port))
    assert "crash" not in out, out.get("crash")
    assert sorted(r["address"] for r in out["results"]) == sorted(HOSTILE)
    for r in out["results"]:
        assert (r["verdict"], r["reason"]) == ("undeliverable", "syntaxerror"), r
        assert r["error"] is None and r["detail"], r  # the parser's reason, not a network one
    assert len(server.received(IP)) == before, "a hostile-only batch opened a connection"
