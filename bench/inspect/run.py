#!/usr/bin/env python3
"""bench/inspect: smtpcode.inspect throughput in C and from Python, each beside a baseline
measured in the same run.

    build/venv/bin/python bench/inspect/run.py [--seconds S] [--count N]

The address list is made here, seeded (so every run sees the same one): a sign-up list's mix
of free-provider mailboxes (70%), company and university domains (tests/vectors/
valid_domains.tsv, 15%), disposable domains sampled from the generated table (8%), typos
(tests/vectors/typos.tsv, 5%) and a few invalid addresses (2%); local parts are names, one in
twenty a role name. Baselines:
  C       smtpc_parse_address alone: the parse every inspection starts with
  Python  the least a Python program can do: split at the last "@", lower-case the domain,
          three `set` look-ups (disposable, free, role) -- no parsing, no subdomains, no typos
Goals (issue 13): C >= 2,000,000 addresses/s, Python >= 300,000 addresses/s.
Each line gives addresses per CPU second of the measuring process (the machine may be
shared), the CPU nanoseconds per address, and addresses per wall-clock second.
"""
import argparse
import os
import random
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.join(ROOT, "build", "bench")
LISTS_C = os.path.join(ROOT, "csrc", "inspect_lists.c")


def tables():
    """The generated tables as Python sets (read back from inspect_lists.c)."""
    text = open(LISTS_C, encoding="ascii").read()
    out = {}
    for name in ("disposable", "free", "role"):
        body = re.search(r"static const char %s_blob\[\d+\] =(.*?);\n" % name, text, re.S).group(1)
        out[name] = set(re.findall(r'"([^"]*)\\0"', body))
    return out


def vector_column(name, col):
    rows, cols = [], None
    with open(os.path.join(ROOT, "tests", "vectors", name), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if cols is None:
                cols = fields
                continue
            rows.append(fields[cols.index(col)])
    return rows


def make_addresses(count, t):
    rnd = random.Random(13)
    free = sorted(t["free"])
    popular = [l.strip() for l in open(os.path.join(ROOT, "tools", "lists", "popular.txt"))
               if l.strip() and not l.startswith("#")]
    disposable = rnd.sample(sorted(t["disposable"]), 5000)
    corp = vector_column("valid_domains.tsv", "domain")
    typos = vector_column("typos.tsv", "typed")
    roles = ["info", "sales", "support", "postmaster", "admin", "contact", "noreply"]
    first = ["taro", "hanako", "john", "mary", "wei", "anna", "lucas", "sofia", "yuki", "ken"]
    out = []
    for _ in range(count):
        r = rnd.random()
        if r < 0.70:
            dom = rnd.choice(popular) if rnd.random() < 0.8 else rnd.choice(free)
        elif r < 0.85:
            dom = rnd.choice(corp)
        elif r < 0.93:
            dom = rnd.choice(disposable)
        elif r < 0.98:
            dom = rnd.choice(typos)
        else:
            out.append(rnd.choice(["no-at.example.com", "a..b@example.com", "@gmail.com",
                                   "x@-bad-.com"]))
            continue
        local = rnd.choice(roles) if rnd.random() < 0.05 else "%s.%s%d" % (
            rnd.choice(first), rnd.choice(first), rnd.randrange(100))
        out.append("%s@%s" % (local, dom))
    return out


def build():
    os.makedirs(BUILD, exist_ok=True)
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j2", "--target", "smtpcode_static"], check=True,
                   stdout=subprocess.DEVNULL)
    libs = subprocess.run(["pkg-config", "--libs", "libuv", "libcares", "openssl", "libidn2"],
                          capture_output=True, text=True, check=True).stdout.split()
    exe = os.path.join(BUILD, "bench_inspect")
    subprocess.run(["cc", "-O2", "-std=c99", "-I", os.path.join(ROOT, "csrc"), "-o", exe,
                    os.path.join(HERE, "bench.c"), os.path.join(BUILD, "libsmtpcode.a")] + libs +
                   ["-lpthread"], check=True)
    return exe


def measure(fn, items, seconds):
    """(per CPU second, ns per address, per wall second): CPU time as the C part, since the
    machine may be shared; wall time beside it."""
    for a in items[:1000]:
        fn(a)
    n, t0, w0 = 0, time.process_time(), time.perf_counter()
    while True:
        for a in items:
            fn(a)
        n += len(items)
        t = time.process_time() - t0
        if t >= seconds:
            return n / t, t * 1e9 / n, n / (time.perf_counter() - w0)


def bench_python(addresses, t, seconds):
    try:
        import smtpcode
    except ImportError as e:
        print("Python: smtpcode is not importable here (%s); run with the venv's python" % e)
        return
    disposable, free, role = t["disposable"], t["free"], t["role"]
    inspect, error = smtpcode.inspect, smtpcode.AddressError

    def one(a):
        try:
            return inspect(a)
        except error:
            return None

    def one_mx(a):
        try:
            return inspect(a, mx=True)
        except error:
            return None

    def baseline(a):
        local, _, dom = a.rpartition("@")
        dom = dom.lower()
        return dom in disposable, local.lower() in role, dom in free

    print("Python %s, %d addresses, %.1f s each" % (sys.version.split()[0], len(addresses),
                                                    seconds))
    for name, fn in (("smtpcode.inspect(a)", one), ("smtpcode.inspect(a, mx=True)", one_mx),
                     ("baseline: rpartition + 3 set look-ups", baseline)):
        rate, ns, wall = measure(fn, addresses, seconds)
        print("  %-44s %10.0f /CPU-s %7.1f ns %10.0f /wall-s" % (name, rate, ns, wall))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--count", type=int, default=100000)
    a = ap.parse_args()
    t = tables()
    addresses = make_addresses(a.count, t)
    exe = build()
    path = os.path.join(BUILD, "inspect_addresses.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(addresses) + "\n")
    sys.stdout.flush()
    subprocess.run([exe, path, str(a.seconds)], check=True)
    sys.stdout.flush()
    bench_python(addresses, t, a.seconds)


if __name__ == "__main__":
    main()
