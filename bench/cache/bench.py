#!/usr/bin/env python3
"""bench/cache -- a cold run of 10,000 addresses against the Postfix world, then the same run
again with a warm result cache (verify(cache=PATH)), in one process, one after the other.

  build/venv/bin/python bench/cache/bench.py [--count 10000] [--host-pause 0.1]

Prints one line per run (seconds, addresses/s, connections Postfix logged, results served
from the cache) and the cold/warm ratio: the figure and its baseline from the same run.
The addresses: bulk users of three mailbox domains on mx1 and mx-notls (deliverable), 500
unknown users (undeliverable, Postfix's error limits apply), the rest on the catch-all domain
(risky). Engine options are the library's defaults (2 sessions per MX address, 0.1 s between
new sessions), as a user would run it. Loopback only: tests/fixtures/{dns,mta} are started
when they are not up, and stopped again then.
"""
import argparse
import collections
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
STATE = ROOT / "build" / "bench" / "cache"


def ctl(name, *args):
    return subprocess.run([str(FIX / name / "ctl"), *args], capture_output=True, text=True)


def addresses(count):
    out = ["bulk%04d@%s" % (i, d) for d in ("users.mta.test", "implicit.mta.test",
                                             "notls.mta.test") for i in range(1, 401)]
    out += ["nobody%04d@errors.mta.test" % i for i in range(500)]
    out += ["someone%05d@catchall.mta.test" % i for i in range(count - len(out))]
    return out[:count]


def connects(log, mark):
    with open(log, "rb") as f:
        f.seek(mark)
        return sum(1 for ln in f.read().decode("utf-8", "replace").splitlines()
                   if "/smtpd[" in ln and "]: connect from " in ln)


def one_run(smtpcode, addrs, db, host_pause, log):
    mark = os.path.getsize(log)
    verdicts, cached = collections.Counter(), 0
    t0 = time.monotonic()
    for r in smtpcode.verify(addrs, mail_from="bench@probe.test", helo="bench.test", port=2525,
                             dns_servers="127.0.0.1:5353", cache=db, host_pause=host_pause,
                             timeout=10, deadline=600):
        verdicts[r.verdict] += 1
        cached += r.cached
    secs = time.monotonic() - t0
    time.sleep(1.5)  # postlogd writes a moment later
    return secs, connects(log, mark), cached, verdicts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--host-pause", type=float, default=0.1)
    a = ap.parse_args()
    import smtpcode
    started = [n for n in ("dns", "mta") if ctl(n, "status").returncode != 0]
    for n in started:
        r = ctl(n, "start")
        if r.returncode:
            sys.exit("bench: %s fixture failed:\n%s%s" % (n, r.stdout, r.stderr))
    try:
        log = os.path.join(ctl("mta", "dir").stdout.strip(), "log", "maillog")
        STATE.mkdir(parents=True, exist_ok=True)
        db = STATE / "results.sqlite"
        for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            if p.exists():
                p.unlink()
        addrs = addresses(a.count)
        rows = []
        for label in ("cold", "warm"):
            secs, conns, cached, verdicts = one_run(smtpcode, addrs, str(db), a.host_pause, log)
            rows.append(secs)
            print("%-5s %6d addresses  %8.3f s  %9.0f addr/s  %4d connections (Postfix log)  "
                  "%5d from cache  %s" % (label, len(addrs), secs, len(addrs) / secs, conns,
                                          cached, dict(sorted(verdicts.items()))), flush=True)
        print("warm run %.0fx faster than the cold run (%.3f s vs %.3f s)"
              % (rows[0] / rows[1], rows[1], rows[0]))
    finally:
        for n in reversed(started):
            ctl(n, "stop")


if __name__ == "__main__":
    main()
