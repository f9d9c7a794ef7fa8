#!/usr/bin/env python3
"""bench/bounce/hostile.py: does the bounce parser's cost grow with the input, or faster?

    build/venv/bin/python bench/bounce/hostile.py [--corpus DIR] [--small K] [--factor F]

A hostile or merely odd bounce (a field folded over 100,000 lines, a transcript of thousands of
RCPTs, a list of recipients longer than the record limit) must cost time and memory in
proportion to its size. Each shape is parsed at two sizes, the second F times the first; the
figure printed is the growth of the cost per octet, (t_big / t_small) / (size_big / size_small):
about 1 when the cost is linear, about F when it is quadratic. Baseline in the same run: the
parser's cost per MB over the corpus as it is.

Shapes: built ones (folded fields and headers, many recipients in a DSN and in qmail's format,
encoded words, a Postfix transcript with many RCPTs, HTML bodies with unclosed tags, long lists
and announcements for the last-resort reader), then every
corpus message with each kind of line repeated until it fills K KB, and F times that (lines with an address, indented lines, blank lines, lines with a
colon, lines starting with a reply code). The worst growth is printed, of the inputs that take
10 ms or more at the big size (below that there is no cost to speak of, and too little to time);
the run fails (exit 1) when one is over 3, which a linear parser does not reach. Times are CPU
seconds of this process.
"""
import argparse
import glob
import os
import resource
import sys
import time

import smtpcode

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

HEAD = b"From: MAILER-DAEMON@example.org\nTo: a@example.org\n"


def dsn(blocks, top=b""):
    return (HEAD + b"Subject: Undelivered\n" + top + b"MIME-Version: 1.0\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
            b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
            + blocks + b"\n--B--\n")


def block(i):
    return (b"Final-Recipient: rfc822; u%d@example.com\nAction: failed\nStatus: 5.1.1\n"
            b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n" % i)


SHAPES = {
    "DSN field folded over n lines": lambda n: dsn(
        b"Final-Recipient: rfc822; u@example.com\nAction: failed\nStatus: 5.1.1\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown" + b"\n more" * n + b"\n\n"),
    "header folded over n lines": lambda n: dsn(block(0), b"X-Long: a" + b"\n b" * n + b"\n"),
    "n recipients, RFC 3464": lambda n: dsn(b"".join(block(i) for i in range(n))),
    "n recipients, qmail": lambda n: (
        HEAD + b"Subject: failure notice\n\nHi. This is the qmail-send program at example.org.\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\n\n" +
        b"".join(b"<u%d@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n" % i
                 for i in range(n))),
    "Postfix reply folded over n lines": lambda n: (
        HEAD + b"Subject: Undelivered Mail Returned to Sender\n\n"
        b"This is the mail system at host mx.example.org.\n\n<u@example.com>: host "
        b"mx.example.com[192.0.2.1] said: 550 5.1.1 user unknown" + b"\n    more words" * n +
        b" (in reply to RCPT TO command)\n"),
    # a bounce that comes as HTML alone (csrc/bounce_html.c): '<' that opens no tag, and tags
    # with no end, must not make the reader look to the end of the part again for each
    "HTML body, n '<' and no '>'": lambda n: (
        HEAD + b"Subject: failure notice\nContent-Type: text/html\n\n<p>" + b"<a\n" * n),
    "HTML body, n tags open to one '>' at the end": lambda n: (
        HEAD + b"Subject: failure notice\nContent-Type: text/html\n\n" + b"<b x@y\n" * n + b">\n"),
    "HTML body, n scripts never closed": lambda n: (
        HEAD + b"Subject: failure notice\nContent-Type: text/html\n\n" + b"<script>x\n" * n),
    # the last-resort reader (csrc/bounce_mta_generic.c): a long list with no words of its own
    # after a long preamble (each record takes the preamble), and announcements on every line
    "n recipients, no format, long preamble": lambda n: (
        HEAD + b"Subject: Returned mail\n\n" + b"The destination was not reachable.\n" * n +
        b"The following recipients did not receive your message:\n" +
        b"".join(b"  <u%d@example.com>\n" % i for i in range(n))),
    # Sendmail's list of fatal errors above one transcript that names nobody: every recipient
    # takes the transcript's words, read once
    "n recipients, Sendmail fatal list": lambda n: (
        HEAD + b"Subject: Returned mail\n\n   ----- The following addresses had permanent fatal "
        b"errors -----\n" + b"".join(b"u%d@example.com\n" % i for i in range(n)) +
        b"\n   ----- Transcript of session follows -----\n" + b"   hop text\n" * n +
        b"554 Too many hops\n"),
    # DSN blocks without Diagnostic-Code beside a long text that names none of them: each
    # record looks for its recipient in the text (csrc/bounce.c smtpc__bfind_rcpt, budgeted)
    "n recipients, RFC 3464 without Diagnostic-Code, long text": lambda n: (
        HEAD + b"Subject: Undelivered\nMIME-Version: 1.0\nContent-Type: multipart/report; "
        b"report-type=delivery-status; boundary=B\n\n--B\nContent-Type: text/plain\n\n" +
        b"The mail system could not deliver your message.\n" * n +
        b"\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n" +
        b"".join(b"Final-Recipient: rfc822; u%d@example.com\nAction: failed\nStatus: 5.0.0\n\n" % i
                 for i in range(n)) + b"--B--\n"),
    "n announcements, no format": lambda n: (
        HEAD + b"Subject: Returned mail\n\n" +
        b"".join(b"Your message to <u%d@example.com> could not be delivered to the following "
                 b"recipients did not receive\n" % i for i in range(n))),
}


def cpu(fn, data, least=0.02):
    """CPU seconds of one fn(data), repeated until `least` seconds have passed."""
    runs, t0 = 0, time.process_time()
    while True:
        try:
            fn(data)
        except smtpcode.BounceError:
            pass
        except MemoryError:  # under the address-space cap main() sets: no linear parser hits it
            return float("inf")
        runs += 1
        t = time.process_time() - t0
        if t >= least:
            return t / runs


def growth(make, small, factor):
    """(growth of the cost per octet from make(small) to make(small * factor), size, seconds)"""
    a, b = make(small), make(small * factor)
    ta, tb = cpu(smtpcode.parse_bounce, a, 0.01), cpu(smtpcode.parse_bounce, b, 0.01)
    if tb == float("inf"):
        return tb, len(b), tb
    return (tb / ta) / (len(b) / len(a)), len(b), tb


def amplify(data, k, keep):
    out = []
    for ln in data.split(b"\n"):
        out.append(ln)
        if keep(ln):
            out.extend([ln] * k)
    return b"\n".join(out)


LINES = {
    "address lines": lambda ln: b"@" in ln and not ln[:1].isspace(),
    "indented lines": lambda ln: ln[:1] in (b" ", b"\t"),
    "blank lines": lambda ln: ln.strip() == b"",
    "colon lines": lambda ln: b":" in ln and not ln[:1].isspace() and b"@" not in ln,
    "reply-code lines": lambda ln: ln[:3].isdigit(),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus")
    ap.add_argument("--small", type=int, default=100,
                    help="KB of repeated lines (and hundreds of built items) at the small size")
    ap.add_argument("--factor", type=int, default=8)
    a = ap.parse_args()
    # memory that grows faster than the input shows as MemoryError (an infinite growth), not as
    # this process killed by the kernel
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    corpus = a.corpus or os.path.join(ROOT, "..", "shared", "corpus", "bounces")
    files = sorted(glob.glob(os.path.join(corpus, "*.eml")))
    if not files:
        files = sorted(glob.glob(os.path.join(ROOT, "tests", "vectors", "bounce", "*")))
    msgs = [open(p, "rb").read() for p in files]
    t = sum(cpu(smtpcode.parse_bounce, m, 0.001) for m in msgs)
    print("baseline: %d corpus messages, %.1f ms per MB" % (len(msgs), 1e3 * t / (sum(map(len, msgs)) / 1e6)))
    worst = 0.0
    for name, make in SHAPES.items():
        g, size, tb = growth(make, a.small * 1000, a.factor)
        worst = max(worst, g)
        print("%-36s growth %5.2f  (%.1f MB in %.3f s)" % (name, g, size / 1e6, tb))
        if g == float("inf"):
            print("out of memory under a 4 GiB cap: memory grows faster than the input")
            return 1
    for kind, keep in LINES.items():
        top = (0.0, "-", 0.0, 0.0)
        for path, m in zip(files, msgs):
            kept = sum(len(ln) + 1 for ln in m.split(b"\n") if keep(ln))
            if not kept:
                continue
            # repeated often enough that the small input has a.small KB of such lines
            small = max(1, a.small * 1000 // kept)
            g, size, tb = growth(lambda k: amplify(m, k, keep), small, a.factor)
            # under 10 ms for the big input is no cost to speak of (and too short to time well;
            # an input refused early at a limit costs the same at any size)
            if tb >= 0.01 and g > top[0]:
                top = (g, os.path.basename(path), size / 1e6, tb)
        worst = max(worst, top[0])
        print("corpus, %-28s worst growth %5.2f  (%s, %.1f MB in %.3f s)" % (kind, *top))
    print("worst growth %.2f (1 = linear, %d = quadratic)" % (worst, a.factor))
    return 1 if worst > 3 else 0


if __name__ == "__main__":
    sys.exit(main())
