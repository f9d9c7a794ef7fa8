"""Bounces that a real nullmailer (Debian's 2.2) writes, read back: nullmailer relays each message
to the test MTA (tests/fixtures/nullmailer, smart host 127.0.0.1:2525), which refuses recipients
with its canned replies (bounce_world.REFUSED); nullmailer-dsn's report is then delivered to the
bouncing Postfix's Maildir nullmailer/.

nullmailer-dsn writes a multipart/report: a text part ("This is the nullmailer delivery system.
The message attached below could not be delivered to one or more of the intended recipients:"
and the addresses), a message/delivery-status part with "Reporting-MTA: x-local-hostname; <its
mailname>" and per recipient Final-Recipient, Action, Status, Last-Attempt-Date, "Remote-MTA:
dns; <the smart host>" and "Diagnostic-Code: SMTP; <reply>", then the returned headers
(message/rfc822). It names no command.

What nullmailer does that other MTAs do not: its smtp module gives up on the whole message at
the first refused RCPT, and the report lists every recipient of the message with that one
reply, the ones never tried included. The parser keeps what the report says of them (failed,
its status and code, the reply) but does not take another mailbox's refusal for theirs: those
records are on hold, never hard bounces, to be sent again, with a note naming the recipient the
reply is about. And a temporary refusal, given up when the message is older than queuelifetime
(the fixture makes that a week), is reported as a delay ("Action: delayed", "A final delivery
status notification will be generated ..."), which is what the report says."""
import os
import subprocess
import sys

import pytest

import smtpcode
from bounce_world import ACCEPTED, CONTENT_REFUSED_SUBJECT, REFUSED, TOO_LARGE_SUBJECT, WORDY, \
    ZH_USER, assert_content_refusal, assert_multi_line_refusal, assert_too_large, \
    assert_utf8_refusal, clear, japanese_subject, message, reparsed, running, wait_bounces
from fixture_mta import FIXTURES

CTL = str(FIXTURES / "nullmailer" / "ctl")
SENDER = "nullmailer@bouncer.mta.test"


@pytest.fixture(scope="module")
def maildir(mail_world):
    with running("bouncer") as d:
        yield d["bouncer"] / "mail" / "nullmailer"


def send(maildir, subject, msgid, rcpts):
    """The message through nullmailer, in the order given; the records of the one report it
    writes (and the same when the Maildir's file is parsed on its own)."""
    clear(maildir)
    m = message(SENDER, subject, msgid, rcpts)
    r = subprocess.run([CTL, "send", SENDER, *rcpts], input=m.as_bytes(), capture_output=True,
                       timeout=90)
    assert r.returncode == 0, r.stderr.decode()
    recs = wait_bounces(maildir, len(rcpts))
    assert len(list((maildir / "new").iterdir())) == 1   # one report per message
    assert sorted(reparsed(maildir)) == sorted(recs)
    return recs


def common(r, msgid, subject):
    assert (r.kind, r.mta, r.reporting_mta) == ("bounce", "rfc3464", "nm.mta.test"), r
    assert (r.rhost, r.command, r.original_recipient) == ("127.0.0.1", None, None), r
    assert (r.original_message_id, r.original_subject, r.original_from) == \
        (msgid, subject, SENDER), r
    assert r.arrival_date and r.last_attempt, r


@pytest.mark.parametrize("rcpt", sorted(r for r, v in REFUSED.items() if v[1] >= 500))
def test_a_permanent_refusal(maildir, rcpt):
    status, code, reason, hard = REFUSED[rcpt]
    msgid = "<%s.%d@nm.mta.test>" % (rcpt.split("@")[0], os.getpid())
    (r,) = send(maildir, "nullmailer bounce test", msgid, [rcpt])
    common(r, msgid, "nullmailer bounce test")
    assert (r.recipient, r.action, r.status, r.reply_code) == (rcpt, "failed", status, code), r
    assert (r.reason, r.hard_bounce, r.note) == (reason, hard, None), r
    assert r.diagnostic.startswith("%d %s <%s>: Recipient address rejected" % (code, status, rcpt)), r


def test_a_temporary_refusal_given_up(maildir):
    rcpt = "full@users.mta.test"
    status, code, reason, hard = REFUSED[rcpt]
    msgid = "<full.%d@nm.mta.test>" % os.getpid()
    (r,) = send(maildir, "nullmailer bounce test", msgid, [rcpt])
    common(r, msgid, "nullmailer bounce test")
    # given up after queuelifetime, yet written as a delay notice: the record says what it says
    assert (r.recipient, r.action, r.status, r.reply_code) == (rcpt, "delayed", status, code), r
    assert (r.reason, r.hard_bounce, r.temporary) == (reason, hard, True), r


def test_one_refusal_fails_the_whole_message(maildir):
    msgid = "<whole.%d@nm.mta.test>" % os.getpid()
    refused = "nobody@users.mta.test"
    untried = ["moved@users.mta.test", ACCEPTED]
    recs = send(maildir, "nullmailer bounce test", msgid, [refused] + untried)
    got = {r.recipient: r for r in recs}
    assert sorted(got) == sorted([refused] + untried), recs
    reply = "550 5.1.1 <%s>: Recipient address rejected" % refused
    for r in recs:
        common(r, msgid, "nullmailer bounce test")
        # the report's own words, for every recipient alike
        assert (r.action, r.status, r.reply_code) == ("failed", "5.1.1", 550), r
        assert r.diagnostic.startswith(reply), r
    r = got[refused]
    assert (r.reason, r.hard_bounce, r.note) == ("userunknown", True, None), r
    for rcpt in untried:
        r = got[rcpt]
        # moved@ would have been refused too (551, hasmoved) and alice@ taken: neither was tried
        assert (r.reason, r.hard_bounce, r.retry) == ("onhold", False, True), r
        assert r.note == "the reply names another recipient, %s, not this one" % refused, r


def test_the_unsubscribe_list_keeps_the_untried(maildir, tmp_path):
    """The command's list of addresses to remove holds the refused recipient alone."""
    send(maildir, "nullmailer bounce test", "<list.%d@nm.mta.test>" % os.getpid(),
         ["nobody@users.mta.test", ACCEPTED])
    out = tmp_path / "unsubscribe.txt"
    r = subprocess.run([sys.executable, "-m", "smtpcode", "bounces", "--format", "jsonl",
                        "--unsubscribe-list", str(out), str(maildir)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert out.read_text().split() == ["nobody@users.mta.test"]


def test_encoded_subject_of_the_returned_headers(maildir):
    subject, encoded = japanese_subject()
    msgid = "<ja.%d@nm.mta.test>" % os.getpid()
    (r,) = send(maildir, encoded, msgid, ["nobody@users.mta.test"])
    assert (r.recipient, r.original_subject) == ("nobody@users.mta.test", subject), r
    # nullmailer returns the header as it was sent: the encoded word, not its text
    (notice,) = (maildir / "new").iterdir()
    assert encoded.encode() in notice.read_bytes()
    assert smtpcode.parse_bounce(notice.read_bytes())[0].original_subject == subject


def test_a_refusal_after_the_data(maildir):
    recs = send(maildir, CONTENT_REFUSED_SUBJECT, "<content.%d@nm.mta.test>" % os.getpid(), [ACCEPTED])
    assert_content_refusal(recs, None)   # nullmailer names no command


def test_a_message_too_large(maildir):
    # nullmailer sends no SIZE=: refused after the data; it names no command
    recs = send(maildir, TOO_LARGE_SUBJECT, "<large.%d@nm.mta.test>" % os.getpid(), [ACCEPTED])
    assert_too_large(recs, "5.3.4", 552, None, "552 5.3.4 Error: message file too big")


def test_a_multi_line_reply(maildir):
    recs = send(maildir, "multi-line reply test", "<wordy.%d@nm.mta.test>" % os.getpid(), [WORDY])
    assert_multi_line_refusal(recs, None)   # nullmailer names no command


def test_a_reply_in_utf8(maildir):
    recs = send(maildir, "UTF-8 reply test", "<zh.%d@nm.mta.test>" % os.getpid(), [ZH_USER])
    assert_utf8_refusal(recs, None)   # nullmailer names no command
