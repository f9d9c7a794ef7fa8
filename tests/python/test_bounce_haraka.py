"""Bounces that a real Haraka writes, read back: Haraka 3.3.4 (Node.js, from the npm registry) on
loopback (tests/fixtures/haraka, 127.0.0.76:2525) relays each message with its outbound to the
test MTA, which refuses recipients with its canned replies (bounce_world.REFUSED); its bounces go
to the bouncing Postfix's Maildir haraka/.

Haraka's notification (outbound/hmail.js, populate_bounce_message_with_headers; its shipped
outbound.bounce_message* templates) is a multipart/report: a multipart/related of a
multipart/alternative (the text, "Intended Recipients: ..." and "Failure Reason: Error: ...", then
"<rcpt>: <reply>" per recipient; the same as HTML) and a PNG icon; a message/delivery-status part
with Original-Envelope-Id (the original Message-ID), "Reporting-MTA: dns;<me>", Arrival-Date and
per recipient Final-Recipient, Action, Status, "Remote-MTA: <IP address>" (no type) and
"Diagnostic-Code: smtp;<reply> "; then the returned headers (text/rfc822-headers).
Haraka writes one notification per queue file. Recipients that fail otherwise than the rest of
the message are first split off into a queue file of their own, and that file keeps only their
addresses (@haraka/email-address's toJSON): their notification has a block with Final-Recipient
alone and empty "<rcpt>: <reply>" lines, so their replies are nowhere in it. A temporary refusal
is retried per temp_fail_intervals (the fixture: once, after 5 s), then bounced as "Too many
failures (...)", Action: failed, Status the server's with 4 made 5 (5.2.2), the reply as it was.
The parser has no Haraka format of its own: it reads the report as RFC 3464."""
import os

import pytest

from bounce_world import CONTENT_REFUSED_SUBJECT, REFUSED, TOO_LARGE_SUBJECT, WORDY, ZH_USER, \
    assert_content_refusal, assert_multi_line_refusal, assert_too_large, assert_utf8_refusal, \
    bounce_all_refused, clear, japanese_subject_bounced, one_bounce, running, send, wait_bounces

SUBMIT = ("127.0.0.76", 2525)
SENDER = "haraka@bouncer.mta.test"
PERMANENT = sorted(r for r, v in REFUSED.items() if v[1] >= 500)


@pytest.fixture(scope="module")
def haraka(mail_world):
    with running("bouncer", "haraka") as d:
        yield d["bouncer"] / "mail" / "haraka"


def notifications(maildir):
    return [p.read_bytes() for p in sorted((maildir / "new").iterdir())]


def common(r, msgid, subject):
    assert (r.kind, r.mta, r.reporting_mta, r.action) == \
        ("bounce", "rfc3464", "haraka.mta.test", "failed"), r
    # Haraka names no command: nothing is made up for it
    assert (r.command, r.original_recipient) == (None, None), r
    assert (r.original_message_id, r.original_subject, r.original_from) == \
        (msgid, subject, SENDER), r


def test_one_record_per_refused_recipient(haraka):
    msgid = "<refused.%d@haraka.mta.test>" % os.getpid()
    got = bounce_all_refused(SUBMIT, SENDER, haraka, "haraka bounce test", msgid)
    # the permanent refusals at once, the temporary one after its retry
    raw = notifications(haraka)
    assert len(raw) == 2, raw
    listed = ", ".join("<%s>" % a for a in PERMANENT)
    for rcpt, (status, code, reason, hard) in REFUSED.items():
        r = got[rcpt]
        common(r, msgid, "haraka bounce test")
        if code >= 500:
            # split off from the accepted and the deferred recipient: the block is Final-Recipient
            # alone; the words are the text's, for all three; no status or reason to be had
            assert (r.status, r.reply_code, r.diagnostic_type, r.rhost) == (None, None, None, None), r
            assert (r.reason, r.hard_bounce) == ("onhold", False), r
            assert r.diagnostic == "Intended Recipients: %s Failure Reason: Error: Some recipients " \
                "failed: %s" % (listed, listed), r
        else:
            # the server's status from the Diagnostic-Code, not Haraka's 5.2.2 in Status
            assert (r.status, r.reply_code, r.reason, r.hard_bounce, r.temporary) == \
                (status, code, reason, hard, True), r
            assert (r.diagnostic_type, r.rhost) == ("smtp", "127.0.0.1"), r
            assert r.diagnostic == "%d %s <%s>: Recipient address rejected: Mailbox full" % \
                (code, status, rcpt), r
    # (the Maildir has them with LF line ends, as Postfix's virtual delivery writes them)
    gave_up = next(m for m in raw if b"Final-Recipient: rfc822;full@" in m)
    assert b"Status: 5.2.2\n" in gave_up
    assert b"Failure Reason: Error: Too many failures (Some recipients temp failed: " \
        b"<full@users.mta.test>)" in gave_up


def test_refused_alone_keep_their_replies(haraka):
    """Every recipient refused at RCPT: no split, one notification with the replies."""
    clear(haraka)
    msgid = "<alone.%d@haraka.mta.test>" % os.getpid()
    send(SUBMIT, SENDER, "haraka refusals", msgid, PERMANENT)
    recs = wait_bounces(haraka, len(PERMANENT))
    got = {r.recipient: r for r in recs}
    assert len(recs) == len(PERMANENT) and sorted(got) == PERMANENT, recs
    assert len(notifications(haraka)) == 1
    for rcpt in PERMANENT:
        status, code, reason, hard = REFUSED[rcpt]
        r = got[rcpt]
        common(r, msgid, "haraka refusals")
        assert (r.status, r.reply_code, r.reason, r.hard_bounce, r.temporary) == \
            (status, code, reason, hard, False), r
        assert (r.diagnostic_type, r.rhost) == ("smtp", "127.0.0.1"), r
        assert r.diagnostic.startswith(
            "%d %s <%s>: Recipient address rejected: " % (code, status, rcpt)), r


def test_domain_without_a_route(haraka):
    """The fixture's get_mx hook routes no other domain: Haraka's own "No MX" notice, its code
    and text as a comment of Status, no Remote-MTA or Diagnostic-Code (and nothing sent)."""
    clear(haraka)
    msgid = "<nomx.%d@haraka.mta.test>" % os.getpid()
    send(SUBMIT, SENDER, "haraka no route", msgid, ["x@nowhere.test"])
    recs = wait_bounces(haraka, 1)
    assert [r.recipient for r in recs] == ["x@nowhere.test"], recs
    r = recs[0]
    common(r, msgid, "haraka no route")
    assert b"Status: 5.1.2 (550 No MX for nowhere.test)\n" in notifications(haraka)[0]
    assert (r.status, r.reply_code, r.diagnostic, r.rhost) == \
        ("5.1.2", 550, "550 No MX for nowhere.test", None), r
    assert (r.reason, r.hard_bounce) == ("hostunknown", True), r


def test_encoded_subject_of_the_returned_headers(haraka):
    raw = japanese_subject_bounced(SUBMIT, SENDER, haraka, "<ja.%d@haraka.mta.test>" % os.getpid())
    # the returned headers keep the Subject as it was sent, an ISO-2022-JP encoded word
    returned = raw[raw.index(b"Content-Type: text/rfc822-headers"):]
    assert b"\nSubject: =?iso-2022-jp?b?" in returned


def test_a_refusal_after_the_data(haraka):
    # Haraka names no command
    msgid = "<content.%d@haraka.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, haraka, CONTENT_REFUSED_SUBJECT, msgid)
    assert_content_refusal(recs, None)


def test_a_message_too_large(haraka):
    # Haraka sends no SIZE=: refused after the data, and it names no command
    msgid = "<large.%d@haraka.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, haraka, TOO_LARGE_SUBJECT, msgid)
    assert_too_large(recs, "5.3.4", 552, None, "552 5.3.4 Error: message file too big")


def test_a_multi_line_reply(haraka):
    # Haraka joins the lines itself and names no command
    msgid = "<wordy.%d@haraka.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, haraka, "multi-line reply test", msgid, WORDY)
    assert_multi_line_refusal(recs, None)


def test_a_reply_in_utf8(haraka):
    # Haraka writes the octets as they came
    msgid = "<zh.%d@haraka.mta.test>" % os.getpid()
    recs = one_bounce(SUBMIT, SENDER, haraka, "UTF-8 reply test", msgid, ZH_USER)
    assert_utf8_refusal(recs, None)
