"""The fault-injection matrix of issue 7: every SMTP stage x every server fault, DNS faults and
connection faults, each against a real misbehaving server on loopback.

Each cell is one smtpcode.verify() batch of three addresses on the cell's own domain
(cN.faults.test -> 127.0.2.N, tests/fixtures/dns/conf.d/faults.conf) whose server
(tests/fixtures/fault/matrix_server.py, built on faultsmtp) misbehaves at one stage on every
connection. Healthy, that server accepts alice and bob and rejects every other local part with
550 5.1.1 (so the catch-all probe says "not a catch-all"). Each test asserts:
  - exactly one result per address;
  - the exact verdict and reason of each (and the error, reply code, TLS use where they tell);
  - that the batch ended within its deadline (deadline + a scheduling margin);
  - that the batch's memory stayed bounded: the peak RSS of the child process that ran it
    grew less than MEM_BOUND over its size before the batch (the huge-line server sends a
    32 MiB line, so a client that buffered it whole would exceed the bound);
  - that the server never received DATA, nor anything but well-formed commands.
The expected outcomes are written by hand from issue 5's contract (docs/faults.md is the same
table with the reasons).

The cells run concurrently (a thread pool, one child process per cell: a crash or a hang fails
one cell, not the suite), so the whole matrix takes about the longest cell: the deadline.
"""
import concurrent.futures
import re

import pytest

import faultlib as F

TIMEOUT = 1.0          # per reply, and for connect
DEADLINE = 8.0         # per address
SLACK = 2.0            # process start and loop scheduling, on top of the deadline
MEM_BOUND = 24 << 10   # KiB of peak RSS growth allowed to one batch
HUGE = 32 << 20        # octets in the huge-line fault's single line
WORKERS = 16

USERS = {"alice": "250 2.1.5 Ok", "bob": "250 2.1.5 Ok",
         "": "550 5.1.1 <{addr}>: Recipient address rejected: User unknown"}
LOCALS = ("alice", "bob", "unknown1")
BASE = {"alice": ("deliverable", "delivered"), "bob": ("deliverable", "delivered"),
        "unknown1": ("undeliverable", "userunknown")}

STAGES = ("banner", "ehlo", "starttls", "mail", "rcpt", "rset", "quit")
FAULTS = ("silent", "reset", "close", "421", "garbage", "slow", "endless", "hugeline")
# what each fault does to a session that has not yet had its answers: no reply in time,
# the connection gone, or a reply the reader refuses (not SMTP, too long, too many lines)
LOST = {"silent": "TIMEOUT", "slow": "TIMEOUT", "reset": "CLOSED", "close": "CLOSED",
        "garbage": "PROTO", "endless": "PROTO", "hugeline": "PROTO"}

def all_(verdict, reason):
    return {lp: (verdict, reason) for lp in LOCALS}


class Cell:
    def __init__(self, cid, stage, fault, expect, error=None, code=None, tls=None,
                 connections=None):
        self.id, self.stage, self.fault, self.expect = cid, stage, fault, expect
        self.error, self.code, self.tls = error, code, tls
        self.connections = connections
        self.n = None  # cell number: address 127.0.2.n, domain cN.faults.test

    def script(self):
        s = {"stage": self.stage, "fault": self.fault, "users": USERS}
        if self.stage == "starttls":
            s["starttls"] = True
        if self.connections:
            s["connections"] = self.connections
        return s


def expected(stage, fault):
    """The contract's answer for a fault on every connection at one stage."""
    if stage in ("rset", "quit"):
        # every address already has its answer (quit), or the ones still waiting go again in
        # a new session that needs no RSET (rset; 421 backs off 2 s first): nothing is lost
        return dict(expect=BASE)
    if fault == "421":
        if stage == "banner":  # a 4xx greeting: the host is skipped; its reply is the answer,
            # and a bare transient 4.3.2 is the server's own state (csrc/rules/status.def)
            return dict(expect=all_("unknown", "systemerror"), code=421)
        # elsewhere 421 backs the host off (2 s, then 4 s) and retries: the deadline comes
        # first, and the result keeps the last reply
        return dict(expect=all_("unknown", "expired"), code=421)
    return dict(expect=all_("unknown", "networkerror"), error=LOST[fault])


def build_cells():
    cells = []
    for stage in STAGES:
        for fault in FAULTS:
            cells.append(Cell("%s-%s" % (stage, fault), stage, fault, **expected(stage, fault)))
    # TLS faults exist only after STARTTLS: opportunistic TLS goes on in clear
    cells.append(Cell("starttls-tlsalert", "starttls", "tlsalert", BASE, tls=False))
    cells.append(Cell("starttls-tlsfail", "starttls", "tlsfail", BASE, tls=False))
    # (random bytes: some end the handshake with a TLS error, some leave it waiting for the
    # rest of a record until the server closes, which is the case above)
    cells.append(Cell("starttls-tlsgarbage", "starttls", "tlsgarbage", BASE, tls=False))
    # the same faults on the first connection only: the retry must recover every answer
    for fault in FAULTS:
        cells.append(Cell("rcpt-%s-first-only" % fault, "rcpt", fault, BASE, connections=[1]))
    for n, c in enumerate(cells, 1):
        c.n = n
    return cells


CELLS = build_cells()

# DNS and connection faults: (id, addresses, expected by address, error)
OTHER = [
    ("dns-servfail", {"a@servfail.test": ("unknown", "networkerror")}, "DNS"),
    # the resolver's own 5 s limit runs out before the 8 s deadline
    ("dns-timeout", {"a@blackhole.test": ("unknown", "networkerror")}, "DNS"),
    ("dns-nxdomain", {"a@nxdomain.faults.test": ("undeliverable", "hostunknown")}, None),
    ("dns-dangling-mx", {"a@dangling.faults.test": ("undeliverable", "hostunknown")}, None),
    ("dns-mx-servfail", {"a@mxservfail.faults.test": ("unknown", "networkerror")}, "DNS"),
    ("conn-refused", {"a@refused.faults.test": ("unknown", "networkerror")}, "CLOSED"),
    ("conn-blackhole", {"a@blackhole.faults.test": ("unknown", "networkerror")}, "TIMEOUT"),
]
BLACKHOLE = "127.0.2.251"


@pytest.fixture(scope="module")
def faults_dns():
    """Our own instance of the DNS fixture (see faultlib.private_dns)."""
    with F.private_dns() as server:
        yield server


def opts(dns, port):
    return dict(mail_from=F.SENDER, helo=F.HELO, port=port, dns_servers=dns,
                timeout=TIMEOUT, connect_timeout=TIMEOUT, deadline=DEADLINE,
                greylist_delay=-1.0)


@pytest.fixture(scope="module")
def matrix(faults_dns):
    """Start one fault-server process per stage, run every cell at once, keep the outcomes."""
    servers = {}
    port = F.pick_port()
    try:
        for stage in STAGES:
            listeners = []
            for c in CELLS:
                if c.stage != stage:
                    continue
                spec = {"listen": "%s:%d" % (F.cell_ip(c.n), port), "script": c.script()}
                if stage == "rset":
                    spec["rcpt_limit"] = 2  # the third RCPT gets 452 4.5.3: RSET, new txn
                listeners.append(spec)
            servers[stage] = F.MatrixServers("matrix-" + stage, listeners,
                                             ["%s:%d" % (BLACKHOLE, port)] if stage == "banner" else (),
                                             huge=HUGE)
        o = opts(faults_dns, port)
        jobs = {c.id: ["%s@c%d.faults.test" % (lp, c.n) for lp in LOCALS] for c in CELLS}
        jobs.update({cid: list(exp) for cid, exp, _ in OTHER})
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as ex:
            futs = {cid: ex.submit(F.run_cell, addrs, DEADLINE * 4, **o)
                    for cid, addrs in jobs.items()}
            outcomes = {cid: f.result() for cid, f in futs.items()}
    finally:
        for s in servers.values():
            s.stop()
    yield {"outcomes": outcomes, "servers": servers, "jobs": jobs}


def check_run(out, addresses):
    """What every cell must satisfy whatever its fault; returns results by address."""
    assert "crash" not in out, out.get("crash")
    got = [r["address"] for r in out["results"]]
    assert sorted(got) == sorted(addresses), "not exactly one result per address"
    assert out["elapsed"] <= DEADLINE + SLACK, "the batch outlived its deadline"
    for r in out["results"]:
        assert r["duration"] <= DEADLINE + SLACK, r
    growth = out["rss_peak"] - out["rss_before"]
    assert growth < MEM_BOUND, "peak RSS grew by %d KiB" % growth
    return {r["address"]: r for r in out["results"]}


_COMMAND = re.compile(rb"^(EHLO|HELO) probe\.test$|^STARTTLS$|^MAIL FROM:<probe@probe\.test>$|"
                      rb"^RCPT TO:<[A-Za-z0-9._+-]+@c\d+\.faults\.test>$|^RSET$|^QUIT$")


def check_wire(streams):
    """Only well-formed commands reached the server, each line ending in CRLF; never DATA."""
    for data in streams:
        lines = data.split(b"\r\n")
        for line in lines[:-1]:
            assert _COMMAND.match(line), ("unexpected bytes on the wire", line[:200])
        # the last piece is what followed the last CRLF: nothing, or a command cut short by
        # the fault (the server stopped reading); it may not carry a bare CR or LF
        assert b"\n" not in lines[-1] and b"\r" not in lines[-1], lines[-1][:200]
        assert b"DATA" not in data


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_smtp_fault(matrix, cell):
    addrs = matrix["jobs"][cell.id]
    res = check_run(matrix["outcomes"][cell.id], addrs)
    for a in addrs:
        r = res[a]
        lp = a.split("@")[0]
        assert (r["verdict"], r["reason"]) == cell.expect[lp], (a, r)
        if cell.error is not None:
            assert r["error"] == cell.error, (a, r)
        if cell.code is not None:
            assert r["reply"] and r["reply"]["code"] == cell.code, (a, r)
        if cell.tls is not None:
            assert r["tls"] is cell.tls, (a, r)
        if cell.expect is BASE:  # the answers are the server's own replies
            assert r["reply"]["code"] == (250 if lp != "unknown1" else 550), (a, r)
            assert r["mx"] == "mx.c%d.faults.test" % cell.n and r["mx_address"] == F.cell_ip(
                cell.n), r
    streams = matrix["servers"][cell.stage].received(F.cell_ip(cell.n))
    assert streams, "the server saw no connection"
    check_wire(streams)


@pytest.mark.parametrize("cid,expect,error", OTHER, ids=[o[0] for o in OTHER])
def test_dns_and_connection_fault(matrix, cid, expect, error):
    res = check_run(matrix["outcomes"][cid], list(expect))
    for a, (verdict, reason) in expect.items():
        r = res[a]
        assert (r["verdict"], r["reason"]) == (verdict, reason), (a, r)
        assert r["error"] == error, (a, r)
        assert r["reply"] is None, (a, r)
        if cid.startswith("dns-"):  # never got as far as a mail host
            assert r["mx"] is None, (a, r)
