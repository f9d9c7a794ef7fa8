"""Bounces that a real dma (DragonFly Mail Agent, Debian's 0.13) writes, read back: dma relays
each message to the test MTA (tests/fixtures/dma, smarthost 127.0.0.1:2525), which refuses
recipients with its canned replies (bounce_world.REFUSED), and delivers each bounce into the
local sender's mbox (/var/mail/dmauser, in its namespace $DIR/mail/dmauser): a real MTA's mbox.
dma's bounce is plain text, one message per failed recipient (mail.c's bounce()):
  There was an error delivering your mail to <RCPT>.
  HOST [ADDR] did not like our RCPT TO:
  <the server's reply>
  Message headers follow.
then the original headers. No DSN part: the reporting MTA is the host its greeting names ("This
is the DragonFly Mail Agent v0.13 at HOST."). A temporary refusal is retried until the queue file
is MAX_TIMEOUT (5 days) old, then bounced with "Could not deliver for the last 432000 seconds.
Giving up." and no reply; the fixture makes those 5 days pass (see its ctl)."""
import mailbox
import os
import subprocess

import pytest

import smtpcode
from bounce_world import ACCEPTED, CONTENT_REFUSED_SUBJECT, REFUSED, TOO_LARGE_SUBJECT, WORDY, \
    ZH_USER, assert_content_refusal, assert_multi_line_refusal, assert_too_large, \
    assert_utf8_refusal, japanese_subject, message
from fixture_mta import FIXTURES, _ctl

CTL = str(FIXTURES / "dma" / "ctl")
SENDER = "dmauser@dma.mta.test"   # a local user of dma's host: its bounces stay local
GIVE_UP = "Could not deliver for the last 432000 seconds. Giving up."   # dma.h: MAX_TIMEOUT


@pytest.fixture(scope="module")
def mbox(mail_world):
    return _ctl("dma", "dir").stdout.strip() + "/mail/dmauser"


def send(mbox, subject, msgid, rcpts, smarthost="127.0.0.1"):
    """The message, through dma (as sendmail(8) is run) and smarthost, into a fresh mbox; the
    records read from that mbox, and the same from its messages one by one."""
    if os.path.exists(mbox):
        os.unlink(mbox)
    m = message(SENDER, subject, msgid, rcpts)
    r = subprocess.run([CTL, "send", SENDER, *rcpts], input=m.as_bytes(), capture_output=True,
                       timeout=90, env=dict(os.environ, SMTPC_DMA_SMARTHOST=smarthost))
    assert r.returncode == 0, r.stderr.decode()
    recs = list(smtpcode.bounces(mbox))
    box = mailbox.mbox(mbox)   # the messages' bytes as dma wrote them, split by Python
    one_by_one = [x for k in box.keys() for x in smtpcode.parse_bounce(box.get_bytes(k))]
    assert sorted(one_by_one) == sorted(recs)
    return recs


def test_one_record_per_refused_recipient(mbox):
    msgid = "<refused.%d@dma.mta.test>" % os.getpid()
    recs = send(mbox, "dma bounce test", msgid, sorted(REFUSED) + [ACCEPTED])
    got = {r.recipient: r for r in recs}
    assert len(recs) == len(REFUSED) and set(got) == set(REFUSED), [r.recipient for r in recs]
    assert len(mailbox.mbox(mbox)) == len(REFUSED)   # one bounce per recipient
    for rcpt, (status, code, reason, hard) in REFUSED.items():
        r = got[rcpt]
        assert (r.kind, r.mta) == ("bounce", "dragonfly"), r
        # the notice names dma's host only in its greeting ("... v0.13 at dma.mta.test.")
        assert r.reporting_mta == "dma.mta.test", r
        assert (r.original_message_id, r.original_subject, r.original_from) == \
            (msgid, "dma bounce test", SENDER), r
        if code >= 500:
            assert (r.action, r.status, r.reply_code) == ("failed", status, code), r
            assert (r.reason, r.hard_bounce) == (reason, hard), r
            # the smarthost as configured (an address literal) and its address
            assert (r.command, r.rhost) == ("RCPT", "127.0.0.1"), r
            assert r.diagnostic.startswith(
                "127.0.0.1 [127.0.0.1] did not like our RCPT TO: %d %s <%s>: Recipient address "
                "rejected" % (code, status, rcpt)), r
        else:
            # dma gave up: it says so, and not which reply it had been getting
            assert (r.action, r.status, r.reply_code, r.diagnostic) == \
                ("failed", None, None, GIVE_UP), r
            assert (r.command, r.rhost) == (None, None), r
            assert (r.reason, r.hard_bounce) == ("expired", False), r


def test_encoded_subject_of_the_returned_headers(mbox):
    subject, encoded = japanese_subject()
    recs = send(mbox, encoded, "<ja.%d@dma.mta.test>" % os.getpid(), ["nobody@users.mta.test"])
    assert [(r.recipient, r.original_subject) for r in recs] == [("nobody@users.mta.test", subject)]


def test_multiline_reply_and_data_refusal(mbox, fault_server):
    # dma keeps a multi-line reply as read, CRLFs inside its LF text; and says which command
    srv = fault_server(15, {"users": {
        "multi": "550-5.1.1 <{addr}>: Recipient address rejected:\r\n550 5.1.1 User unknown"}})
    multi, other = "multi@" + srv.domain, "someone@" + srv.domain   # someone: RCPT 250, DATA 554
    recs = send(mbox, "dma fault test", "<fault.%d@dma.mta.test>" % os.getpid(), [multi, other],
                smarthost="127.0.0.35")
    got = {r.recipient: r for r in recs}
    assert len(recs) == 2 and set(got) == {multi, other}, recs
    r = got[multi]
    assert (r.mta, r.action, r.command, r.rhost, r.status, r.reply_code, r.reason, r.hard_bounce) \
        == ("dragonfly", "failed", "RCPT", "127.0.0.35", "5.1.1", 550, "userunknown", True), r
    assert r.diagnostic == "127.0.0.35 [127.0.0.35] did not like our RCPT TO: 550 5.1.1 <%s>: " \
        "Recipient address rejected: User unknown" % multi, r
    r = got[other]
    assert (r.mta, r.action, r.command, r.status, r.reply_code, r.reason) == \
        ("dragonfly", "failed", "DATA", "5.5.1", 554, "syntaxerror"), r
    assert r.diagnostic == "127.0.0.35 [127.0.0.35] did not like our DATA: " \
        "554 5.5.1 faultsmtp: DATA is never expected from a prober", r


def test_a_refusal_after_the_data(mbox):
    recs = send(mbox, CONTENT_REFUSED_SUBJECT, "<content.%d@dma.mta.test>" % os.getpid(), [ACCEPTED])
    # "127.0.0.1 [127.0.0.1] did not like our final DATA: 550 5.7.1 Spam message rejected"
    assert_content_refusal(recs, "DATA")


def test_a_message_too_large(mbox):
    # dma sends no SIZE=: refused after the data
    recs = send(mbox, TOO_LARGE_SUBJECT, "<large.%d@dma.mta.test>" % os.getpid(), [ACCEPTED])
    assert_too_large(recs, "5.3.4", 552, "DATA",
                     "did not like our final DATA: 552 5.3.4 Error: message file too big")


def test_a_multi_line_reply(mbox):
    recs = send(mbox, "multi-line reply test", "<wordy.%d@dma.mta.test>" % os.getpid(), [WORDY])
    assert_multi_line_refusal(recs, "RCPT")


def test_a_reply_in_utf8(mbox):
    recs = send(mbox, "UTF-8 reply test", "<zh.%d@dma.mta.test>" % os.getpid(), [ZH_USER])
    assert_utf8_refusal(recs, "RCPT")
