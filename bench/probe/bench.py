#!/usr/bin/env python3
"""bench/probe -- smtpcode.verify against local fast SMTP servers, beside a smtplib baseline.

  python bench/probe/bench.py [--count 10000] [--domains 100] [--concurrency 100]

Servers (loopback only, started and stopped here; dnsmasq comes from tests/fixtures/dns):
  sink  Postfix's smtp-sink on 127.0.0.4:2525            domains b<N>.sink.mta.test
  slow  faultsmtp with a 50 ms delay before every reply   domains b<N>.slow.mta.test
        on 127.0.0.6:2525 (it counts connections and RCPTs)

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
                             timeout=30.0, deadline=a.deadline):
        n += 1
        verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
    return {"elapsed": time.monotonic() - t0, "results": n, "verdicts": verdicts}


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


def slow_stats():
    try:
        return json.loads((STATE / "slow.stats").read_text())
    except (OSError, ValueError):
        return {"connections": 0, "rcpts": 0}


def measure(a, who, kind, count, concurrency, per_host, rcpt):
    cmd = [sys.executable, __file__, "--child", who, "--kind", kind, "--count", str(count),
           "--domains", str(a.domains), "--concurrency", str(concurrency),
           "--per-host", str(per_host), "--rcpt", str(rcpt), "--deadline", str(a.deadline)]
    before = slow_stats()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit("bench child failed: %s" % " ".join(cmd))
    res = json.loads(out)
    res["rss_kib"] = ru.ru_maxrss
    res["rate"] = res["results"] / res["elapsed"]
    if kind == "slow":
        time.sleep(0.3)  # let the server count the last disconnects
        after = slow_stats()
        res["connections"] = after["connections"] - before["connections"]
        res["conn_per_addr"] = res["connections"] / max(1, res["results"])
    return res


def show(label, r):
    conns = ("%.4f conn/addr" % r["conn_per_addr"]) if "conn_per_addr" in r else "conn/addr n/a"
    print("%-44s %8.0f addr/s  %7.2f s  %s  peak RSS %6.1f MiB  %s" % (
        label, r["rate"], r["elapsed"], conns, r["rss_kib"] / 1024.0,
        json.dumps(r["verdicts"], sort_keys=True)), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--domains", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--per-host", type=int, default=0, help="engine sessions per MX (0: = concurrency)")
    p.add_argument("--rcpt", type=int, default=100, help="engine rcpt_per_session")
    p.add_argument("--delay", type=float, default=0.05)
    p.add_argument("--deadline", type=float, default=600.0)
    p.add_argument("--child", choices=["engine", "smtplib"])
    p.add_argument("--kind", choices=["sink", "slow"], default="sink")
    a = p.parse_args()
    if a.child:
        print(json.dumps(child_engine(a) if a.child == "engine" else child_smtplib(a)))
        return
    per_host = a.per_host or a.concurrency

    STATE.mkdir(parents=True, exist_ok=True)
    started_dns = ctl("dns", "status").returncode != 0
    if started_dns and ctl("dns", "start").returncode != 0:
        raise SystemExit("bench: cannot start dnsmasq (tests/fixtures/dns/ctl start)")
    procs = [
        subprocess.Popen(["smtp-sink", "-u", "postfix", "-4", "-h", "sink.mta.test",
                          "%s:%d" % SINK, "1024"]),
        subprocess.Popen([sys.executable, str(FIX / "fault" / "faultsmtp.py"),
                          "--listen", "%s:%d" % SLOW, "--record", "none",
                          "--stats", str(STATE / "slow.stats"),
                          "--script", json.dumps({"delay": a.delay})]),
    ]
    try:
        time.sleep(1.0)
        print("smtpcode probe bench: %d addresses over %d domains, concurrency %d "
              "(engine: per_host %d, rcpt_per_session %d)" % (
                  a.count, a.domains, a.concurrency, per_host, a.rcpt), flush=True)
        e_sink = measure(a, "engine", "sink", a.count, a.concurrency, per_host, a.rcpt)
        show("engine  smtp-sink, no delay", e_sink)
        b_sink = measure(a, "smtplib", "sink", a.count, a.concurrency, per_host, a.rcpt)
        show("smtplib smtp-sink, no delay", b_sink)
        e_slow = measure(a, "engine", "slow", a.count, a.concurrency, per_host, a.rcpt)
        show("engine  faultsmtp, %.0f ms per reply" % (a.delay * 1000), e_slow)
        b_slow = measure(a, "smtplib", "slow", a.count, a.concurrency, per_host, a.rcpt)
        show("smtplib faultsmtp, %.0f ms per reply" % (a.delay * 1000), b_slow)
        # single-domain batch: connections per address
        one = argparse.Namespace(**dict(vars(a), domains=1))
        e_one = measure(one, "engine", "slow", a.count // 5, a.concurrency, per_host, a.rcpt)
        show("engine  one domain, %d addresses" % (a.count // 5), e_one)
        # memory per concurrent session: many short sessions at low and high concurrency
        lo, hi = 10, 500
        m_lo = measure(a, "engine", "slow", 5000, lo, lo, 5)
        m_hi = measure(a, "engine", "slow", 5000, hi, hi, 5)
        per_sess = (m_hi["rss_kib"] - m_lo["rss_kib"]) * 1024.0 / (hi - lo)
        print("memory per concurrent session: (%.1f MiB at %d - %.1f MiB at %d) / %d = %.1f KiB"
              % (m_hi["rss_kib"] / 1024.0, hi, m_lo["rss_kib"] / 1024.0, lo, hi - lo,
                 per_sess / 1024.0))
        print("speedup with %.0f ms delay: %.1fx   no delay: %.1fx   one-domain conn/addr: %.4f"
              % (a.delay * 1000, e_slow["rate"] / b_slow["rate"], e_sink["rate"] / b_sink["rate"],
                 e_one["conn_per_addr"]))
    finally:
        for pr in procs:
            pr.terminate()
        for pr in procs:
            pr.wait(10)
        if started_dns:
            ctl("dns", "stop")


if __name__ == "__main__":
    main()
