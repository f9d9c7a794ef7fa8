"""Bounces that a real Postfix writes, read back: a second Postfix on loopback
(tests/fixtures/bouncer, 127.0.0.70:2525) relays each message to the test MTA
(tests/fixtures/mta), which refuses recipients with its canned replies (rcpt_access: full,
disabled, moved; unknown users from its virtual mailbox table), and returns the delivery-status
notification to its own Maildir. The expected values come from those configured replies, not
from the parser: this is the parser on messages nobody wrote by hand, fresh each run."""
import json
import os
import subprocess
import sys

import pytest

from bounce_world import CONTENT_REFUSED_SUBJECT, REFUSED, TOO_LARGE_SUBJECT, WORDY, ZH_USER, \
    assert_content_refusal, assert_multi_line_refusal, assert_too_large, assert_utf8_refusal, \
    bounce_all_refused, clear, one_bounce, running, send_japanese_subject, wait_bounces

SUBMIT = ("127.0.0.70", 2525)
SENDER = "sender@bouncer.mta.test"


@pytest.fixture(scope="module")
def bouncer(mail_world):
    with running("bouncer") as d:
        yield d["bouncer"] / "mail" / "sender"


def test_one_record_per_refused_recipient(bouncer):
    msgid = "<refused.%d@bouncer.mta.test>" % os.getpid()
    got = bounce_all_refused(SUBMIT, SENDER, bouncer, "bounce test", msgid)
    for rcpt, (status, code, reason, hard) in REFUSED.items():
        r = got[rcpt]
        assert (r.kind, r.action, r.status, r.reply_code) == ("bounce", "failed", status, code), r
        assert (r.reason, r.hard_bounce) == (reason, hard), r
        assert r.command == "RCPT" and r.rhost == "127.0.0.1", r
        assert r.reporting_mta == "bouncer.mta.test", r
        assert r.diagnostic.startswith("%d %s <%s>: Recipient address rejected" % (code, status, rcpt)), r
        assert (r.original_message_id, r.original_subject, r.original_from) == (msgid, "bounce test", SENDER), r


def test_encoded_subject_of_the_returned_message(bouncer):
    """The original Subject as Postfix returns it, decoded into original_subject."""
    clear(bouncer)
    subject = send_japanese_subject(SUBMIT, SENDER, "nobody@users.mta.test",
                                    "<ja.%d@bouncer.mta.test>" % os.getpid())
    recs = wait_bounces(bouncer, 1)
    assert [r.original_subject for r in recs] == [subject]


def test_command_writes_the_unsubscribe_list_from_real_bounces(bouncer, tmp_path):
    bounce_all_refused(SUBMIT, SENDER, bouncer, "unsubscribe test",
                       "<unsub.%d@bouncer.mta.test>" % os.getpid())
    out = tmp_path / "unsubscribe.txt"
    r = subprocess.run([sys.executable, "-m", "smtpcode", "bounces", str(bouncer), "--format",
                        "jsonl", "--unsubscribe-list", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert sorted(row["recipient"] for row in rows) == sorted(REFUSED)
    hard = sorted(a for a, v in REFUSED.items() if v[3])
    assert sorted(out.read_text().split()) == hard


def test_a_refusal_after_the_data(bouncer):
    # Postfix: "(in reply to end of DATA command)"
    msgid = "<content.%d@postfix.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, bouncer, CONTENT_REFUSED_SUBJECT, msgid)
    assert_content_refusal(recs, "DATA")


def test_a_message_too_large(bouncer):
    # Postfix reads the limit from the server's EHLO and gives up itself, sending nothing: "message
    # size N exceeds size limit 262144 of server ...", X-Postfix, no reply
    msgid = "<large.%d@postfix.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, bouncer, TOO_LARGE_SUBJECT, msgid)
    assert_too_large(recs, "5.3.4", None, None, "exceeds size limit 262144 of server 127.0.0.1[127.0.0.1]")


def test_a_multi_line_reply(bouncer):
    # Postfix folds the reply into Diagnostic-Code, every line with its code
    msgid = "<wordy.%d@postfix.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, bouncer, "multi-line reply test", msgid, WORDY)
    assert_multi_line_refusal(recs, "RCPT")


def test_a_reply_in_utf8(bouncer):
    # Postfix writes the octets into its report as they came
    msgid = "<zh.%d@postfix.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, bouncer, "UTF-8 reply test", msgid, ZH_USER)
    assert_utf8_refusal(recs, "RCPT")
