"""Streaming: 10,000 bounces in an mbox of about 100 MB (generated in /tmp from the shared
vectors, each padded with a returned message body) are read by smtpcode.bounces() with a peak
RSS under 64 MiB -- the memory of one message at a time, not of the mailbox."""
import os
import subprocess
import sys

import vectors

MESSAGES = ["dsn-two-recipients.eml", "encoded-parts.eml", "japanese-words-cr.eml", "bad-part.eml"]
RECORDS = {"dsn-two-recipients.eml": 2, "encoded-parts.eml": 1, "japanese-words-cr.eml": 1,
           "bad-part.eml": 1}  # as bounces.tsv says


def test_100mb_mbox_under_64mib(tmp_path):
    msgs = []
    for n in MESSAGES:
        with open(os.path.join(vectors.DIR, "bounce", n), "rb") as f:
            msgs.append((n, f.read().replace(b"\r\n", b"\n").replace(b"\r", b"\n")))
    pad = b"\n".join([b"returned body line, quoted as the bounce returned it ......................"] * 130)
    path = tmp_path / "big.mbox"
    want = 0
    with open(path, "wb") as f:
        for i in range(10000):
            name, m = msgs[i % len(msgs)]
            want += RECORDS[name]
            f.write(b"From MAILER-DAEMON Mon Nov  6 10:00:00 2023\n" + m.rstrip(b"\n") + b"\n" +
                    pad + b"\n>From quoted line\n\n")
    size = os.path.getsize(path)
    assert 90e6 < size < 130e6
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so it would count pytest's own
    # memory; VmHWM is the peak of this process's own address space
    code = ("import smtpcode\n"
            "n = sum(1 for b in smtpcode.bounces(%r) if b.kind == 'bounce')\n"
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
            "print(n, hwm)\n" % str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    n, maxrss_kib = map(int, out.stdout.split())
    assert n == want
    assert maxrss_kib < 64 * 1024, "peak RSS %.1f MiB for a %.0f MB mbox" % (maxrss_kib / 1024, size / 1e6)
