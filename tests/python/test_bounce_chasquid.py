"""Bounces that a real chasquid writes, read back: Debian's chasquid 1.11 on loopback
(tests/fixtures/chasquid, 127.0.0.75:2525) relays each message to the test MTA, which refuses
recipients with its canned replies (bounce_world.REFUSED); the bounces it writes to its own
sender are delivered to the Maildir mail/chasquid/ of its state directory. chasquid relays only
for an authenticated user, and offers AUTH only after STARTTLS.

chasquid's notification (internal/queue/dsn.go) is a multipart/report: a text part listing each
failed recipient with its error, a message/global-delivery-status part (RFC 6533: addresses are
"utf-8;") with Reporting-MTA "dns; <the sender's domain>", Original- and Final-Recipient,
Action: failed, Status 5.0.0 for a permanent failure and 4.0.0 for one that timed out, and as
Diagnostic-Code "smtp; " and chasquid's error text: "MAIL+RCPT " then the server's reply (its
SMTP client reports MAIL and RCPT as one step), or for a temporary failure "all MXs returned transient
failures (last: MAIL+RCPT <reply>)"; no Remote-MTA. Then the returned message, whole. chasquid
writes one notification per message, once every recipient is settled, and gives up on a
temporary failure only 20 hours after the message was queued: the fixture's "expire" moves the
queued message that far back, and chasquid then bounces it at once (see its ctl).
The parser has no chasquid format of its own: it reads the report as RFC 3464."""
import os
import smtplib

import pytest

from bounce_world import ACCEPTED, CONTENT_REFUSED_SUBJECT, REFUSED, TOO_LARGE_SUBJECT, WORDY, \
    ZH_USER, assert_content_refusal, assert_multi_line_refusal, assert_too_large, \
    assert_utf8_refusal, clear, japanese_subject, message, reparsed, running, wait_bounces
from fixture_mta import _ctl

SUBMIT = ("127.0.0.75", 2525)
SENDER = "chasquid@chasquid.mta.test"
PASSWORD = "bounce-test"   # made by the fixture's ctl


@pytest.fixture(scope="module")
def chasquid(mail_world):
    with running("chasquid") as d:
        yield d["chasquid"] / "mail" / "chasquid"


def send(subject, msgid, rcpts):
    """bounce_world.send, but authenticated: chasquid relays for its own users only."""
    m = message(SENDER, subject, msgid, rcpts)
    with smtplib.SMTP(*SUBMIT, timeout=10) as s:
        s.starttls()   # chasquid's certificate is self-signed: not verified
        s.login(SENDER, PASSWORD)
        refused = s.send_message(m, from_addr=SENDER, to_addrs=rcpts)
    assert refused == {}   # chasquid takes every recipient; the next hop refuses


def one_bounce(maildir, subject, msgid, rcpt=ACCEPTED):
    """bounce_world.one_bounce, sent as send() does."""
    clear(maildir)
    send(subject, msgid, [rcpt])
    recs = wait_bounces(maildir, 1)
    assert sorted(reparsed(maildir)) == sorted(recs)
    return recs


def test_one_record_per_refused_recipient(chasquid):
    clear(chasquid)
    msgid = "<refused.%d@chasquid.mta.test>" % os.getpid()
    send("chasquid bounce test", msgid, sorted(REFUSED) + [ACCEPTED])
    _ctl("chasquid", "expire")   # the temporary refusal's 20 hours, gone by
    recs = wait_bounces(chasquid, len(REFUSED))
    got = {r.recipient: r for r in recs}
    assert len(recs) == len(REFUSED) and set(got) == set(REFUSED), [r.recipient for r in recs]
    assert sorted(reparsed(chasquid)) == sorted(recs)
    # one notification for the whole message
    assert len(list((chasquid / "new").iterdir())) == 1
    for rcpt, (status, code, reason, hard) in REFUSED.items():
        r = got[rcpt]
        # the server's own status from the Diagnostic-Code, not chasquid's 5.0.0 / 4.0.0; the
        # temporary refusal too is "failed" (chasquid gave up), its reply the 452 it was
        assert (r.kind, r.action, r.status, r.reply_code) == ("bounce", "failed", status, code), r
        assert (r.reason, r.hard_bounce, r.temporary) == (reason, hard, code < 500), r
        assert (r.mta, r.reporting_mta) == ("rfc3464", "chasquid.mta.test"), r
        # no Remote-MTA, and "MAIL+RCPT" names two commands: nothing is made up for them
        assert (r.command, r.rhost) == (None, None), r
        assert r.original_recipient is None, r   # the same address as the final one
        assert r.diagnostic_type == "smtp", r
        reply = "MAIL+RCPT %d %s <%s>: Recipient address rejected" % (code, status, rcpt)
        if code < 500:
            reply = "all MXs returned transient failures (last: " + reply
        assert r.diagnostic.startswith(reply), r
        assert (r.original_message_id, r.original_subject, r.original_from) == \
            (msgid, "chasquid bounce test", SENDER), r


def test_encoded_subject_of_the_returned_message(chasquid):
    clear(chasquid)
    subject, encoded = japanese_subject()
    # a permanent refusal only: chasquid bounces at once, no expire
    send(encoded, "<ja.%d@chasquid.mta.test>" % os.getpid(), ["nobody@users.mta.test"])
    recs = wait_bounces(chasquid, 1)
    assert [(r.recipient, r.original_subject) for r in recs] == [("nobody@users.mta.test", subject)]
    # the returned copy keeps the Subject as it was sent, an ISO-2022-JP encoded word
    raw = next((chasquid / "new").iterdir()).read_bytes()
    returned = raw[raw.index(b"Content-Type: message/rfc822"):]
    assert b"\nsubject: =?iso-2022-jp?b?" in returned.lower()


def test_a_refusal_after_the_data(chasquid):
    msgid = "<content.%d@chasquid.mta.test>" % os.getpid()
    recs = one_bounce(chasquid, CONTENT_REFUSED_SUBJECT, msgid)
    # chasquid's error text names the phase it failed in: "DATA closing 550 5.7.1 ..."
    assert_content_refusal(recs, "DATA")


def test_a_message_too_large(chasquid):
    msgid = "<large.%d@chasquid.mta.test>" % os.getpid()
    recs = one_bounce(chasquid, TOO_LARGE_SUBJECT, msgid)
    # chasquid sends no SIZE=: refused after the data ("DATA closing 552 ...")
    assert_too_large(recs, "5.3.4", 552, "DATA",
                     "DATA closing 552 5.3.4 Error: message file too big")


def test_a_multi_line_reply(chasquid):
    msgid = "<wordy.%d@chasquid.mta.test>" % os.getpid()
    recs = one_bounce(chasquid, "multi-line reply test", msgid, WORDY)
    assert_multi_line_refusal(recs, None)   # "MAIL+RCPT ..." names two commands


def test_a_reply_in_utf8(chasquid):
    msgid = "<zh.%d@chasquid.mta.test>" % os.getpid()
    recs = one_bounce(chasquid, "UTF-8 reply test", msgid, ZH_USER)
    assert_utf8_refusal(recs, None)   # "MAIL+RCPT ..." names two commands
