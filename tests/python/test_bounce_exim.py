"""Bounces that a real Exim writes, read back: Debian's Exim 4 on loopback (tests/fixtures/exim,
127.0.0.71:2525) relays each message to the test MTA, which refuses recipients with its canned
replies (bounce_world.REFUSED), and delivers the bounce to the sender's Maildir. Exim's bounce
is its own text ("SMTP error from remote mail server after RCPT TO:...", wrapped) beside an
RFC 3464 part whose Status is 5.0.0 for every failure; a temporary refusal bounces once its
retry rule's cutoff has passed ("retry timeout exceeded")."""
import os

import pytest

from bounce_world import CONTENT_REFUSED_SUBJECT, REFUSED, TOO_LARGE_SUBJECT, WORDY, ZH_USER, \
    assert_content_refusal, assert_multi_line_refusal, assert_too_large, assert_utf8_refusal, \
    bounce_all_refused, japanese_subject_bounced, one_bounce, running

SUBMIT = ("127.0.0.71", 2525)
SENDER = "sender@exim.mta.test"


@pytest.fixture(scope="module")
def exim(mail_world):
    with running("exim") as d:
        yield d["exim"] / "mail" / "sender"


def test_one_record_per_refused_recipient(exim):
    msgid = "<refused.%d@exim.mta.test>" % os.getpid()
    got = bounce_all_refused(SUBMIT, SENDER, exim, "exim bounce test", msgid)
    for rcpt, (status, code, reason, hard) in REFUSED.items():
        r = got[rcpt]
        # the remote server's own status, not the 5.0.0 Exim's DSN part puts on every failure
        assert (r.kind, r.action, r.status, r.reply_code) == ("bounce", "failed", status, code), r
        assert (r.reason, r.hard_bounce) == (reason, hard), r
        assert (r.mta, r.reporting_mta) == ("exim", "exim.mta.test"), r
        assert r.command == "RCPT" and r.rhost == "127.0.0.1", r
        assert r.diagnostic.startswith("%d %s <%s>: Recipient address rejected" % (code, status, rcpt)), r
        assert (r.original_message_id, r.original_subject, r.original_from) == \
            (msgid, "exim bounce test", SENDER), r
    # Exim gave up on the temporary refusal when its retry time ran out, and says so
    assert got["full@users.mta.test"].diagnostic.endswith("retry timeout exceeded")


def test_encoded_subject_of_the_returned_message(exim):
    japanese_subject_bounced(SUBMIT, SENDER, exim, "<ja.%d@exim.mta.test>" % os.getpid())


def test_a_refusal_after_the_data(exim):
    # Exim 4.96: "SMTP error from remote mail server after pipelined end of data:"
    msgid = "<content.%d@exim.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, exim, CONTENT_REFUSED_SUBJECT, msgid)
    assert_content_refusal(recs, "DATA")


def test_a_message_too_large(exim):
    # Exim 4.96 pipelines MAIL FROM with SIZE= and BDAT: the refusal is reported "after pipelined
    # sending data block", which names no command
    msgid = "<large.%d@exim.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, exim, TOO_LARGE_SUBJECT, msgid)
    assert_too_large(recs, "5.3.4", 552, None, "552 5.3.4 Message size exceeds fixed limit")


def test_a_multi_line_reply(exim):
    # Exim writes every line of the reply, in its text and in Diagnostic-Code
    msgid = "<wordy.%d@exim.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, exim, "multi-line reply test", msgid, WORDY)
    assert_multi_line_refusal(recs, "RCPT")


def test_a_reply_in_utf8(exim):
    # Exim writes the octets as octal escapes ("\\351\\202\\256..."): read back as UTF-8
    msgid = "<zh.%d@exim.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, exim, "UTF-8 reply test", msgid, ZH_USER)
    assert_utf8_refusal(recs, "RCPT")
