#!/usr/bin/env python3
"""bench/bounce: messages per second of the bounce parser in C and through Python, beside Python's
`email` package reading the same files in the same run; then the memory of reading a ~100 MB
mbox of 10,000 bounces (generated in /tmp) in C and through smtpcode.bounces.

    build/venv/bin/python bench/bounce/run.py [--seconds S] [--runs N] [--corpus DIR] [--no-memory]

Corpus: DIR, $SMTPCODE_CORPUS/bounces, ../shared/corpus/bounces beside the repo, else the
messages of tests/vectors/bounce. Builds the C bench under build/bench/ (cmake, Release).

Sisimai itself (Perl, Debian's libsisimai-perl, installed by tests/install-deps) reads the same
files in the same run (bench/bounce/sisimai.pl, each message given as a string), when Perl can
load it; it is the tool this parser is measured against in the issue. Debian ships Sisimai 4.25;
Sisimai 5 is said to be faster, so that ratio leans our way by its difference.

Baseline for the goal's ratio: the `email` package doing
the work the parser's records hold, as a current user writes it --
email.message_from_bytes(data, policy=email.policy.default) (the policy the documentation
recommends for new code; the call's own default, compat32, is kept for old code), walk() over
the MIME tree, and for each message/delivery-status part the per-message fields
(Reporting-MTA, Arrival-Date) and every per-recipient block's Final-Recipient,
Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code and Last-Attempt-Date read as
strings; and the returned message's Message-ID, Subject, From and To (message/rfc822 or
text/rfc822-headers). Still less than the parser does: no charsets of text parts, no
classification, no non-standard bodies (qmail, Exim, ...), so the ratio leans the baseline's
way. Printed beside it, so the policy's share is plain:
  - the same work with compat32;
  - the figure this bench printed before (compat32; Final-Recipient, Status and
    Diagnostic-Code only);
  - a parse alone (message_from_bytes, compat32): no walk, no fields.
The goal's ratio is taken against the first (equivalent work, current policy).

Rates are per CPU second of the measuring process (time.process_time, CLOCK_PROCESS_CPUTIME_ID:
the machine may be shared), with the wall-clock rate beside each. With --runs N (default 3)
every figure is measured N times and the median printed. Goals on one core: C >= 20,000 msg/s
and >= 50x the `email` baseline; the 100 MB mbox under 64 MiB peak RSS.
"""
import argparse
import email
import email.message
import email.policy
import os
import random
import re
import statistics
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


RECIPIENT_FIELDS = ("Final-Recipient", "Original-Recipient", "Action", "Status", "Remote-MTA",
                    "Diagnostic-Code", "Last-Attempt-Date")
ORIGINAL_FIELDS = ("Message-ID", "Subject", "From", "To")


def email_equivalent(data, policy=email.policy.default):
    """The parser's records from the `email` package: per-recipient and per-message DSN fields
    and the returned message's headers, all read as strings."""
    msg = email.message_from_bytes(data, policy=policy)
    out, per_msg, orig = [], None, None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            blocks = part.get_payload() or []
            if blocks and isinstance(blocks[0], email.message.Message):
                per_msg = (str(blocks[0].get("Reporting-MTA", "")),
                           str(blocks[0].get("Arrival-Date", "")))
            for block in blocks[1:]:
                if isinstance(block, email.message.Message) and block.get("Final-Recipient"):
                    out.append([str(block.get(f, "")) for f in RECIPIENT_FIELDS])
        elif orig is None and ctype in ("message/rfc822", "text/rfc822-headers"):
            if part.is_multipart():
                o = part.get_payload(0)
            else:
                raw = part.get_payload(decode=True) or b""
                o = email.message_from_bytes(raw, policy=policy)
            orig = [str(o.get(h, "")) for h in ORIGINAL_FIELDS]
    return out, per_msg, orig


def email_equivalent_compat32(data):
    return email_equivalent(data, email.policy.compat32)


def email_before(data):
    """The baseline this bench printed before: compat32, three fields of each block."""
    msg = email.message_from_bytes(data)
    out = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload() or []:
                if isinstance(block, email.message.Message) and block.get("Final-Recipient"):
                    out.append((block.get("Final-Recipient"), block.get("Status"),
                                block.get("Diagnostic-Code")))
    return out


def email_parse_only(data):
    return email.message_from_bytes(data)


def measure(fn, msgs, seconds):
    """(messages per CPU second, messages per wall second); CPU time is the process's own, as
    the machine may be shared."""
    done, t0, w0 = 0, time.process_time(), time.perf_counter()
    while True:
        for m in msgs:
            fn(m)
        done += len(msgs)
        t = time.process_time() - t0
        if t >= seconds:
            return done / t, done / (time.perf_counter() - w0)


def run_c(exe, files, seconds):
    out = subprocess.run([exe, "--seconds", str(seconds)] + files, check=True,
                         capture_output=True, text=True).stdout
    m = re.search(r": (\d+) msg/s.*wall [\d.]+ s: (\d+) msg/s", out)
    return out, (float(m.group(1)), float(m.group(2)))


def run_sisimai(files, seconds):
    """(messages per CPU second, per wall second) of Sisimai, or None when Perl cannot load it."""
    if subprocess.run(["perl", "-MSisimai", "-e", "1"], capture_output=True).returncode != 0:
        return None
    out = subprocess.run(["perl", os.path.join(HERE, "sisimai.pl"), str(seconds)] + files,
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[1]), float(out[2])


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
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=3)
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
    import smtpcode
    rows = [("C parser", None),
            ("Python smtpcode.parse_bounce", smtpcode.parse_bounce),
            ("baseline: email, equivalent work, policy.default", email_equivalent),
            ("  same work, compat32", email_equivalent_compat32),
            ("  before: compat32, 3 DSN fields", email_before),
            ("  parse only, compat32", email_parse_only)]
    got = {name: [] for name, _ in rows}
    for r in range(a.runs):
        for name, fn in rows:
            if fn is None:
                out, rate = run_c(exe, files, a.seconds)
                if r == 0:
                    sys.stdout.write(out)
            else:
                rate = measure(fn, msgs, a.seconds)
            got[name].append(rate)
        sis = run_sisimai(files, a.seconds)
        if sis:
            got.setdefault("Sisimai (Perl)", []).append(sis)
    med = {name: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for name, v in got.items()}
    print("median of %d run(s), messages/s:  per CPU second   per wall second" % a.runs)
    for name, _ in rows:
        print("  %-50s %9.0f %9.0f" % (name, med[name][0], med[name][1]))
    sis = "Sisimai (Perl)"
    if sis in med:
        print("  %-50s %9.0f %9.0f" % (sis, med[sis][0], med[sis][1]))
    c = med["C parser"][0]
    py = med["Python smtpcode.parse_bounce"][0]
    print("C is %.0fx the baseline (goal >= 50x; C goal >= 20,000 msg/s); Python binding %.0fx"
          % (c / med[rows[2][0]][0], py / med[rows[2][0]][0]))
    if sis in med:
        print("C is %.0fx Sisimai (Perl %s); Python binding %.0fx" % (
            c / med[sis][0], subprocess.run(["perl", "-MSisimai", "-e", "print Sisimai->version"],
                                            capture_output=True, text=True).stdout, py / med[sis][0]))
    else:
        print("Sisimai: not measured (perl -MSisimai fails; tests/install-deps installs it)")
    print("against the others (CPU): %s" % "; ".join(
        "%.0fx %s" % (c / med[name][0], name.strip()) for name, _ in rows[3:]))
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
