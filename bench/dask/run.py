#!/usr/bin/env python3
"""bench/dask/run.py -- smtpcode.dask throughput on a LocalCluster of 1, 2, 3 worker processes,
beside smtpcode.verify() in this process (the baseline: one machine, no Dask), same run.

Two worlds, loopback only:
  sink     the tests/load world: 22 Postfix smtp-sink servers (127.0.3.x:2525), 1,000 domains,
           dnsmasq on 127.0.0.1:5455. CPU-bound: the figure is what the prober itself costs.
  latency  HOSTS listeners of bench/probe/latency_server.py in one process (127.0.5.x:2525),
           every reply 50 ms after its command; DOMAINS domains spread over them by a dnsmasq
           on 127.0.0.1:5462. Each worker (and the baseline) gets the same session budget
           (--concurrency): the budget of one egress IP, which is what adding machines adds.

Usage: build/venv/bin/python bench/dask/run.py [--count 100000] [--latency-count 20000]
         [--workers 1,2,3] [--concurrency 16] [--hosts 24] [--only sink|latency]
Prints one line per run (addresses/s, seconds, results) and a Markdown table at the end.
Every run is checked: exactly one result per address, each decided by a server reply.
"""
import argparse
import asyncio
import importlib.machinery
import importlib.util
import os
import pathlib
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

import smtpcode        # noqa: E402
import smtpcode.dask as sdask   # noqa: E402


def _load(name, path):
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(mod)
    return mod


load = _load("load_run", ROOT / "tests" / "load" / "run")
latency_server = _load("latency_server", ROOT / "bench" / "probe" / "latency_server.py")

SENDER = dict(mail_from="probe@probe.test", helo="probe.test")
LAT_DNS_PORT = 5462
STATE = ROOT / "build" / "bench-dask"


def lat_ip(k):
    return "127.0.5.%d" % (k + 1)


class LatencyWorld:
    """HOSTS latency_server listeners on one asyncio loop in a thread, and their dnsmasq."""

    def __init__(self, hosts, domains, latency):
        self.hosts, self.domains, self.latency = hosts, domains, latency
        self.loop = asyncio.new_event_loop()
        self.stats = latency_server.Stats(None)
        self.servers = []

    def start(self):
        STATE.mkdir(parents=True, exist_ok=True)
        conf = STATE / "dnsmasq.conf"
        with open(conf, "w") as f:
            f.write("port=%d\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n"
                    "user=root\ncache-size=0\nlocal=/test/\n" % LAT_DNS_PORT)
            for k in range(self.hosts):
                f.write("host-record=mx%d.lat.test,%s\n" % (k, lat_ip(k)))
            for j in range(self.domains):
                f.write("mx-host=l%d.lat.test,mx%d.lat.test,10\n" % (j, j % self.hosts))
        self.dns = subprocess.Popen(["dnsmasq", "-k", "-C", str(conf), "--pid-file="])
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)

            async def up():
                for k in range(self.hosts):
                    self.servers.append(await self.loop.create_server(
                        lambda: latency_server.Session(self.loop, self.stats, self.latency, 0.0),
                        lat_ip(k), 2525, backlog=1024, reuse_address=True))
                ready.set()
            self.loop.run_until_complete(up())
            self.loop.run_forever()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        time.sleep(0.3)
        return {"dns_servers": "127.0.0.1:%d" % LAT_DNS_PORT, "port": 2525}

    def addresses(self, n):
        return ["u%d@l%d.lat.test" % (i, i % self.domains) for i in range(n)]

    def stop(self):
        for s in self.servers:
            self.loop.call_soon_threadsafe(s.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.dns.terminate()
        self.dns.wait(10)


def check(addrs, got_addresses, codes):
    """Exactly one result per address, each with a server reply."""
    if sorted(got_addresses) != sorted(addrs):
        raise SystemExit("bench: results do not match the input one for one")
    missing = sum(1 for c in codes if c is None or c != c)
    if missing:
        raise SystemExit("bench: %d results without a server reply" % missing)


def baseline(addrs, opts):
    t0 = time.monotonic()
    res = list(smtpcode.verify(addrs, **opts))
    took = time.monotonic() - t0
    check(addrs, [r.address for r in res], [r.reply.code if r.reply else None for r in res])
    return took


def on_cluster(addrs, opts, workers):
    import dask.dataframe as dd
    import distributed
    import pandas as pd
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as c, \
            distributed.Client(c) as client:
        client.wait_for_workers(workers)
        # the input in as many partitions as workers, already on the cluster, so that the
        # clock measures the probing, not shipping the list from this process
        ddf = dd.from_pandas(pd.DataFrame({"email": addrs}), npartitions=workers).persist()
        distributed.wait(ddf)
        out = sdask.verify(ddf, column="email", lanes=workers, **opts)
        t0 = time.monotonic()
        got = out.compute()
        took = time.monotonic() - t0
    print("   rows per worker: %s" % dict(got["worker"].value_counts()), flush=True)
    check(addrs, list(got["email"]), list(got["code"]))
    return took


def bench(name, addrs, opts, workers, rows):
    t = baseline(addrs, opts)
    print("%-8s baseline (verify, no Dask)  %8.0f addresses/s  %6.1f s" % (name, len(addrs) / t, t),
          flush=True)
    rows.append((name, "baseline", len(addrs), t))
    for w in workers:
        t = on_cluster(addrs, opts, w)
        print("%-8s LocalCluster %d worker%s    %8.0f addresses/s  %6.1f s"
              % (name, w, " " if w == 1 else "s", len(addrs) / t, t), flush=True)
        rows.append((name, "%d" % w, len(addrs), t))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=100000, help="addresses against smtp-sink")
    p.add_argument("--latency-count", type=int, default=20000, help="addresses at 50 ms")
    p.add_argument("--workers", default="1,2,3")
    p.add_argument("--concurrency", type=int, default=16,
                   help="sessions per worker (and for the baseline) in the latency world")
    p.add_argument("--hosts", type=int, default=24)
    p.add_argument("--domains", type=int, default=480)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--only", choices=("sink", "latency"))
    a = p.parse_args()
    workers = [int(w) for w in a.workers.split(",")]
    rows = []
    if a.only in (None, "sink"):
        procs = []
        load.STATE.mkdir(parents=True, exist_ok=True)
        try:
            load.start_world(1000, procs)
            opts = dict(SENDER, dns_servers="127.0.0.1:%d" % load.DNS_PORT, port=load.SMTP_PORT,
                        timeout=30, deadline=600)
            addrs = ["u%d@d%d.load.test" % (i, i % 1000) for i in range(a.count)]
            bench("sink", addrs, opts, workers, rows)
        finally:
            load.stop_world(procs)
    if a.only in (None, "latency"):
        world = LatencyWorld(a.hosts, a.domains, a.latency)
        try:
            env = world.start()
            opts = dict(SENDER, concurrency=a.concurrency, timeout=30, deadline=600, **env)
            bench("latency", world.addresses(a.latency_count), opts, workers, rows)
        finally:
            world.stop()
    print("\n| world | run | addresses | seconds | addresses/s | vs baseline |")
    print("|---|---|---:|---:|---:|---:|")
    base = {}
    for name, run, n, t in rows:
        if run == "baseline":
            base[name] = n / t
        label = "verify() in one process" if run == "baseline" else \
            "LocalCluster, %s worker%s" % (run, "" if run == "1" else "s")
        print("| %s | %s | %d | %.1f | %.0f | %.2fx |" % (name, label, n, t, n / t,
                                                         (n / t) / base[name]))


if __name__ == "__main__":
    main()
