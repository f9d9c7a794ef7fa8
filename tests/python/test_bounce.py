"""parse_bounce() and bounces() through the Python binding: tests/vectors/bounces.tsv, the
readers (mbox, Maildir, .eml, gzip, stdin) and `smtpcode bounces`."""
import collections
import gzip
import io
import json
import os
import subprocess
import sys

import pytest

import smtpcode
import vectors

BOUNCE_DIR = os.path.join(vectors.DIR, "bounce")
ROWS = vectors.load("bounces.tsv")
if os.path.exists(os.path.join(vectors.DIR, "bounces_mta.tsv")):  # the MTA modules' vectors
    ROWS += vectors.load("bounces_mta.tsv")
BY_FILE = collections.OrderedDict()
for _r in ROWS:
    BY_FILE.setdefault(_r["file"].decode(), []).append(_r)


def read(name):
    with open(os.path.join(BOUNCE_DIR, name), "rb") as f:
        return f.read()


def value_of(b, field):
    v = getattr(b, field)
    if field == "hard_bounce":
        return "1" if v else "0"
    return "-" if v is None else str(v)


@pytest.mark.parametrize("name", list(BY_FILE))
def test_bounce_vector(name):
    got = smtpcode.parse_bounce(read(name))
    for row in BY_FILE[name]:
        rec, field, want = int(row["record"]), row["field"].decode(), row["value"].decode()
        if rec == 0:
            assert field == "count"
            assert len(got) == int(want)
            continue
        assert value_of(got[rec - 1], field) == want, (name, rec, field)


def test_bounce_record_shape():
    b = smtpcode.parse_bounce(read("dsn-two-recipients.eml"))[0]
    assert isinstance(b, smtpcode.Bounce)
    assert b.reply_code == 550 and b.hard_bounce is True and b.retry is False
    with pytest.raises(AttributeError):
        b.recipient = "x"
    assert set(("recipient", "reason", "original_subject", "note")) <= set(b._fields if hasattr(b, "_fields") else dir(b))


def test_bad_input_is_an_error_value_not_a_crash():
    with pytest.raises(TypeError):
        smtpcode.parse_bounce("a str is not a message")
    deep = b"Content-Type: multipart/mixed; boundary=b0\n\n" + b"".join(
        b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i - 1, i) for i in range(1, 40))
    with pytest.raises(smtpcode.BounceError) as e:
        smtpcode.parse_bounce(deep)
    assert e.value.code == "TOODEEP"
    assert 0 < e.value.offset < len(deep)
    assert "offset" in str(e.value)
    assert isinstance(e.value, ValueError)
    assert smtpcode.parse_bounce(b"") == []
    assert smtpcode.parse_bounce(b"\xff\xfe\x00garbage\r\r\n") == []


# A Diagnostic-Code folded over 200,000 lines (1.2 MB) is read whole, in a child whose address
# space is capped at 1 GiB: unfolding that copied the value so far for every line needed about
# 120 GB here (and took 6.6 s for 10,000 lines); the unfolded value is 1.2 MB.
FOLDED_FIELD_CHILD = r"""
import json, resource, sys, smtpcode
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
fold = b"".join(b"\n w%d" % (i % 10) for i in range(200000))
msg = (b"From: MAILER-DAEMON@example.org\nSubject: Undelivered\nMIME-Version: 1.0\n"
       b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
       b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
       b"Final-Recipient: rfc822; u@example.com\nAction: failed\nStatus: 5.1.1\n"
       b"Diagnostic-Code: smtp; 550 5.1.1 user unknown" + fold + b"\n\n--B--\n")
r = smtpcode.parse_bounce(msg)
print(json.dumps([len(r), r[0].recipient, r[0].diagnostic]))
"""


def test_a_field_folded_over_many_lines_is_read_in_linear_memory():
    out = subprocess.run([sys.executable, "-c", FOLDED_FIELD_CHILD], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    n, rcpt, diagnostic = json.loads(out.stdout)
    assert (n, rcpt) == (1, "u@example.com")
    assert diagnostic == "550 5.1.1 user unknown" + "".join(" w%d" % (i % 10) for i in range(200000))


# -- readers ---------------------------------------------------------------------------------

def mbox_of(names, quote_from=True):
    out = []
    for n in names:
        out.append(b"From MAILER-DAEMON Mon Nov  6 10:00:00 2023\n")
        body = read(n).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if quote_from:
            body = b"\n".join(b">" + ln if ln.lstrip(b">").startswith(b"From ") else ln
                              for ln in body.split(b"\n"))
        out.append(body.rstrip(b"\n") + b"\n\n")
    return b"".join(out)


def recipients(records):
    return [b.recipient for b in records]


EXPECTED_ALL = ["Nobody@example.com", "full@example.jp", "gone@example.com", "user@example.co.jp",
                "complainer@isp.example", "hanako@example.co.jp", "someone@example.com"]
NAMES = ["dsn-two-recipients.eml", "encoded-parts.eml", "japanese-words-cr.eml",
         "arf-abuse.eml", "autoreply.eml", "not-a-bounce.eml", "bad-part.eml"]


def test_bounces_mbox_plain_and_gzip(tmp_path):
    data = mbox_of(NAMES)
    p = tmp_path / "box.mbox"
    p.write_bytes(data)
    assert recipients(smtpcode.bounces(str(p))) == EXPECTED_ALL
    g = tmp_path / "box.mbox.gz"
    g.write_bytes(gzip.compress(data))
    assert recipients(smtpcode.bounces(g)) == EXPECTED_ALL       # a PathLike, gzip'd
    with open(g, "rb") as f:
        assert recipients(smtpcode.bounces(f)) == EXPECTED_ALL   # an open file


def test_bounces_from_file_objects():
    data = mbox_of(NAMES)
    assert recipients(smtpcode.bounces(io.BytesIO(data))) == EXPECTED_ALL
    assert recipients(smtpcode.bounces(io.BytesIO(gzip.compress(data)))) == EXPECTED_ALL
    with pytest.raises(TypeError):
        list(smtpcode.bounces(io.StringIO("From a\nSubject: x\n\n")))


def test_bounces_is_lazy(tmp_path):
    p = tmp_path / "box.mbox"
    p.write_bytes(mbox_of(NAMES))
    it = smtpcode.bounces(str(p))
    assert next(it).recipient == "Nobody@example.com"
    it.close()


def test_bounces_maildir(tmp_path):
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "cur" / "1.eml").write_bytes(read("encoded-parts.eml"))
    (tmp_path / "new" / "2.eml").write_bytes(read("bad-part.eml"))
    (tmp_path / "tmp" / "3.eml").write_bytes(read("autoreply.eml"))  # tmp/ is not delivered yet
    assert recipients(smtpcode.bounces(str(tmp_path))) == ["gone@example.com", "someone@example.com"]


def test_bounces_on_error(tmp_path):
    p = tmp_path / "box.mbox"
    bad = b"Subject: x\n\n" + b"y" * 70000 + b"\n"
    p.write_bytes(b"From a\n" + bad + b"\nFrom b\n" + read("encoded-parts.eml"))
    with pytest.raises(smtpcode.BounceError):
        list(smtpcode.bounces(str(p)))
    seen = []
    got = list(smtpcode.bounces(str(p), on_error=lambda label, e: seen.append((label, e.code))))
    assert recipients(got) == ["gone@example.com"]
    assert seen == [(str(p) + "#1", "MSGLINE")]


# -- the command -----------------------------------------------------------------------------

def cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "smtpcode", "bounces"] + list(args), input=stdin,
                          capture_output=True, timeout=60)


def test_cli_jsonl_summary_and_unsubscribe_list(tmp_path):
    p = tmp_path / "box.mbox"
    p.write_bytes(mbox_of(NAMES))
    u = tmp_path / "unsub.txt"
    r = cli(str(p), "--format", "jsonl", "--unsubscribe-list", str(u))
    assert r.returncode == 0, r.stderr
    recs = [json.loads(ln) for ln in r.stdout.decode().splitlines()]
    assert [x["recipient"] for x in recs] == EXPECTED_ALL
    assert [x["kind"] for x in recs].count("feedback") == 1
    # hard bounces only: unknown user, unknown host (not the full mailbox, not the complaint)
    assert u.read_text().split() == sorted(["Nobody@example.com", "gone@example.com",
                                            "someone@example.com"])
    err = r.stderr.decode()
    assert "7 messages" in err and "by reason:" in err and "userunknown 2" in err


def test_cli_unsubscribe_list_names_the_original_recipient(tmp_path):
    # a forwarded address that bounced hard: the list knows its member by the address it sent
    # to (Original-Recipient), so both go into the list; the mailbox-full one goes nowhere
    u = tmp_path / "unsub.txt"
    r = cli("-", "--format", "jsonl", "--unsubscribe-list", str(u),
            stdin=read("dsn-original-recipient.eml"))
    assert r.returncode == 0, r.stderr
    recs = [json.loads(ln) for ln in r.stdout.decode().splitlines()]
    assert [x["original_recipient"] for x in recs] == ["mia@example.com", None, "liv@example.com"]
    assert u.read_text().split() == ["liv@example.com", "noah@example.com",
                                     "olivia@mail.example.com"]


def test_cli_csv_stdin_and_japanese(tmp_path):
    r = cli("-", "--format", "csv", "--lang", "ja", stdin=read("encoded-parts.eml"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].startswith("source,kind,recipient,")
    assert "gone@example.com" in lines[1]
    assert "宛先アドレスが存在しません" in lines[1]
    assert len(lines) == 2


def test_cli_missing_path_is_a_clear_error(tmp_path):
    r = cli(str(tmp_path / "nope.mbox"))
    assert r.returncode == 1
    assert b"no such file" in r.stderr and b"Traceback" not in r.stderr
