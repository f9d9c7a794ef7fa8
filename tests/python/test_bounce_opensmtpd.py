"""Bounces that a real OpenSMTPD writes, read back: Debian's OpenSMTPD on loopback
(tests/fixtures/opensmtpd, 127.0.0.72:2525) relays each message to the test MTA, which refuses
recipients with its canned replies (bounce_world.REFUSED); its bounces go to the bouncing
Postfix's Maildir smtpd/. OpenSMTPD's notification is multipart/mixed (not multipart/report):
a text part with one "recipient: reply" line per failure, a delivery-status part with Status
5.0.0 and neither Remote-MTA nor Diagnostic-Code, and the returned headers. A temporary refusal
is reported when the envelope's queue ttl runs out, as "Envelope expired", Action: delayed and
Status 4.4.7: the reply that caused it is not in the notice."""
import os

import pytest

from bounce_world import CONTENT_REFUSED_SUBJECT, REFUSED, TOO_LARGE_SUBJECT, WORDY, ZH_USER, \
    assert_content_refusal, assert_multi_line_refusal, assert_too_large, assert_utf8_refusal, \
    bounce_all_refused, japanese_subject_bounced, one_bounce, running

SUBMIT = ("127.0.0.72", 2525)
SENDER = "smtpd@bouncer.mta.test"


@pytest.fixture(scope="module")
def opensmtpd(mail_world):
    with running("bouncer", "opensmtpd") as d:
        yield d["bouncer"] / "mail" / "smtpd"


def test_one_record_per_refused_recipient(opensmtpd):
    msgid = "<refused.%d@smtpd.mta.test>" % os.getpid()
    got = bounce_all_refused(SUBMIT, SENDER, opensmtpd, "opensmtpd bounce test", msgid)
    for rcpt, (status, code, reason, hard) in REFUSED.items():
        r = got[rcpt]
        assert (r.kind, r.mta, r.reporting_mta) == ("bounce", "opensmtpd", "smtpd.mta.test"), r
        # the notice names neither the command nor the host: nothing is made up for them
        assert (r.command, r.rhost) == (None, None), r
        assert (r.original_message_id, r.original_subject, r.original_from) == \
            (msgid, "opensmtpd bounce test", SENDER), r
        if code >= 500:
            # the reply from the text part's line; the status is the server's, not 5.0.0
            assert (r.action, r.status, r.reply_code) == ("failed", status, code), r
            assert (r.reason, r.hard_bounce) == (reason, hard), r
            assert r.diagnostic.startswith("%d %s <%s>: Recipient address rejected" % (code, status, rcpt)), r
        else:
            assert (r.action, r.status, r.reply_code, r.diagnostic) == \
                ("delayed", "4.4.7", None, "Envelope expired"), r
            assert (r.reason, r.hard_bounce) == ("expired", False), r


def test_encoded_subject_of_the_returned_headers(opensmtpd):
    japanese_subject_bounced(SUBMIT, SENDER, opensmtpd, "<ja.%d@smtpd.mta.test>" % os.getpid())


def test_a_refusal_after_the_data(opensmtpd):
    # OpenSMTPD: "alice@...: 550 5.7.1 ..." names no command
    msgid = "<content.%d@opensmtpd.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, opensmtpd, CONTENT_REFUSED_SUBJECT, msgid)
    assert_content_refusal(recs, None)


def test_a_message_too_large(opensmtpd):
    # OpenSMTPD gives up itself: "message too large for peer", no reply
    msgid = "<large.%d@opensmtpd.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, opensmtpd, TOO_LARGE_SUBJECT, msgid)
    assert_too_large(recs, "5.0.0", None, None, "message too large for peer")


def test_a_multi_line_reply(opensmtpd):
    # OpenSMTPD joins the lines itself
    msgid = "<wordy.%d@opensmtpd.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, opensmtpd, "multi-line reply test", msgid, WORDY)
    assert_multi_line_refusal(recs, None)


def test_a_reply_in_utf8(opensmtpd):
    # OpenSMTPD writes the octets as they came
    msgid = "<zh.%d@opensmtpd.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, opensmtpd, "UTF-8 reply test", msgid, ZH_USER)
    assert_utf8_refusal(recs, None)
