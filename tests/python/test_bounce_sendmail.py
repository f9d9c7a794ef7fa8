"""Bounces that a real Sendmail writes, read back: Debian's Sendmail 8.17 on loopback
(tests/fixtures/sendmail, 127.0.0.73:2525) relays each message to the test MTA, which refuses
recipients with its canned replies (bounce_world.REFUSED); its bounces go to the bouncing
Postfix's Maildir sendmail/. Sendmail's notice is multipart/report: "The following addresses
had permanent fatal errors" with each recipient's "(reason: ...)", a "Transcript of session
follows", and an RFC 3464 part with the server's own Status and its reply as Diagnostic-Code
(one notice for every permanent refusal of a message). Sendmail pipelines RCPT and DATA and its
transcript names the last command it wrote, ">>> DATA", above the replies to the RCPTs, each
followed by Sendmail's own "550 5.1.1 <rcpt>... User unknown" (for the 551 and 5.2.1 too). A
temporary refusal is returned when Timeout.queuereturn (2 s here) has passed, in a notice of its
own: "Message could not be delivered for 2 seconds", Action: failed, Status: 4.4.7 and the
server's 452 as Diagnostic-Code."""
import os

import pytest

from bounce_world import CONTENT_REFUSED_SUBJECT, REFUSED, TOO_LARGE_SUBJECT, WORDY, ZH_USER, \
    assert_content_refusal, assert_multi_line_refusal, assert_too_large, assert_utf8_refusal, \
    bounce_all_refused, japanese_subject_bounced, one_bounce, running

SUBMIT = ("127.0.0.73", 2525)
SENDER = "sendmail@bouncer.mta.test"


@pytest.fixture(scope="module")
def sendmail(mail_world):
    with running("bouncer", "sendmail") as d:
        yield d["bouncer"] / "mail" / "sendmail"


def test_one_record_per_refused_recipient(sendmail):
    msgid = "<refused.%d@sendmail.mta.test>" % os.getpid()
    got = bounce_all_refused(SUBMIT, SENDER, sendmail, "sendmail bounce test", msgid)
    for rcpt, (status, code, reason, hard) in REFUSED.items():
        r = got[rcpt]
        # a standard delivery-status notification: the parser reads it as RFC 3464, no
        # Sendmail-specific reader needed (that one is for Sendmail's transcripts without one)
        assert (r.kind, r.mta, r.reporting_mta) == ("bounce", "rfc3464", "sendmail.mta.test"), r
        assert (r.action, r.status, r.reply_code) == ("failed", status, code), r
        assert (r.reason, r.hard_bounce) == (reason, hard), r
        # Remote-MTA: DNS; [127.0.0.1]. The test MTA refused at RCPT: Sendmail's transcript puts
        # every reply under ">>> DATA", the command it wrote last (RCPTs and DATA pipelined), but
        # its own line below each reply ("550 5.1.1 <rcpt>... User unknown", "<rcpt>...
        # Deferred: ...") is written for a refused recipient only
        assert r.command == "RCPT" and r.rhost == "127.0.0.1", r
        assert r.diagnostic.startswith("%d %s <%s>: Recipient address rejected" % (code, status, rcpt)), r
        assert (r.original_message_id, r.original_subject, r.original_from) == \
            (msgid, "sendmail bounce test", SENDER), r
    # the three permanent refusals in one notice, the temporary one in a notice of its own
    # once the queue return time had passed: its DSN Status is Sendmail's 4.4.7 (delivery time
    # expired); the record keeps the server's 4.2.2 from the Diagnostic-Code, as for Exim
    notices = [p.read_text() for p in sorted((sendmail / "new").iterdir())]
    assert len(notices) == 2, notices
    full = [t for t in notices if "Final-Recipient: RFC822; full@users.mta.test" in t]
    assert len(full) == 1 and "Final-Recipient: RFC822; nobody@" not in full[0]
    assert "Status: 4.4.7" in full[0] and "Message could not be delivered for 2 seconds" in full[0]
    assert "Diagnostic-Code: SMTP; 452 4.2.2 <full@users.mta.test>" in full[0]


def test_encoded_subject_of_the_returned_message(sendmail):
    raw = japanese_subject_bounced(SUBMIT, SENDER, sendmail,
                                   "<ja.%d@sendmail.mta.test>" % os.getpid())
    # Sendmail returns the message as it was sent: the subject still in ISO-2022-JP
    assert b"Subject: =?iso-2022-jp?b?" in raw


def test_a_refusal_after_the_data(sendmail):
    # Sendmail: its transcript's ">>> DATA" above "<<< 550 5.7.1 ...", a paragraph that names
    # no recipient
    msgid = "<content.%d@sendmail.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, sendmail, CONTENT_REFUSED_SUBJECT, msgid)
    assert_content_refusal(recs, "DATA")


def test_a_message_too_large(sendmail):
    # Sendmail: the transcript's ">>> MAIL From:<...> SIZE=..." above the reply
    msgid = "<large.%d@sendmail.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, sendmail, TOO_LARGE_SUBJECT, msgid)
    assert_too_large(recs, "5.3.4", 552, "MAIL", "552 5.3.4 Message size exceeds fixed limit")


def test_a_multi_line_reply(sendmail):
    # Sendmail's Diagnostic-Code holds the first line only; its transcript has all four
    msgid = "<wordy.%d@sendmail.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, sendmail, "multi-line reply test", msgid, WORDY)
    assert_multi_line_refusal(recs, "RCPT")


def test_a_reply_in_utf8(sendmail):
    # Sendmail writes the octets as they came
    msgid = "<zh.%d@sendmail.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, sendmail, "UTF-8 reply test", msgid, ZH_USER)
    assert_utf8_refusal(recs, "RCPT")
