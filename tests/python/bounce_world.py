"""Real MTAs that write bounces, for the bounce parser's tests: the bouncing Postfix
(tests/fixtures/bouncer), Exim (tests/fixtures/exim), OpenSMTPD (tests/fixtures/opensmtpd) and
the others of README's table (Sendmail, Courier, chasquid, dma, Haraka, nullmailer) each relay
every message to the test MTA (tests/fixtures/mta), which refuses recipients with its canned replies
(rcpt_access: full, disabled, moved; unknown users from its virtual mailbox table), and keep the
bounce they write in a Maildir (dma: an mbox). The expected values below come from those
configured replies, not from the parser: the parser reads messages nobody wrote by hand, fresh
each run, in each MTA's own format."""
import contextlib
import email.header
import email.message
import pathlib
import smtplib
import time

import smtpcode
from fixture_mta import _ctl, _ensure

# recipient -> (status, reply code, reason, hard bounce), as the test MTA's configuration makes
# it answer RCPT (tests/fixtures/mta/rcpt_access and main.cf's virtual mailbox table).
REFUSED = {
    "nobody@users.mta.test": ("5.1.1", 550, "userunknown", True),    # not in the user table
    "moved@users.mta.test": ("5.1.6", 551, "hasmoved", True),        # 551 5.1.6 User has moved
    "disabled@users.mta.test": ("5.2.1", 550, "suspend", False),     # 550 5.2.1 Mailbox disabled
    "full@users.mta.test": ("4.2.2", 452, "mailboxfull", False),     # 452 4.2.2 Mailbox full
}
ACCEPTED = "alice@users.mta.test"
# A message with this Subject is refused after its data by the test MTA (its header_checks), in
# rspamd's words: "550 5.7.1 Spam message rejected", for every recipient, ACCEPTED included.
CONTENT_REFUSED_SUBJECT = "content refusal test [content-refused]"
# Refused with Gmail's four-line reply for an unknown address (rcpt_access and footer_maps):
# "550-5.1.1 <WORDY>: Recipient address rejected: The email account ... Please try" and three
# continuation lines. Its words unfolded, as a record's diagnostic gives them:
WORDY = "wordy@users.mta.test"
WORDY_REPLY = ("550 5.1.1 <wordy@users.mta.test>: Recipient address rejected: The email account "
               "that you tried to reach does not exist. Please try double-checking the recipient's "
               "email address for typos or unnecessary spaces. For more information, go to "
               "https://support.google.com/mail/?p=NoSuchUser")
# Refused in UTF-8 (rcpt_access: a Chinese server's "550 邮箱不存在", the mailbox does not exist),
# which the test MTA sends 8-bit after its "5.7.1 <rcpt>: Recipient address rejected: ".
ZH_USER = "zhuser@users.mta.test"
ZH_REPLY = "550 5.7.1 <zhuser@users.mta.test>: Recipient address rejected: 邮箱不存在"
# A message with this Subject carries 300 KiB of text, past the test MTA's size limit (256 KiB):
# "552 5.3.4 Message size exceeds fixed limit" to a MAIL FROM with SIZE=, "552 5.3.4 Error:
# message file too big" after the data of one without; an MTA that reads the limit from the
# server's EHLO may give up by itself.
TOO_LARGE_SUBJECT = "size limit test"


@contextlib.contextmanager
def running(*names):
    """The fixtures `names` up (in order) for the block; only those this call started are
    stopped after it. Yields their state directories by name."""
    started = []
    try:
        for n in names:
            if _ensure(n):
                started.append(n)
        yield {n: pathlib.Path(_ctl(n, "dir").stdout.strip()) for n in names}
    finally:
        for n in reversed(started):
            _ctl(n, "stop", check=False)


def clear(maildir):
    for sub in ("new", "cur", "tmp"):
        for p in (maildir / sub).glob("*") if (maildir / sub).is_dir() else ():
            p.unlink()


def message(sender, subject, msgid, rcpts):
    """The test message every bouncing MTA is given."""
    # compat32's Message writes the headers as given: EmailMessage would decode an encoded
    # subject and write it again as UTF-8 (=?utf-8?b?...?=), whatever charset it was in
    m = email.message.Message()
    m["From"] = sender
    m["To"] = ", ".join(rcpts)
    m["Subject"] = subject
    m["Message-ID"] = msgid
    m["MIME-Version"] = "1.0"
    m["Content-Type"] = 'text/plain; charset="us-ascii"'
    m.set_payload(("x" * 76 + "\n") * 4000 if subject == TOO_LARGE_SUBJECT else
                  "a message for the bounce tests\n")
    return m


def send(submit, sender, subject, msgid, rcpts):
    m = message(sender, subject, msgid, rcpts)
    with smtplib.SMTP(*submit, timeout=10) as s:
        refused = s.send_message(m, from_addr=sender, to_addrs=rcpts)
    assert refused == {}   # the bouncing MTA takes every recipient; the next hop refuses


def wait_bounces(maildir, want_records, timeout=30.0):
    """The records of every bounce in the Maildir, once there are want_records of them."""
    end = time.monotonic() + timeout
    while True:
        recs = list(smtpcode.bounces(str(maildir))) if (maildir / "new").is_dir() else []
        if len(recs) >= want_records or time.monotonic() > end:
            return recs
        time.sleep(0.2)


def reparsed(maildir):
    """The same Maildir's files through parse_bounce, one by one."""
    out = []
    for p in sorted((maildir / "new").iterdir()):
        out.extend(smtpcode.parse_bounce(p.read_bytes()))
    return out


def japanese_subject():
    """A Subject as Japanese mailers write it, RFC 2047 ISO-2022-JP: (its text, which the
    bounce's original_subject must give back; the encoded header to send)."""
    subject = "配信テスト（不達）"
    encoded = email.header.Header(subject, "iso-2022-jp").encode()
    assert encoded.startswith("=?iso-2022-jp?b?")
    return subject, encoded


def send_japanese_subject(submit, sender, rcpt, msgid):
    """A message with japanese_subject(), through submit; returns the subject's text."""
    subject, encoded = japanese_subject()
    send(submit, sender, encoded, msgid, [rcpt])
    return subject


def japanese_subject_bounced(submit, sender, maildir, msgid):
    """A message with japanese_subject() to an unknown user, through the bouncing MTA at submit:
    its one bounce in the (cleared) Maildir must give the subject's text back as
    original_subject. Returns that bounce's octets, for what each MTA keeps of the subject."""
    clear(maildir)
    subject = send_japanese_subject(submit, sender, "nobody@users.mta.test", msgid)
    recs = wait_bounces(maildir, 1)
    assert [(r.recipient, r.original_subject) for r in recs] == [("nobody@users.mta.test", subject)]
    (notice,) = (maildir / "new").iterdir()
    return notice.read_bytes()


def bounce_all_refused(submit, sender, maildir, subject, msgid):
    """One message to every REFUSED recipient and to ACCEPTED, through the bouncing MTA at
    submit; the records of the bounces it writes, by recipient: exactly one per refused
    recipient, and the same when the Maildir's files are parsed one by one."""
    clear(maildir)
    send(submit, sender, subject, msgid, sorted(REFUSED) + [ACCEPTED])
    recs = wait_bounces(maildir, len(REFUSED))
    got = {r.recipient: r for r in recs}
    assert len(recs) == len(REFUSED) and set(got) == set(REFUSED), [r.recipient for r in recs]
    assert sorted(reparsed(maildir)) == sorted(recs)
    return got


def assert_content_refusal(recs, command):
    """The records of the bounce for a message with CONTENT_REFUSED_SUBJECT sent to ACCEPTED:
    one, ACCEPTED refused with the test MTA's reply after the data, the command as the bouncing
    MTA names it (None for an MTA that names none)."""
    assert len(recs) == 1, recs
    (r,) = recs
    assert (r.recipient, r.action, r.status, r.reply_code) == (ACCEPTED, "failed", "5.7.1", 550), r
    assert r.diagnostic.endswith("550 5.7.1 Spam message rejected"), r
    assert (r.command, r.reason, r.hard_bounce, r.original_subject) == \
        (command, "spamdetected", False, CONTENT_REFUSED_SUBJECT), r


def assert_too_large(recs, status, code, command, diagnostic):
    """The records of the bounce for a message with TOO_LARGE_SUBJECT sent to ACCEPTED: one,
    ACCEPTED failed as too large, with the status, reply code, command and diagnostic (its end:
    some MTAs put their own words or a size first) that the bouncing MTA wrote."""
    assert len(recs) == 1, recs
    (r,) = recs
    assert (r.recipient, r.action, r.status, r.reply_code) == (ACCEPTED, "failed", status, code), r
    assert r.diagnostic.endswith(diagnostic), r
    assert (r.command, r.reason, r.hard_bounce, r.original_subject) == \
        (command, "emailtoolarge", False, TOO_LARGE_SUBJECT), r


def assert_multi_line_refusal(recs, command):
    """The records of the bounce for a message to WORDY: one, refused with the whole reply, each
    line's words once and their codes and status dropped (whatever words of its own the bouncing
    MTA puts before it), userunknown."""
    assert len(recs) == 1, recs
    (r,) = recs
    assert (r.recipient, r.action, r.status, r.reply_code) == (WORDY, "failed", "5.1.1", 550), r
    assert r.diagnostic.endswith(WORDY_REPLY), r
    assert (r.command, r.reason, r.hard_bounce) == (command, "userunknown", True), r


def assert_utf8_refusal(recs, command):
    """The records of the bounce for a message to ZH_USER: one, refused with the reply's words
    as the server wrote them, in UTF-8, whatever the bouncing MTA made of its octets on the way
    (Exim escapes them in octal), userunknown."""
    assert len(recs) == 1, recs
    (r,) = recs
    assert (r.recipient, r.action, r.status, r.reply_code) == (ZH_USER, "failed", "5.7.1", 550), r
    assert r.diagnostic.endswith(ZH_REPLY), r
    assert (r.command, r.reason, r.hard_bounce) == (command, "userunknown", True), r


def one_bounce(submit, sender, maildir, subject, msgid, rcpt=ACCEPTED):
    """One message to rcpt through the bouncing MTA at submit; the records of the one bounce it
    writes into the (cleared) Maildir, the same when its file is parsed alone."""
    clear(maildir)
    send(submit, sender, subject, msgid, [rcpt])
    recs = wait_bounces(maildir, 1)
    assert sorted(reparsed(maildir)) == sorted(recs)
    return recs
