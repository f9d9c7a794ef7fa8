"""`smtpcode verify` against the loopback world (dnsmasq + Postfix, tests/fixtures): formats,
CSV carry-through, ordering, progress bar on a terminal only, summary, exit codes, Ctrl-C.
Expected verdicts come from the fixtures' configuration and the verdict rules of issue 5.
"""
import csv
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid

import pytest

import smtpcode
from smtpcode.cli.formats import FIELDS

pytestmark = pytest.mark.skipif(not hasattr(smtpcode, "verify"),
                                reason="smtpcode.verify (the probe engine) is not built")

DNS = "127.0.0.1:5353"
BASE = ["--from", "probe@probe.test", "--helo", "probe.test", "--port", "2525", "--dns", DNS,
        "--timeout", "5", "--deadline", "60"]

# (address, verdict, reason) by the world's configuration
CASES = [
    ("alice@users.mta.test", "deliverable", "delivered"),
    ("nobody@users.mta.test", "undeliverable", "userunknown"),
    ("full@users.mta.test", "risky", "mailboxfull"),
    ("anyone@catchall.mta.test", "risky", "delivered"),
    ("alice@down.mta.test", "unknown", "networkerror"),
    ("alice@nullmx.mta.test", "undeliverable", "notaccept"),
    ("alice@nxdomain.mta.test", "undeliverable", "hostunknown"),
    ("not-an-address", "undeliverable", "syntaxerror"),
]


def cli(*args, stdin=None, timeout=90, **kw):
    return subprocess.run([sys.executable, "-m", "smtpcode", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, **kw)


def verify(*args, stdin=None):
    return cli("verify", *args, *BASE, stdin=stdin)


def jsonl(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_jsonl_one_record_per_address_with_the_result_fields(mail_world):
    text = "# a comment\n\n" + "\n".join("  %s  " % a for a, _, _ in CASES) + "\n"
    r = verify("-", "--format", "jsonl", stdin=text)
    assert r.returncode == 0, r.stderr
    recs = jsonl(r.stdout)
    assert sorted(d["address"] for d in recs) == sorted(a for a, _, _ in CASES)
    got = {d["address"]: d for d in recs}
    for address, verdict, reason in CASES:
        assert (got[address]["verdict"], got[address]["reason"]) == (verdict, reason), address
    for d in recs:
        assert list(d) == list(FIELDS)
    alice, nobody = got["alice@users.mta.test"], got["nobody@users.mta.test"]
    assert (alice["code"], alice["mx"], alice["tls"], alice["catch_all"]) == (
        250, "mx1.mta.test", True, False)
    assert (nobody["code"], nobody["status"]) == (550, "5.1.1")
    assert "User unknown" in nobody["text"]
    assert got["anyone@catchall.mta.test"]["catch_all"] is True
    bad = got["not-an-address"]
    assert bad["code"] is None and bad["mx"] is None
    assert 0 < alice["duration"] < 60


def test_csv_columns_are_carried_through(mail_world, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,email,reason,note\n'
                   '1,alice@users.mta.test,signup,"says ""hi"", twice"\n'
                   '2,nobody@users.mta.test,import,\n'
                   '3,alice@users.mta.test,again,duplicate of 1\n'
                   '4,,blank,no address\n'
                   '5,bad address,typo,Ünïcode ✓\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    r = verify(str(src), "--column", "email", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""                    # records went to the file
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
        f.seek(0)
        header = next(csv.reader(f))
    assert header == ["id", "email", "input_reason", "note"] + list(FIELDS)
    by_id = {row["id"]: row for row in rows}
    assert sorted(by_id) == ["1", "2", "3", "4", "5"]
    expect = {"1": ("alice@users.mta.test", "signup", 'says "hi", twice', "deliverable"),
              "2": ("nobody@users.mta.test", "import", "", "undeliverable"),
              "3": ("alice@users.mta.test", "again", "duplicate of 1", "deliverable"),
              "4": ("", "blank", "no address", "undeliverable"),
              "5": ("bad address", "typo", "Ünïcode ✓", "undeliverable")}
    for i, (email, reason_in, note, verdict) in expect.items():
        row = by_id[i]
        assert (row["email"], row["address"], row["input_reason"], row["note"],
                row["verdict"]) == (email, email, reason_in, note, verdict), row
    assert by_id["2"]["reason"] == "userunknown" and by_id["2"]["code"] == "550"
    assert by_id["1"]["tls"] == "true" and by_id["1"]["catch_all"] == "false"
    assert by_id["5"]["reason"] == "syntaxerror" and by_id["5"]["mx"] == ""


def test_ordered_keeps_input_order(mail_world):
    # syntax errors finish at once, the network ones later: --ordered must undo that
    addrs = ["alice@users.mta.test", "bad one", "nobody@users.mta.test", "bad two",
             "alice@users.mta.test", "alice@nxdomain.mta.test", "bad three"]
    r = verify("-", "--format", "jsonl", "--ordered", stdin="\n".join(addrs))
    assert r.returncode == 0, r.stderr
    recs = jsonl(r.stdout)
    assert [d["address"] for d in recs] == addrs
    assert [d["verdict"] for d in recs] == ["deliverable", "undeliverable", "undeliverable",
                                            "undeliverable", "deliverable", "undeliverable",
                                            "undeliverable"]


def test_format_follows_output_extension_and_table(mail_world, tmp_path):
    out = tmp_path / "res.jsonl"
    r = verify("-", "-o", str(out), stdin="alice@users.mta.test\n")
    assert r.returncode == 0 and json.loads(out.read_text())["verdict"] == "deliverable"
    r = verify("-", stdin="alice@users.mta.test\n")              # piped: JSON lines
    assert jsonl(r.stdout)[0]["address"] == "alice@users.mta.test"
    r = verify("-", "--format", "table", stdin="alice@users.mta.test\nnobody@users.mta.test\n")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ADDRESS", "VERDICT", "REASON", "REPLY", "FLAGS", "MX"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[1:]}
    assert rows["alice@users.mta.test"] == ["deliverable", "delivered", "250", "2.1.5", "tls",
                                            "mx1.mta.test"]
    assert rows["nobody@users.mta.test"][:4] == ["undeliverable", "userunknown", "550", "5.1.1"]


def test_summary_on_stderr_and_no_bar_when_piped(mail_world):
    r = verify("-", stdin="alice@users.mta.test\nnobody@users.mta.test\nbad address\n")
    assert r.returncode == 0
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr           # the summary only: no progress bar
    assert "\r" not in r.stderr and "addr/s" not in r.stderr
    assert lines[0].startswith("3 addresses in ")
    assert lines[0].endswith("1 deliverable, 2 undeliverable, 0 risky, 0 unknown")
    assert lines[1].startswith("by reason: ")
    assert sorted(lines[1][len("by reason: "):].split(", ")) == [
        "delivered 1", "syntaxerror 1", "userunknown 1"]
    r = verify("-", "--quiet", stdin="alice@users.mta.test\n")
    assert r.returncode == 0 and r.stderr == ""


def run_in_pty(argv, timeout=60):
    """Run argv with stdout and stderr on a new terminal; everything it drew there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # rows, cols
    env = dict(os.environ, TERM="xterm")
    env.pop("NO_COLOR", None)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env,
                         close_fds=True)
    os.close(slave)
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:            # EIO: the terminal's last writer has gone
                break
            if not chunk:
                break
            buf += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    return p.wait(timeout=10), buf.decode("utf-8", "replace")


def test_progress_bar_and_table_on_a_terminal(mail_world, tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("alice@users.mta.test\nnobody@users.mta.test\nbad address\n")
    rc, screen = run_in_pty([sys.executable, "-m", "smtpcode", "verify", str(src)] + BASE)
    assert rc == 0, screen
    assert "3/3" in screen and "addr/s" in screen             # tqdm's bar: done/total, rate
    assert "deliverable=1" in screen and "undeliverable=2" in screen
    assert "ADDRESS" in screen                                 # a table on a terminal
    assert "\033[32mdeliverable" in screen                     # coloured verdicts
    assert "3 addresses in " in screen                         # and the summary
    # --no-progress on the same terminal: no bar, still the table and summary
    rc, screen = run_in_pty([sys.executable, "-m", "smtpcode", "verify", str(src),
                             "--no-progress"] + BASE)
    assert rc == 0 and "addr/s" not in screen and "ADDRESS" in screen


def test_empty_input_and_invalid_utf8(tmp_path):
    r = verify("-", stdin="")
    assert r.returncode == 0 and r.stdout == "" and r.stderr.startswith("0 addresses in ")
    src = tmp_path / "bad.txt"
    src.write_bytes(b"first bad\nsecond bad\n\xff\xfeoops\nnever read\n")
    r = verify(str(src), "--format", "jsonl")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert [d["address"] for d in jsonl(r.stdout)] == ["first bad", "second bad"]
    assert "line 3 is not UTF-8" in r.stderr


def test_options_reach_the_engine(mail_world):
    r = verify("-", "--format", "jsonl", "--no-catch-all", "--transcript", "--starttls", "off",
               stdin="anyone@catchall.mta.test\n")
    assert r.returncode == 0, r.stderr
    (d,) = jsonl(r.stdout)
    assert (d["verdict"], d["catch_all"], d["tls"]) == ("deliverable", None, False)
    assert "RCPT TO:<anyone@catchall.mta.test>" in d["transcript"]


def test_ctrl_c_stops_cleanly(mail_world, tmp_path):
    # A greylisted address waits greylist_delay (30 s) before its retry: interrupt meanwhile.
    sender = "probe-%s@probe.test" % uuid.uuid4().hex[:12]
    args = [a if a != "probe@probe.test" else sender for a in BASE]
    src = tmp_path / "grey.txt"
    src.write_text("alice@greylist.mta.test\n")
    p = subprocess.Popen([sys.executable, "-m", "smtpcode", "verify", str(src), "--format",
                          "jsonl", "--greylist-delay", "30", "--no-catch-all"] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         # SIGINT at its default in the child even if this suite inherited it
                         # ignored (a background start without job control): see test_verify.
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(2.0)
    assert p.poll() is None
    started = time.monotonic()
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert time.monotonic() - started < 10
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err


def test_hostile_csv_cells_are_syntax_errors_and_never_raw_on_a_terminal(tmp_path):
    # a quoted CSV cell can hold CR LF and escapes: the engine refuses it before any network
    # traffic, the records keep it exactly, and the table shows it escaped
    src = tmp_path / "evil.csv"
    evil = ["alice@users.mta.test\r\nDATA", "\x1b[2Jx@users.mta.test", "a\x00@users.mta.test"]
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["email"])
        for e in evil:
            w.writerow([e])
    r = verify(str(src), "--column", "email", "--format", "jsonl", "--ordered")
    assert r.returncode == 0, r.stderr
    recs = jsonl(r.stdout)
    assert [d["address"] for d in recs] == evil
    assert {(d["verdict"], d["reason"], d["mx"]) for d in recs} == {
        ("undeliverable", "syntaxerror", None)}
    r = verify(str(src), "--column", "email", "--format", "table")
    assert r.returncode == 0
    assert "\x1b" not in r.stdout and "\r" not in r.stdout and "\x00" not in r.stdout
    assert "alice@users.mta.test\\x0d\\x0aDATA" in r.stdout
