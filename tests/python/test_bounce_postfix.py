"""Bounces that a real Postfix writes, read back: a second Postfix on loopback
(tests/fixtures/bouncer, 127.0.0.70:2525) relays each message to the test MTA
(tests/fixtures/mta), which refuses recipients with its canned replies (rcpt_access: full,
disabled, moved; unknown users from its virtual mailbox table), and returns the delivery-status
notification to its own Maildir. The expected values come from those configured replies, not
from the parser: this is the parser on messages nobody wrote by hand, fresh each run."""
import email.header
import email.message
import json
import os
import pathlib
import smtplib
import subprocess
import sys
import time

import pytest

import smtpcode
from fixture_mta import FIXTURES, _ctl

SUBMIT = ("127.0.0.70", 2525)
SENDER = "sender@bouncer.mta.test"
# recipient -> (status, reply code, reason, hard bounce), as the test MTA's configuration makes
# it answer RCPT (tests/fixtures/mta/rcpt_access and main.cf's virtual mailbox table).
REFUSED = {
    "nobody@users.mta.test": ("5.1.1", 550, "userunknown", True),    # not in the user table
    "moved@users.mta.test": ("5.1.6", 551, "hasmoved", True),        # 551 5.1.6 User has moved
    "disabled@users.mta.test": ("5.2.1", 550, "suspend", False),     # 550 5.2.1 Mailbox disabled
    "full@users.mta.test": ("4.2.2", 452, "mailboxfull", False),     # 452 4.2.2 Mailbox full
}
ACCEPTED = "alice@users.mta.test"


@pytest.fixture(scope="module")
def bouncer(mail_world):
    started = _ctl("bouncer", "status", check=False).returncode != 0
    if started:
        r = _ctl("bouncer", "start", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    maildir = pathlib.Path(_ctl("bouncer", "dir").stdout.strip()) / "mail" / "sender"
    yield maildir
    if started:
        _ctl("bouncer", "stop", check=False)


def _clear(maildir):
    for sub in ("new", "cur", "tmp"):
        for p in (maildir / sub).glob("*") if (maildir / sub).is_dir() else ():
            p.unlink()


def _send(subject, msgid, rcpts):
    m = email.message.EmailMessage()
    m["From"] = SENDER
    m["To"] = ", ".join(rcpts)
    m["Subject"] = subject
    m["Message-ID"] = msgid
    m.set_content("a message for the bounce tests\n")
    with smtplib.SMTP(*SUBMIT, timeout=10) as s:
        refused = s.send_message(m, from_addr=SENDER, to_addrs=rcpts)
    assert refused == {}   # the bouncer takes every recipient; the next hop refuses


def _wait_bounces(maildir, want_records, timeout=30.0):
    """The records of every bounce in the Maildir, once there are want_records of them."""
    end = time.monotonic() + timeout
    while True:
        recs = list(smtpcode.bounces(str(maildir))) if (maildir / "new").is_dir() else []
        if len(recs) >= want_records or time.monotonic() > end:
            return recs
        time.sleep(0.2)


def test_one_record_per_refused_recipient(bouncer):
    _clear(bouncer)
    msgid = "<refused.%d@bouncer.mta.test>" % os.getpid()
    _send("bounce test", msgid, sorted(REFUSED) + [ACCEPTED])
    recs = _wait_bounces(bouncer, len(REFUSED))
    got = {r.recipient: r for r in recs}
    assert len(recs) == len(REFUSED) and set(got) == set(REFUSED), [r.recipient for r in recs]
    for rcpt, (status, code, reason, hard) in REFUSED.items():
        r = got[rcpt]
        assert (r.kind, r.action, r.status, r.reply_code) == ("bounce", "failed", status, code), r
        assert (r.reason, r.hard_bounce) == (reason, hard), r
        assert r.command == "RCPT" and r.rhost == "127.0.0.1", r
        assert r.reporting_mta == "bouncer.mta.test", r
        assert r.diagnostic.startswith("%d %s <%s>: Recipient address rejected" % (code, status, rcpt)), r
        assert (r.original_message_id, r.original_subject, r.original_from) == (msgid, "bounce test", SENDER), r
    # the same files through parse_bounce, one by one, give the same records
    again = []
    for p in sorted((bouncer / "new").iterdir()):
        again.extend(smtpcode.parse_bounce(p.read_bytes()))
    assert sorted(again) == sorted(recs)


def test_encoded_subject_of_the_returned_message(bouncer):
    """The original Subject as Postfix returns it (RFC 2047, ISO-2022-JP as Japanese mailers
    send it), decoded into original_subject."""
    _clear(bouncer)
    subject = "配信テスト（不達）"
    encoded = email.header.Header(subject, "iso-2022-jp").encode()
    assert encoded.startswith("=?iso-2022-jp?b?")
    _send(encoded, "<ja.%d@bouncer.mta.test>" % os.getpid(), ["nobody@users.mta.test"])
    recs = _wait_bounces(bouncer, 1)
    assert [r.original_subject for r in recs] == [subject]


def test_command_writes_the_unsubscribe_list_from_real_bounces(bouncer, tmp_path):
    _clear(bouncer)
    _send("unsubscribe test", "<unsub.%d@bouncer.mta.test>" % os.getpid(),
          sorted(REFUSED) + [ACCEPTED])
    assert len(_wait_bounces(bouncer, len(REFUSED))) == len(REFUSED)
    out = tmp_path / "unsubscribe.txt"
    r = subprocess.run([sys.executable, "-m", "smtpcode", "bounces", str(bouncer), "--format",
                        "jsonl", "--unsubscribe-list", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert sorted(row["recipient"] for row in rows) == sorted(REFUSED)
    hard = sorted(a for a, v in REFUSED.items() if v[3])
    assert sorted(out.read_text().split()) == hard
