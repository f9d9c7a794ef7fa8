#!/usr/bin/env python3
"""bench/probe -- smtpcode.verify against local fast SMTP servers, beside a smtplib baseline.

  python bench/probe/bench.py [--count 10000] [--domains 100] [--concurrency 100]

Servers (loopback only, started and stopped here; dnsmasq comes from tests/fixtures/dns):
  sink  Postfix's smtp-sink on 127.0.0.4:2525            domains b<N>.sink.mta.test
        (tests/fixtures/mta's, or one started here when that is not up)
  slow  faultsmtp on 127.0.0.6:2525                      domains b<N>.slow.mta.test
        latency mode: every reply leaves 50 ms after its command arrived (pipelined commands
        overlap, as over a distant link); serial mode: 50 ms before each reply, one command at
        a time (smtp-sink -W style). It counts connections, RCPTs and peak concurrent sessions.

Each measured run is a child process, so its peak RSS (ru_maxrss from wait4) is its own.
Baseline: Python smtplib, one connection per address (banner, EHLO, MAIL, RCPT, QUIT), on a
thread pool of the same concurrency, as batch scripts do it today. It is given the MX address
without a DNS lookup (stdlib has no MX lookup), which favours it.
Figures: addresses/s, connections/address, peak RSS, and memory per concurrent session
(RSS at many concurrent sessions minus RSS at few, over the difference in sessions).
Bounded: a fixed address count and a deadline per run.
"""
import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
STATE = ROOT / "build" / "bench" / "probe"
SINK = ("127.0.0.4", 2525)
SLOW = ("127.0.0.6", 2525)
DNS = "127.0.0.1:5353"


def addresses(count, domains, kind):
    # mostly existing users, some unknown: both servers accept all but "unknown*" local parts
    for i in range(count):
        local = "unknown%d" % i if i % 10 == 9 else "user%d" % i
        yield "%s@b%d.%s.mta.test" % (local, i % domains, kind)


# ---- children: one measured run each --------------------------------------------------------

def child_engine(a):
    import smtpcode
    t0 = time.monotonic()
    verdicts = {}
    n = 0
    for r in smtpcode.verify(addresses(a.count, a.domains, a.kind), mail_from="bench@probe.test",
                             helo="bench.test", port=2525, dns_servers=DNS,
                             concurrency=a.concurrency, per_host=a.per_host,
                             rcpt_per_session=a.rcpt, starttls="off", catch_all=False,
                             timeout=30.0, deadline=a.deadline, host_pause=a.host_pause,
                             max_rejections=a.max_rejections):
        n += 1
        verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
    return {"elapsed": time.monotonic() - t0, "results": n, "verdicts": verdicts}


def child_aio(a):
    """The same run through smtpcode.aio (the planner driven by asyncio)."""
    import asyncio
    import smtpcode.aio

    async def run():
        verdicts = {}
        n = 0
        async for r in smtpcode.aio.verify(
                addresses(a.count, a.domains, a.kind), mail_from="bench@probe.test",
                helo="bench.test", port=2525, dns_servers=DNS, concurrency=a.concurrency,
                per_host=a.per_host, rcpt_per_session=a.rcpt, starttls="off", catch_all=False,
                timeout=30.0, deadline=a.deadline, host_pause=a.host_pause,
                max_rejections=a.max_rejections):
            n += 1
            verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
        return n, verdicts

    t0 = time.monotonic()
    n, verdicts = asyncio.run(run())
    return {"elapsed": time.monotonic() - t0, "results": n, "verdicts": verdicts}


def child_resty(a):
    """The same run through the OpenResty service (examples/openresty, smtpcode.resty on
    cosockets): POST /v1/verify, the addresses split over two concurrent requests, each
    streaming its JSON lines back. The nginx instance is the parent's (--resty-port)."""
    import http.client
    import threading
    addrs = list(addresses(a.count, a.domains, a.kind))
    halves = [addrs[0::2], addrs[1::2]]
    verdicts, counts = {}, [0, 0]
    lock = threading.Lock()

    def post(i):
        c = http.client.HTTPConnection("127.0.0.1", a.resty_port, timeout=a.deadline)
        c.request("POST", "/v1/verify", body="\n".join(halves[i]))
        r = c.getresponse()
        for line in r:
            if line.strip():
                v = json.loads(line)["verdict"]
                with lock:
                    verdicts[v] = verdicts.get(v, 0) + 1
                    counts[i] += 1
        c.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"results": sum(counts), "elapsed": time.monotonic() - t0, "verdicts": verdicts}


def resty_service(a, workers, per_host, port=8189):
    """Starts the OpenResty fixture (tests/fixtures/nginx/ctl) with the engine's options."""
    extra = ('concurrency = %d, per_host = %d, rcpt_per_session = %d, starttls = "off", '
             'catch_all = false, host_pause = %g, max_rejections = %d, timeout = 30, '
             'deadline = %g, cache_ttl = 0, max_addresses = %d,'
             % (a.concurrency, per_host, a.rcpt, a.host_pause, a.max_rejections, a.deadline,
                a.count))
    env = dict(os.environ, SMTPC_HTTP_PORT=str(port), SMTPC_HTTP_WORKERS=str(workers),
               SMTPC_HTTP_BODY_MAX="16m", SMTPC_HTTP_EXTRA=extra, SMTPC_HTTP_RATE="100000",
               SMTPC_HTTP_STATE=str(STATE / ("nginx-%d" % workers)))
    r = subprocess.run([str(FIX / "nginx" / "ctl"), "start"], env=env, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit("bench: nginx fixture failed: " + r.stderr)
    return env


def child_smtplib(a):
    import smtplib
    from concurrent.futures import ThreadPoolExecutor
    host = SINK[0] if a.kind == "sink" else SLOW[0]

    def one(addr):
        try:
            with smtplib.SMTP(host, 2525, local_hostname="bench.test", timeout=30) as s:
                s.mail("bench@probe.test")
                code, _ = s.rcpt(addr)
                return "deliverable" if code // 100 == 2 else (
                    "undeliverable" if code // 100 == 5 else "unknown")
        except (OSError, smtplib.SMTPException):
            return "unknown"

    t0 = time.monotonic()
    verdicts = {}
    with ThreadPoolExecutor(a.concurrency) as pool:
        for v in pool.map(one, addresses(a.count, a.domains, a.kind)):
            verdicts[v] = verdicts.get(v, 0) + 1
    return {"elapsed": time.monotonic() - t0, "results": sum(verdicts.values()),
            "verdicts": verdicts}


# ---- parent ---------------------------------------------------------------------------------

def ctl(name, *args):
    return subprocess.run([str(FIX / name / "ctl"), *args], capture_output=True, text=True)


class SlowServer:
    """The delaying server on 127.0.0.6:2525, restarted for every run so its counters are that
    run's: bench/probe/latency_server.py (default), or tests/fixtures/fault/faultsmtp.py
    (--server faultsmtp), which spends more CPU per reply than the engine it serves."""

    def __init__(self, kind="fast"):
        self.proc = None
        self.kind = kind

    def start(self, script):
        self.stop()
        stats = STATE / "slow.stats"
        for f in (stats, STATE / "slow.ready"):
            if f.exists():
                f.unlink()
        if self.kind == "faultsmtp":
            cmd = [str(FIX / "fault" / "faultsmtp.py"), "--record", "none",
                   "--script", json.dumps(script)]
        else:
            cmd = [str(pathlib.Path(__file__).resolve().parent / "latency_server.py"),
                   "--latency", str(script.get("latency", 0)),
                   "--delay", str(script.get("delay", 0))]
        self.proc = subprocess.Popen([sys.executable, *cmd, "--listen", "%s:%d" % SLOW,
                                      "--stats", str(stats), "--ready", str(STATE / "slow.ready")])
        for _ in range(100):
            if (STATE / "slow.ready").exists():
                return
            time.sleep(0.05)
        raise SystemExit("bench: faultsmtp did not start")

    def stats(self):
        time.sleep(0.3)  # the last disconnects
        try:
            return json.loads((STATE / "slow.stats").read_text())
        except (OSError, ValueError):
            return {"connections": 0, "rcpts": 0, "peak": 0}

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def measure(a, who, kind, count, concurrency, per_host, rcpt, domains=None, slow=None):
    cmd = [sys.executable, __file__, "--child", who, "--kind", kind, "--count", str(count),
           "--domains", str(domains or a.domains), "--concurrency", str(concurrency),
           "--per-host", str(per_host), "--rcpt", str(rcpt), "--deadline", str(a.deadline),
           "--host-pause", str(a.host_pause), "--max-rejections", str(a.max_rejections),
           "--resty-port", str(a.resty_port)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit("bench child failed: %s" % " ".join(cmd))
    res = json.loads(out)
    res["rss_kib"] = ru.ru_maxrss
    res["rate"] = res["results"] / res["elapsed"]
    if slow is not None:
        st = slow.stats()
        res["connections"] = st["connections"]
        res["peak_sessions"] = st["peak"]
        res["conn_per_addr"] = st["connections"] / max(1, res["results"])
    return res


def show(label, r):
    conns = ("%.4f conn/addr, peak %d sessions" % (r["conn_per_addr"], r["peak_sessions"])
             if "conn_per_addr" in r else "conn/addr n/a")
    print("%-40s %7.0f addr/s %7.2f s  peak RSS %5.1f MiB  %s  %s" % (
        label, r["rate"], r["elapsed"], r["rss_kib"] / 1024.0, conns,
        json.dumps(r["verdicts"], sort_keys=True)), flush=True)


def resty_runs(a, slow, per_host, ms, e_lat):
    """OpenResty (POST /v1/verify) with one and two nginx workers, beside the libuv figure."""
    for workers in (1, 2):
        env = resty_service(a, workers, per_host)
        try:
            slow.start({"latency": a.delay})
            r = measure(a, "resty", "slow", a.count, a.concurrency, per_host, a.rcpt, slow=slow)
            show("resty   %.0f ms latency, %d worker%s" % (ms, workers, "s" if workers > 1 else ""), r)
            print("  -> %.0f ms latency: OpenResty %d worker(s)/libuv %.2f (RSS: the HTTP client's)"
                  % (ms, workers, r["rate"] / e_lat["rate"]))
        finally:
            subprocess.run([str(FIX / "nginx" / "ctl"), "stop"], env=env, capture_output=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--domains", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--per-host", type=int, default=0, help="engine sessions per MX (0: = concurrency)")
    p.add_argument("--rcpt", type=int, default=100, help="engine rcpt_per_session")
    p.add_argument("--host-pause", type=float, default=0.0,
                   help="engine pause between new sessions to one MX address (library default 0.1)")
    p.add_argument("--max-rejections", type=int, default=8,
                   help="engine max_rejections (RCPTs in flight: this, up to twice this once "
                        "the server accepts)")
    p.add_argument("--delay", type=float, default=0.05)
    p.add_argument("--deadline", type=float, default=600.0)
    p.add_argument("--child", choices=["engine", "aio", "smtplib", "resty"])
    p.add_argument("--resty-port", type=int, default=8189)
    p.add_argument("--only-latency", action="store_true",
                   help="only the 50 ms latency runs (libuv, asyncio, OpenResty 1 and 2 workers)")
    p.add_argument("--kind", choices=["sink", "slow"], default="sink")
    p.add_argument("--server", choices=["fast", "faultsmtp"], default="fast",
                   help="the delaying server: latency_server.py (fast) or the fault fixture's")
    a = p.parse_args()
    if a.child:
        child = {"engine": child_engine, "aio": child_aio, "smtplib": child_smtplib,
                 "resty": child_resty}[a.child]
        print(json.dumps(child(a)))
        return
    per_host = a.per_host or a.concurrency
    ms = a.delay * 1000

    STATE.mkdir(parents=True, exist_ok=True)
    started_dns = ctl("dns", "status").returncode != 0
    if started_dns and ctl("dns", "start").returncode != 0:
        raise SystemExit("bench: cannot start dnsmasq (tests/fixtures/dns/ctl start)")
    sink = None
    try:  # tests/fixtures/mta runs this same smtp-sink; start one only when it is not up
        socket.create_connection(SINK, timeout=1).close()
    except OSError:
        sink = subprocess.Popen(["smtp-sink", "-u", "postfix", "-4", "-h", "sink.mta.test",
                                 "%s:%d" % SINK, "1024"])
    slow = SlowServer(a.server)
    try:
        time.sleep(0.5)
        print("smtpcode probe bench: %d addresses over %d domains (all on one MX address), "
              "concurrency %d; engine per_host %d, rcpt_per_session %d, host_pause %g s; "
              "delaying server: %s" % (a.count, a.domains, a.concurrency, per_host, a.rcpt,
                                       a.host_pause, a.server), flush=True)
        if a.only_latency:
            slow.start({"latency": a.delay})
            e_lat = measure(a, "engine", "slow", a.count, a.concurrency, per_host, a.rcpt,
                            slow=slow)
            show("engine  %.0f ms latency per reply" % ms, e_lat)
            slow.start({"latency": a.delay})
            a_lat = measure(a, "aio", "slow", a.count, a.concurrency, per_host, a.rcpt, slow=slow)
            show("aio     %.0f ms latency per reply" % ms, a_lat)
            print("  -> asyncio/libuv %.2f" % (a_lat["rate"] / e_lat["rate"]))
            resty_runs(a, slow, per_host, ms, e_lat)
            return
        e = measure(a, "engine", "sink", a.count, a.concurrency, per_host, a.rcpt)
        show("engine  smtp-sink", e)
        b = measure(a, "smtplib", "sink", a.count, a.concurrency, per_host, a.rcpt)
        show("smtplib smtp-sink", b)
        print("  -> no delay: engine/baseline %.1fx" % (e["rate"] / b["rate"]))

        slow.start({"latency": a.delay})
        e_lat = measure(a, "engine", "slow", a.count, a.concurrency, per_host, a.rcpt, slow=slow)
        show("engine  %.0f ms latency per reply" % ms, e_lat)
        slow.start({"latency": a.delay})
        b_lat = measure(a, "smtplib", "slow", a.count, a.concurrency, per_host, a.rcpt, slow=slow)
        show("smtplib %.0f ms latency per reply" % ms, b_lat)
        print("  -> %.0f ms latency: engine/baseline %.1fx" % (ms, e_lat["rate"] / b_lat["rate"]))
        slow.start({"latency": a.delay})
        a_lat = measure(a, "aio", "slow", a.count, a.concurrency, per_host, a.rcpt, slow=slow)
        show("aio     %.0f ms latency per reply" % ms, a_lat)
        print("  -> %.0f ms latency: asyncio driver/baseline %.1fx, asyncio/libuv %.2f"
              % (ms, a_lat["rate"] / b_lat["rate"], a_lat["rate"] / e_lat["rate"]))

        resty_runs(a, slow, per_host, ms, e_lat)

        # The same with a larger rejection budget: the engine keeps at most max_rejections
        # rejections per session (twice that in the worst case of its widened pipelining
        # window), so the budget sets how many sessions the 1,000 unknown users need.
        if a.max_rejections < 20:
            slow.start({"latency": a.delay})
            more = argparse.Namespace(**dict(vars(a), max_rejections=20))
            e_m = measure(more, "engine", "slow", a.count, a.concurrency, per_host, a.rcpt,
                          slow=slow)
            show("engine  %.0f ms latency, max_rejections 20" % ms, e_m)
            print("  -> %.0f ms latency, max_rejections 20: engine/baseline %.1fx"
                  % (ms, e_m["rate"] / b_lat["rate"]))

        # Serial delay: the server answers one command at a time, so pipelined RCPTs wait for
        # each other (smtp-sink -W style). smtplib sends one command at a time anyway, so its
        # figure is the one above.
        slow.start({"delay": a.delay})
        e_ser = measure(a, "engine", "slow", a.count, a.concurrency, per_host, a.rcpt, slow=slow)
        show("engine  %.0f ms serial delay per reply" % ms, e_ser)
        print("  -> %.0f ms serial delay: engine/baseline %.1fx" % (ms, e_ser["rate"] / b_lat["rate"]))

        n1 = a.count // 5
        slow.start({"latency": a.delay})
        e_one = measure(a, "engine", "slow", n1, a.concurrency, per_host, a.rcpt, domains=1,
                        slow=slow)
        show("engine  one domain, %d addresses" % n1, e_one)

        # memory per concurrent session: many short sessions at low and high concurrency
        lo, hi = 10, 500
        slow.start({"latency": a.delay})
        m_lo = measure(a, "engine", "slow", 5000, lo, lo, 5, slow=slow)
        show("engine  concurrency %d, 5 rcpt/session" % lo, m_lo)
        slow.start({"latency": a.delay})
        m_hi = measure(a, "engine", "slow", 5000, hi, hi, 5, slow=slow)
        show("engine  concurrency %d, 5 rcpt/session" % hi, m_hi)
        dsess = max(1, m_hi["peak_sessions"] - m_lo["peak_sessions"])
        per_sess = (m_hi["rss_kib"] - m_lo["rss_kib"]) * 1024.0 / dsess
        print("memory per concurrent session: (%.1f MiB - %.1f MiB) / (%d - %d peak sessions) "
              "= %.1f KiB" % (m_hi["rss_kib"] / 1024.0, m_lo["rss_kib"] / 1024.0,
                             m_hi["peak_sessions"], m_lo["peak_sessions"], per_sess / 1024.0))
    finally:
        slow.stop()
        if sink:
            sink.terminate()
            sink.wait(10)
        if started_dns:
            ctl("dns", "stop")


if __name__ == "__main__":
    main()
