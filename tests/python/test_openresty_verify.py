"""/v1/verify of the HTTP service (examples/openresty: nginx + smtpcode.resty on cosockets)
against the same real servers as test_verify.py: Postfix (+ postgrey) and dnsmasq on loopback,
and the fault server for what Postfix will not do (slow replies). The expectations are
test_verify.py's hand-written ones (POSTFIX_CASES, and OPTION_CASES with their options as query
parameters): the same world must give the same verdicts through HTTP. Then what only the service
has: which options a request may set, how far, and a cache kept apart per options.

Each test that must not see another's cached results gets its own nginx instance (a distinct
sender is a distinct instance in the http_service fixture)."""
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest

from test_verify import OPTION_CASES, POSTFIX_CASES, new_sender


def lines(body):
    return [json.loads(x) for x in body.decode("utf-8").splitlines() if x.strip()]


def query(options):
    """verify()'s options as the service's query parameters (booleans as true/false)."""
    return urllib.parse.urlencode({k: str(v).lower() if isinstance(v, bool) else v
                                   for k, v in options.items()})


def get_verify(svc, address, **options):
    path = "/v1/verify?address=" + urllib.parse.quote(address, safe="@")
    if options:
        path += "&" + query(options)
    status, r = svc.json("GET", path)
    assert status == 200, r
    return r


def post_lines(svc, addresses, timeout=90, **options):
    """The results of POST /v1/verify in the order they came: exactly one per address."""
    path = "/v1/verify" + ("?" + query(options) if options else "")
    status, hdrs, body = svc.request("POST", path, body=json.dumps(addresses), timeout=timeout)
    assert status == 200, body[:300]
    assert hdrs.get("content-type", "").startswith("application/x-ndjson")
    out = lines(body)
    assert sorted(r["address"] for r in out) == sorted(addresses), "not one result per address"
    return out


def post_verify(svc, addresses, timeout=90, **options):
    return {r["address"]: r for r in post_lines(svc, addresses, timeout, **options)}


def test_every_verdict_case_through_get(http_service, mail_world):
    svc = http_service(mail_from="probe-get@sender.test")
    for address, verdict, reason in POSTFIX_CASES:
        r = get_verify(svc, address)
        assert (r["verdict"], r["reason"]) == (verdict, reason), (address, r)


def test_every_verdict_case_in_one_streamed_batch(http_service, mail_world):
    svc = http_service(mail_from="probe-post@sender.test")
    res = post_verify(svc, [a for a, _, _ in POSTFIX_CASES])
    for address, verdict, reason in POSTFIX_CASES:
        r = res[address]
        assert (r["verdict"], r["reason"]) == (verdict, reason), (address, r)
        assert not r.get("cached"), r  # verified now, not served from the cache


@pytest.mark.parametrize("name", list(OPTION_CASES))
def test_option_case_through_post(http_service, mail_world, name):
    # test_verify.py's cases with their options as query parameters, and the same checks. Each
    # has an instance of its own (its own sender), so no result can come from another's cache.
    addresses, options, fresh, check = OPTION_CASES[name]
    sender = new_sender("sender.test") if fresh else "opt-%s@sender.test" % name.replace("_", "-")
    results = post_lines(http_service(mail_from=sender), addresses, **options)
    assert not any(r["cached"] for r in results), results
    check(results, sender)


def test_cache_is_kept_apart_per_options(http_service, mail_world):
    svc = http_service(mail_from="probe-cache@sender.test")
    a = "x@catchall.mta.test"
    first = get_verify(svc, a)
    assert (first["verdict"], first["cached"]) == ("risky", False), first
    # the default request's "risky" is not an answer to catch_all=false
    off = get_verify(svc, a, catch_all=False)
    assert (off["verdict"], off["cached"]) == ("deliverable", False), off
    assert (get_verify(svc, a)["verdict"], get_verify(svc, a)["cached"]) == ("risky", True)
    again = get_verify(svc, a, catch_all=False)
    assert (again["verdict"], again["cached"]) == ("deliverable", True), again
    (posted,) = post_lines(svc, [a], catch_all=False)      # POST reads the same entries
    assert (posted["verdict"], posted["cached"]) == ("deliverable", True), posted
    # asking for what the service does anyway is the default request (deadline: the fixture's)
    same = get_verify(svc, a, deadline=60, catch_all=True)
    assert (same["verdict"], same["cached"]) == ("risky", True), same
    # a transcript is of the session that made it: neither served from the cache nor kept
    for _ in range(2):
        t = get_verify(svc, a, transcript=True)
        assert t["cached"] is False and "RCPT TO:<%s>" % a in t["transcript"], t


def test_transcripts_configured_for_every_request_are_not_cached(http_service, mail_world):
    svc = http_service(mail_from="probe-transcripts@sender.test", extra="transcript = true,")
    for _ in range(2):
        r = get_verify(svc, "alice@users.mta.test")
        assert r["cached"] is False and "RCPT TO:<alice@users.mta.test>" in r["transcript"], r


# (query, the option the 400 must name): values the HTTP layer cannot read as the option's type,
# values the C planner refuses (its message is passed on), options nobody knows, and the
# operator's options, which no request may set.
BAD_OPTIONS = [
    ("starttls=sometimes", "starttls"),
    ("starttls=", "starttls"),
    ("catch_all=maybe", "catch_all"),
    ("tls_verify=", "tls_verify"),
    ("transcript=yes", "transcript"),
    ("catch_all", "catch_all"),
    ("catch_all=true&catch_all=false", "catch_all"),
    ("deadline=-1", "deadline"),
    ("deadline=0", "deadline"),
    ("timeout=0", "timeout"),
    ("deadline=soon", "deadline"),
    ("timeout=nan", "timeout"),
    ("greylist_delay=inf", "greylist_delay"),
    ("frobnicate=1", "frobnicate"),
    ("mail_from=x%40evil.test", "mail_from"),
    ("helo=evil.test", "helo"),
    ("port=25", "port"),
    ("dns_servers=127.0.0.1%3A53", "dns_servers"),
    ("per_host=100", "per_host"),
    ("concurrency=1000", "concurrency"),
    ("host_pause=0", "host_pause"),
]


@pytest.mark.parametrize("bad,option", BAD_OPTIONS, ids=[q for q, _ in BAD_OPTIONS])
def test_bad_or_foreign_option_is_400_naming_it(http_service, mail_world, bad, option):
    svc = http_service()
    for method, path, body in (
            ("GET", "/v1/verify?address=alice@users.mta.test&" + bad, None),
            ("POST", "/v1/verify?" + bad, b'["alice@users.mta.test"]')):
        status, r = svc.json(method, path, body=body)
        assert status == 400, (method, r)
        assert option in r["error"], (method, r)


def test_a_bad_configuration_stops_nginx_at_start(http_service):
    # checked by the same planner as a request's options, but when nginx starts: a service
    # that would refuse every request does not come up
    with pytest.raises(RuntimeError, match="invalid option: starttls"):
        http_service(extra='starttls = "sometimes",')


def test_post_takes_no_address_parameter(http_service):
    status, r = http_service().json("POST", "/v1/verify?address=a@b.test", body=b'["a@b.test"]')
    assert status == 400 and "address" in r["error"], r


# Every reply of this server, the banner too, comes 1.5 s late (faultsmtp "delay"): a run with
# the fixture's 5 s timeout and 60 s deadline is answered after a few seconds, but not within a
# 1 s timeout or a 2 s deadline. A request that asks for more than the service's own timeout or
# deadline gets the service's.
SLOW = {"delay": 1.5}


def test_slow_server_answers_within_the_configured_limits(http_service, fault_server):
    fault_server(10, SLOW)
    r = get_verify(http_service(), "a@f10.fault.mta.test", catch_all=False)
    assert (r["verdict"], r["reason"]) == ("deliverable", "delivered"), r


@pytest.mark.parametrize("configured,asked,reason", [
    ("timeout = 1,", dict(timeout=100), "networkerror"),
    ("deadline = 2,", dict(deadline=1000), "expired"),
])
def test_a_request_cannot_raise_the_time_limits(http_service, fault_server, configured, asked,
                                                 reason):
    fault_server(10, SLOW)
    svc = http_service(extra=configured)
    r = get_verify(svc, "a@f10.fault.mta.test", catch_all=False, **asked)
    assert (r["verdict"], r["reason"]) == ("unknown", reason), r


def test_a_request_cannot_retry_greylisting_sooner(http_service, fault_server):
    # "grey..." local parts are always answered 450 Greylisted. The service waits 4 s before a
    # retry (the fixture's greylist_delay), longer than this request's deadline: one RCPT only.
    # Retries 0.2 s apart, as asked, would have made three within the deadline.
    srv = fault_server(11, {})
    svc = http_service(mail_from="probe-greyfloor@sender.test")
    r = get_verify(svc, "grey1@f11.fault.mta.test", greylist_delay=0.2, deadline=3,
                   catch_all=False)
    assert r["verdict"] == "unknown" and r["reply"]["greylisted"] is True, r
    rcpts = b"".join(srv.connections()).count(b"RCPT TO:<grey1@f11.fault.mta.test>")
    assert rcpts == 1, rcpts


def test_newline_list_body_and_cache(http_service, mail_world):
    svc = http_service(mail_from="probe-lines@sender.test")
    status, _, body = svc.request("POST", "/v1/verify",
                                  body=b"alice@users.mta.test\r\nnobody@users.mta.test\n")
    assert status == 200
    res = {r["address"]: r for r in lines(body)}
    assert res["alice@users.mta.test"]["verdict"] == "deliverable"
    assert res["nobody@users.mta.test"]["verdict"] == "undeliverable"
    again = get_verify(svc, "nobody@users.mta.test")  # a lasting verdict: from the cache now
    assert again.get("cached") is True and again["reason"] == "userunknown"


def test_starttls_against_postfix(http_service, mail_world):
    svc = http_service(mail_from="probe-tls@sender.test")
    res = post_verify(svc, ["alice@users.mta.test", "alice@notls.mta.test"])
    assert res["alice@users.mta.test"]["tls"] is True       # mx1 offers STARTTLS
    assert res["alice@users.mta.test"]["mx"] == "mx1.mta.test"
    assert res["alice@notls.mta.test"]["tls"] is False      # this MX does not
    assert res["alice@notls.mta.test"]["verdict"] == "deliverable"


def test_greylisting_is_retried(http_service, mail_world):
    # a fresh sender: fresh postgrey triplets, so the first RCPTs get 450 Greylisted; the
    # service retries after its greylist_delay (4 s in the fixture; postgrey wants 3 s)
    svc = http_service(mail_from="grey-%s@sender.test" % uuid.uuid4().hex[:12])
    res = post_verify(svc, ["alice@greylist.mta.test", "nobody@greylist.mta.test"])
    a, n = res["alice@greylist.mta.test"], res["nobody@greylist.mta.test"]
    assert (a["verdict"], a["reason"]) == ("deliverable", "delivered"), a
    assert (n["verdict"], n["reason"]) == ("undeliverable", "userunknown"), n


def test_decode_answers_while_a_slow_verify_is_in_flight(http_service, fault_server):
    # one worker; every SMTP reply of the fault server comes 0.5 s late, so the verify takes
    # seconds. If it blocked the worker, /v1/decode would wait for it.
    fault_server(8, {"latency": 0.5})
    svc = http_service(mail_from="probe-slow@sender.test")
    out = {}

    def slow():
        out["r"] = get_verify(svc, "a@f8.fault.mta.test")
        out["t"] = time.monotonic()

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.8)
    t0 = time.monotonic()
    status, d = svc.json("POST", "/v1/decode", body=b"550 5.1.1 <a@b.test>: User unknown")
    elapsed = time.monotonic() - t0
    t1 = time.monotonic()
    t.join(60)
    assert status == 200 and d["code"] == 550
    assert "t" in out and out["t"] > t1, "the verify was not in flight during the decode"
    assert elapsed < 0.05, elapsed
    assert out["r"]["verdict"] in ("deliverable", "risky"), out["r"]


def _workers(svc_port):
    """{client port: nginx worker pid} for the established connections to the service."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", "( sport = :%d )" % svc_port],
                         capture_output=True, text=True).stdout
    owners = {}
    for line in out.splitlines():
        m = re.search(r":%d\s+\S+:(\d+).*pid=(\d+)" % svc_port, line)
        if m:
            owners[int(m.group(1))] = int(m.group(2))
    return owners


def test_killing_a_worker_loses_no_other_result_and_leaves_no_stuck_count(http_service,
                                                                          fault_server):
    fault_server(9, {"latency": 0.3})
    svc = http_service(workers=2, mail_from="probe-kill@sender.test")
    batches, results, ports = [], {}, {}

    def run(i, addrs):
        c = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=90)
        try:
            c.connect()
            ports[i] = c.sock.getsockname()[1]
            c.request("POST", "/v1/verify", body=json.dumps(addrs))
            r = c.getresponse()
            results[i] = (r.status, lines(r.read()))
        except (OSError, http.client.HTTPException, ValueError) as e:
            results[i] = (None, repr(e))
        finally:
            c.close()

    threads, owners = [], {}
    for i in range(8):  # until both workers own a request in flight
        addrs = ["k%d-%d@f9.fault.mta.test" % (i, j) for j in range(3)]
        batches.append(addrs)
        t = threading.Thread(target=run, args=(i, addrs))
        t.start()
        threads.append(t)
        time.sleep(0.3)
        found = _workers(svc.port)
        owners = {i: found.get(p) for i, p in ports.items()}
        if len({p for p in owners.values() if p}) >= 2:
            break
    pids = {p for p in owners.values() if p}
    assert len(pids) >= 2, "the requests did not spread over both workers: %r" % owners
    victim = sorted(pids)[0]
    os.kill(victim, signal.SIGKILL)
    for t in threads:
        t.join(120)
    survivors = [i for i, p in owners.items() if p and p != victim]
    assert survivors
    for i in survivors:
        status, got = results[i]
        assert status == 200, got
        assert sorted(r["address"] for r in got) == sorted(batches[i])
        for r in got:  # the fault server takes every address: a catch-all
            assert (r["verdict"], r["reason"]) == ("risky", "delivered"), r
    # The dead worker's session counts at 127.0.0.29 must not hold back new sessions there
    # (they stop counting once its heartbeat lapses, 3 s): a new batch gets real verdicts.
    time.sleep(3.5)
    res = post_verify(svc, ["after-%d@f9.fault.mta.test" % j for j in range(2)])
    for r in res.values():
        assert (r["verdict"], r["reason"]) == ("risky", "delivered"), r


def test_workers_share_the_per_host_session_bound(http_service, fault_server):
    # Four workers, eight requests at once, all for one MX address whose replies are slow, so
    # sessions overlap. The service's per_host is 2 (the library default): with counts kept
    # per worker the server would see up to 4 x 2 sessions at once; shared through the dict,
    # never more than 2 -- and 2 are used, so the sharing is a bound, not a queue of one.
    srv = fault_server(7, {"latency": 0.2})
    svc = http_service(workers=4, mail_from="probe-share@sender.test")
    batches = [["s%d-%d@f7.fault.mta.test" % (i, j) for j in range(4)] for i in range(8)]
    got = {}

    def run(i):
        got[i] = post_verify(svc, batches[i], timeout=120)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert sorted(got) == list(range(len(batches))), "a request gave no answer"
    for res in got.values():
        for r in res.values():  # the fault server takes every address: a catch-all
            assert (r["verdict"], r["reason"]) == ("risky", "delivered"), r
    stats = srv.stats()
    assert stats["peak"] <= 2, stats
    assert stats["peak"] == 2, stats


class TruncatingDNS:
    """A resolver in front of dnsmasq that answers every UDP query with an empty, truncated
    (TC) response and every TCP query with dnsmasq's real answer: a driver that does not retry
    over TCP on truncation finds no route at all."""

    def __init__(self, port, upstream=("127.0.0.1", 5353)):
        import socket
        self.upstream, self.tcp_queries, self.udp_queries = upstream, 0, 0
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", port))
        self.tcp.listen(16)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self.serve_udp,
                                                                         self.serve_tcp)]
        for t in self.threads:
            t.start()

    def serve_udp(self):
        self.udp.settimeout(0.2)
        while not self.stop.is_set():
            try:
                q, peer = self.udp.recvfrom(4096)
            except OSError:
                continue
            self.udp_queries += 1
            # header: same id, QR + RD + TC, RA; the question only, no records
            qend = 12
            while q[qend] != 0:
                qend += q[qend] + 1
            self.udp.sendto(q[:2] + bytes([0x83, 0x80]) + b"\x00\x01\x00\x00\x00\x00\x00\x00"
                            + q[12:qend + 5], peer)

    def serve_tcp(self):
        import socket
        self.tcp.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.tcp.accept()
            except OSError:
                continue
            with c:
                c.settimeout(5)
                n = int.from_bytes(c.recv(2), "big")
                q = b""
                while len(q) < n:
                    q += c.recv(n - len(q))
                self.tcp_queries += 1
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.settimeout(5)
                u.sendto(q, self.upstream)
                a, _ = u.recvfrom(65535)
                u.close()
                c.sendall(len(a).to_bytes(2, "big") + a)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


def test_truncated_dns_answers_are_asked_again_over_tcp(http_service, mail_world):
    dns = TruncatingDNS(5391)
    try:
        svc = http_service(mail_from="probe-tc@sender.test", dns_port=5391)
        r = get_verify(svc, "alice@users.mta.test")
    finally:
        dns.close()
    assert (r["verdict"], r["reason"], r["mx"]) == ("deliverable", "delivered", "mx1.mta.test"), r
    assert dns.udp_queries >= 3 and dns.tcp_queries >= 3  # MX, A and AAAA of mx1, each twice
