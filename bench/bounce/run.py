#!/usr/bin/env python3
"""bench/bounce: messages per second of the bounce parser in C and through Python, beside a
parse of the same files with Python's `email` package in the same run; then the memory of
reading a ~100 MB mbox of 10,000 bounces (generated in /tmp) in C and through smtpcode.bounces.

    build/venv/bin/python bench/bounce/run.py [--seconds S] [--corpus DIR] [--no-memory]

Corpus: DIR, $SMTPCODE_CORPUS/bounces, ../shared/corpus/bounces beside the repo, else the
messages of tests/vectors/bounce. Builds the C bench under build/bench/ (cmake, Release).
Baseline (Sisimai cannot run here: no Perl/Ruby modules installed): email.message_from_bytes
(compat32, the fastest policy), walk() over the MIME tree, and for each message/delivery-status
part the Final-Recipient, Status and Diagnostic-Code of every block -- less work than the
parser does (no charsets, no classification, no non-standard bodies), so the ratio is modest
on the parser's side.
All rates are per CPU second of one process (the machine may be shared). Goals on one core: C >= 20,000 msg/s, and >= 50x the `email` baseline; the 100 MB mbox under
64 MiB peak RSS.
"""
import argparse
import email
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.join(ROOT, "build", "bench")


def find_corpus(arg):
    for p in (arg, os.environ.get("SMTPCODE_CORPUS") and
              os.path.join(os.environ["SMTPCODE_CORPUS"], "bounces"),
              os.path.join(ROOT, "..", "shared", "corpus", "bounces")):
        if p and os.path.isdir(p):
            return os.path.abspath(p)
    return os.path.join(ROOT, "tests", "vectors", "bounce")


def build():
    os.makedirs(BUILD, exist_ok=True)
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j2", "--target", "smtpcode_static"], check=True,
                   stdout=subprocess.DEVNULL)
    libs = subprocess.run(["pkg-config", "--libs", "libuv", "libcares", "openssl", "libidn2"],
                          capture_output=True, text=True, check=True).stdout.split()
    exe = os.path.join(BUILD, "bench_bounce")
    subprocess.run(["cc", "-O2", "-std=c99", "-I", os.path.join(ROOT, "csrc"), "-o", exe,
                    os.path.join(HERE, "bench.c"), os.path.join(BUILD, "libsmtpcode.a")] + libs +
                   ["-lpthread"], check=True)
    return exe


def email_baseline(data):
    msg = email.message_from_bytes(data)
    out = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload() or []:
                if isinstance(block, email.message.Message) and block.get("Final-Recipient"):
                    out.append((block.get("Final-Recipient"), block.get("Status"),
                                block.get("Diagnostic-Code")))
    return out


def measure(fn, msgs, seconds):
    """Messages per CPU second (process time: the machine may be shared)."""
    done, t0 = 0, time.process_time()
    while True:
        for m in msgs:
            fn(m)
        done += len(msgs)
        t = time.process_time() - t0
        if t >= seconds:
            return done / t


def make_mbox(path, msgs, size=100 << 20, count=10000):
    """count bounces (corpus messages, padded with a returned body) totalling about size."""
    rnd = random.Random(11)
    per = size // count
    with open(path, "wb") as f:
        for i in range(count):
            m = rnd.choice(msgs).replace(b"\r\n", b"\n")
            pad = max(0, per - len(m) - 80)
            body = b"\n".join(b">From x" if k % 50 == 0 else b"x" * 75 for k in range(pad // 76))
            f.write(b"From MAILER-DAEMON Mon Nov  6 10:00:00 2023\n")
            f.write(b"\n".join(b">" + ln if ln.startswith(b"From ") else ln for ln in m.split(b"\n")))
            f.write(b"\n" + body + b"\n\n")
    return os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--corpus")
    ap.add_argument("--no-memory", action="store_true")
    a = ap.parse_args()
    corpus = find_corpus(a.corpus)
    files = sorted(os.path.join(corpus, n) for n in os.listdir(corpus) if n.endswith(".eml"))
    msgs = []
    for p in files:
        with open(p, "rb") as f:
            msgs.append(f.read())
    exe = build()
    print("corpus: %s (%d messages)" % (corpus, len(files)))
    sys.stdout.flush()
    c = subprocess.run([exe, "--seconds", str(a.seconds)] + files, check=True, capture_output=True,
                       text=True).stdout
    sys.stdout.write(c)
    c_rate = float(c.split(": ")[2].split(" msg/s")[0]) if " msg/s" in c else 0.0
    import smtpcode
    py_rate = measure(smtpcode.parse_bounce, msgs, a.seconds)
    base = measure(email_baseline, msgs, a.seconds)
    print("Python smtpcode.parse_bounce: %.0f msg/s" % py_rate)
    print("baseline Python email package (parse + delivery-status fields): %.0f msg/s" % base)
    print("C is %.0fx the baseline (goal >= 50x; C goal >= 20,000 msg/s); Python binding %.0fx"
          % (c_rate / base, py_rate / base))
    if a.no_memory:
        return
    path = "/tmp/smtpcode-bench-bounces.mbox"
    size = make_mbox(path, msgs)
    print("mbox: %s, %.1f MB" % (path, size / 1e6))
    sys.stdout.flush()
    subprocess.run([exe, "--mbox", path], check=True)
    code = ("import smtpcode,time\nt=time.perf_counter();n=sum(1 for _ in "
            "smtpcode.bounces(%r, on_error=lambda *a: None))\nhwm=[l.split()[1] for l in "
            "open('/proc/self/status') if l.startswith('VmHWM:')][0]\nprint('Python bounces(): "
            "%%d records in %%.2f s; peak RSS %%.1f MiB' %% (n, time.perf_counter()-t, "
            "int(hwm)/1024))" % path)
    subprocess.run([sys.executable, "-c", code], check=True)
    os.remove(path)


if __name__ == "__main__":
    main()
