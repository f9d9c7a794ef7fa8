"""Bounces that a real Courier writes, read back: Debian's Courier MTA on loopback
(tests/fixtures/courier, 127.0.0.74:2525) relays each message to the test MTA, which refuses
recipients with its canned replies (bounce_world.REFUSED); its bounces go to the bouncing
Postfix's Maildir courier/. Courier's notification is a standard multipart/report: a text part
that quotes each refused RCPT TO (">>> RCPT TO:<...>", "<<< reply"), a delivery-status part whose
Status is 5.0.0 for every failure with Remote-MTA "dns; [127.0.0.1] [127.0.0.1]" and the
server's reply as Diagnostic-Code, and the returned message. Courier writes one notification
per message, once every recipient is settled: the permanent refusals wait for the temporary
one, which is given up on when queuetime runs out and then reported as failed, with its 452 as
it was. The parser has no Courier format of its own: it reads the report as RFC 3464."""
import os

import pytest

from bounce_world import CONTENT_REFUSED_SUBJECT, REFUSED, TOO_LARGE_SUBJECT, WORDY, ZH_USER, \
    assert_content_refusal, assert_multi_line_refusal, assert_too_large, assert_utf8_refusal, \
    bounce_all_refused, japanese_subject_bounced, one_bounce, running

SUBMIT = ("127.0.0.74", 2525)
SENDER = "courier@bouncer.mta.test"


@pytest.fixture(scope="module")
def courier(mail_world):
    with running("bouncer", "courier") as d:
        yield d["bouncer"] / "mail" / "courier"


def test_one_record_per_refused_recipient(courier):
    msgid = "<refused.%d@courier.mta.test>" % os.getpid()
    got = bounce_all_refused(SUBMIT, SENDER, courier, "courier bounce test", msgid)
    # one notification for the whole message, written once the temporary refusal expired
    assert len(list((courier / "new").iterdir())) == 1
    for rcpt, (status, code, reason, hard) in REFUSED.items():
        r = got[rcpt]
        # the remote server's own status, not the 5.0.0 Courier's DSN part puts on every
        # failure; the temporary refusal too is "failed", its reply still the 452 it was
        assert (r.kind, r.action, r.status, r.reply_code) == ("bounce", "failed", status, code), r
        assert (r.reason, r.hard_bounce) == (reason, hard), r
        assert (r.mta, r.reporting_mta) == ("rfc3464", "courier.mta.test"), r
        assert r.command == "RCPT" and r.rhost == "127.0.0.1", r
        assert r.diagnostic_type == "smtp", r
        assert r.diagnostic.startswith("%d %s <%s>: Recipient address rejected" % (code, status, rcpt)), r
        assert (r.original_message_id, r.original_subject, r.original_from) == \
            (msgid, "courier bounce test", SENDER), r
    assert got["full@users.mta.test"].temporary is True


def test_encoded_subject_of_the_returned_message(courier):
    raw = japanese_subject_bounced(SUBMIT, SENDER, courier,
                                   "<ja.%d@courier.mta.test>" % os.getpid())
    # the returned copy keeps the Subject as it was sent, an ISO-2022-JP encoded word
    returned = raw[raw.index(b"Content-Type: message/rfc822"):]
    assert b"\nsubject: =?iso-2022-jp?b?" in returned.lower()


def test_a_refusal_after_the_data(courier):
    # Courier names the command it was answered after
    msgid = "<content.%d@courier.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, courier, CONTENT_REFUSED_SUBJECT, msgid)
    assert_content_refusal(recs, "DATA")


def test_a_message_too_large(courier):
    # Courier names MAIL FROM
    msgid = "<large.%d@courier.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, courier, TOO_LARGE_SUBJECT, msgid)
    assert_too_large(recs, "5.3.4", 552, "MAIL", "552 5.3.4 Message size exceeds fixed limit")


def test_a_multi_line_reply(courier):
    # Courier folds the reply into Diagnostic-Code, every line with its code
    msgid = "<wordy.%d@courier.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, courier, "multi-line reply test", msgid, WORDY)
    assert_multi_line_refusal(recs, "RCPT")


def test_a_reply_in_utf8(courier):
    # Courier writes the octets as they came
    msgid = "<zh.%d@courier.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, courier, "UTF-8 reply test", msgid, ZH_USER)
    assert_utf8_refusal(recs, "RCPT")
