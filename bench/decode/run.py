#!/usr/bin/env python3
"""bench/decode: decode+classify throughput of the C core, the Python binding and the Lua
binding over the corpus replayed many times, each beside a baseline measured in the same run.

    python3 bench/decode/run.py [--seconds S] [--corpus PATH]

Corpus: $SMTPCODE_CORPUS, else ../shared/corpus/sisimai-dev.tsv beside the repo, else the
held-out replies of tests/vectors/classify.tsv. Builds what it needs under build/bench/
(cmake, Release). Baselines:
  C       lower-case the text, strstr() once per phrase of rules/phrases.def (first hit wins)
  Python  plain-Python reply parsing with `re` (prefix, code, status, continuation lines) and
          a substring test per phrase (one big alternation regex was 1000x slower still)
  Lua     the same parsing with Lua patterns and string.find per phrase
Goals on one core: C >= 1,000,000/s, Python >= 300,000/s, Lua >= 500,000/s. Each figure is
printed per CPU second of the measuring process (the one to compare with a per-core goal on a
shared machine) and per wall second.
"""
import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.join(ROOT, "build", "bench")
PHRASES_DEF = os.path.join(ROOT, "csrc", "rules", "phrases.def")
COLS = ["reply_code", "status", "command", "rhost", "diagnostic"]


def find_corpus(arg):
    for p in (arg, os.environ.get("SMTPCODE_CORPUS"),
              os.path.join(ROOT, "..", "shared", "corpus", "sisimai-dev.tsv")):
        if p and os.path.isdir(p):
            p = os.path.join(p, "sisimai-dev.tsv")
        if p and os.path.exists(p):
            return os.path.abspath(p), None
    # fall back to the held-out vectors, rewritten in the corpus' columns
    src = os.path.join(ROOT, "tests", "vectors", "classify.tsv")
    tmp = tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False, encoding="utf-8")
    tmp.write("\t".join(COLS) + "\n")
    with open(src, encoding="utf-8") as f:
        rows = [l.rstrip("\n").split("\t") for l in f if not l.startswith("#")]
    head = rows[0]
    for r in rows[1:]:
        d = dict(zip(head, r))
        tmp.write("\t".join([d["code"] if d["code"] != "0" else "", d["status"], d["command"],
                             d["host"], d["text"]]) + "\n")
    tmp.close()
    return tmp.name, "no corpus found: using the held-out vectors instead"


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def build():
    os.makedirs(BUILD, exist_ok=True)
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                   stdout=subprocess.DEVNULL)
    targets = ["smtpcode_static"]
    have = subprocess.run(["cmake", "--build", BUILD, "--target", "help"], capture_output=True,
                          text=True).stdout
    for t in ("lua_smtpcode", "luajit_smtpcode"):
        if t in have:
            targets.append(t)
    subprocess.run(["cmake", "--build", BUILD, "-j2", "--target"] + targets, check=True,
                   stdout=subprocess.DEVNULL)
    libs = subprocess.run(["pkg-config", "--libs", "libuv", "libcares", "openssl", "libidn2"],
                          capture_output=True, text=True, check=True).stdout.split()
    exe = os.path.join(BUILD, "bench_decode")
    subprocess.run(["cc", "-O2", "-std=c99", "-I", os.path.join(ROOT, "csrc"), "-o", exe,
                    os.path.join(HERE, "bench.c"), os.path.join(BUILD, "libsmtpcode.a")] + libs +
                   ["-lpthread"], check=True)
    return exe


# ---- Python -----------------------------------------------------------------------------------

def python_baseline_factory():
    phrases = []
    with open(PHRASES_DEF, encoding="utf-8") as f:
        for line in f:
            m = re.match(r'PHRASE\((\w+), \d, "(.*)"\)', line)
            if m:
                phrases.append((m.group(2), m.group(1).lower()))
    prefix = re.compile(r"^\s*smtp;\s*", re.I)
    line_re = re.compile(r"^(\d{3})([ -]?)(.*)$")
    status_re = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\s*(.*)$")

    def baseline(code, status, text):
        text = prefix.sub("", text)
        lines = []
        for l in re.split(r"\r\n|\r|\n", text):
            m = line_re.match(l)
            if m:
                code = code or int(m.group(1))
                l = m.group(3)
            m = status_re.match(l)
            if m:
                status = status or m.group(1)
                l = m.group(2)
            lines.append(l)
        low = " ".join(lines).lower()
        for p, reason in phrases:
            if p in low:
                return reason, code, status
        return "undefined", code, status
    return baseline, len(phrases)


def measure(fn, args, seconds):
    """Calls per CPU second of this process (time.process_time) and per wall second: on a
    shared machine the CPU figure is the one to hold against a per-core goal."""
    for a in args:
        fn(*a)
    n, w0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        for a in args:
            fn(*a)
        n += len(args)
        c = time.process_time() - c0
        if c >= seconds:
            w = time.perf_counter() - w0
            return n / c, n / w, c * 1e9 / n


RATE = "  %-32s %10.0f calls/CPU-s %10.0f calls/s wall %8.1f ns/call (CPU)"


def bench_python(rows, seconds):
    try:
        import smtpcode
    except ImportError as e:
        print("Python: smtpcode is not importable here (%s); run with the venv's python" % e)
        return
    args = []
    for r in rows:
        kw = {k: v for k, v in (("command", r["command"]), ("host", r["rhost"])) if v}
        args.append((int(r["reply_code"]) if r["reply_code"] else None, r["status"] or None,
                     r["diagnostic"], kw))
    cl = smtpcode.classify
    baseline, nphr = python_baseline_factory()
    print("Python %s, %d rows replayed for %.1f CPU-s each (%d phrases)"
          % (sys.version.split()[0], len(rows), seconds, nphr))
    print(RATE % (("smtpcode.classify (binding)",) +
                  measure(lambda c, s, t, kw: cl(c, s, t, **kw), args, seconds)))
    print(RATE % (("baseline: re parsing + phrases",) +
                  measure(lambda c, s, t, kw: baseline(c, s, t), args, seconds)))


def bench_lua(corpus, seconds):
    for interp, sub in (("lua5.4", "lua"), ("luajit", "luajit")):
        mod = os.path.join(BUILD, sub, "smtpcode.so")
        if not shutil.which(interp) or not os.path.exists(mod):
            print("%s: not available (%s)" % (interp, mod))
            continue
        env = dict(os.environ, LUA_CPATH=os.path.join(BUILD, sub, "?.so") + ";;")
        subprocess.run([interp, os.path.join(HERE, "bench.lua"), corpus, PHRASES_DEF, str(seconds)],
                       env=env, check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--corpus")
    a = ap.parse_args()
    corpus, note = find_corpus(a.corpus)
    if note:
        print(note)
    exe = build()
    print("corpus: %s" % corpus)
    sys.stdout.flush()
    subprocess.run([exe, corpus, str(a.seconds)], check=True)
    bench_python(load(corpus), a.seconds)
    sys.stdout.flush()
    bench_lua(corpus, a.seconds)


if __name__ == "__main__":
    main()
