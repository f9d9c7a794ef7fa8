"""The bounce parser reads what a message says, not how it was carried: every bounce of the
repository's vectors (tests/vectors/bounce) and of the shared corpus (../shared/corpus/bounces,
when it is there) gives the same records, field for field, after changes that a mail store, a
relay or a mail client makes without changing the message:
  - CRLF or CR line ends instead of LF;
  - header field names in lower case;
  - one more Received header on top (after an mbox "From " line);
  - every text/plain leaf part re-encoded as base64, or as quoted-printable.
The re-encoding goes through Python's email package (compat32), which also writes the rest of
the message again; where that rewriting alone changes the records (a delivery-status part whose
continuation lines are not indented comes back folded otherwise), the message is left out of
that check and counted apart, so only the encoding is under test."""
import base64
import email
import email.policy
import glob
import os
import quopri
import re

import pytest

import smtpcode

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "vectors", "bounce")
CORPUS = os.environ.get("SMTPCODE_CORPUS",
                        os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "corpus")))
FIELDS = ("kind", "recipient", "original_recipient", "action", "status", "reply_code", "reason",
          "hard_bounce", "diagnostic", "command", "rhost", "reporting_mta", "mta",
          "original_message_id", "original_subject", "original_from")


def records(raw):
    return sorted(tuple(str(getattr(r, f)) for f in FIELDS) for r in smtpcode.parse_bounce(raw))


def line_ends(raw, end):
    return re.sub(rb"\r?\n", end, raw)


def lower_names(raw):
    """The message's own header names only (not those of its parts or of the returned message)."""
    end = re.search(rb"\r?\n\r?\n", raw)
    end = end.start() if end else len(raw)
    return re.sub(rb"(?m)^([A-Za-z0-9-]+):", lambda m: m.group(1).lower() + b":", raw[:end]) + raw[end:]


def one_more_received(raw):
    mbox_line = b""
    if raw.startswith(b"From "):
        mbox_line, raw = raw.split(b"\n", 1)
        mbox_line += b"\n"
    return mbox_line + (b"Received: from relay.example.net (relay.example.net [192.0.2.9])\n"
                        b"\tby mx.example.org with ESMTP id 4Fx2Ab\n"
                        b"\tfor <postmaster@example.org>; Mon, 7 Dec 2026 10:00:00 +0000\n") + raw


def rewritten(raw, encoding=None):
    """The message as the email package writes it again; with encoding, every text/plain leaf
    of the multipart tree (not the blocks inside a delivery-status part) in that encoding."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)

    def visit(part):
        if part.is_multipart():
            if part.get_content_maintype() == "multipart":
                for sub in part.get_payload():
                    visit(sub)
            return
        payload = part.get_payload(decode=True)
        if encoding is None or part.get_content_type() != "text/plain" or payload is None:
            return
        del part["Content-Transfer-Encoding"]
        if encoding == "base64":
            part.set_payload(base64.encodebytes(payload).decode("ascii"))
        else:
            part.set_payload(quopri.encodestring(payload).decode("ascii"))
        part["Content-Transfer-Encoding"] = encoding

    visit(msg)
    return msg.as_bytes()


def messages():
    files = sorted(glob.glob(os.path.join(VECTORS, "*.eml")))
    files += sorted(glob.glob(os.path.join(CORPUS, "bounces", "*.eml")))
    return files


BYTE_LEVEL = {
    "crlf": lambda raw: line_ends(raw, b"\r\n"),
    "cr": lambda raw: line_ends(raw, b"\r"),
    "lower-case names": lower_names,
    "one more Received": one_more_received,
}


@pytest.mark.parametrize("change", sorted(BYTE_LEVEL))
def test_byte_level_changes_keep_the_records(change):
    files = messages()
    assert len(files) >= 80   # the vectors at least
    differ = []
    for path in files:
        raw = open(path, "rb").read()
        if records(BYTE_LEVEL[change](raw)) != records(raw):
            differ.append(os.path.basename(path))
    assert differ == [], differ


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_text_parts_in_another_transfer_encoding_keep_the_records(encoding):
    differ, checked, rewrite_changes = [], 0, []
    for path in messages():
        raw = open(path, "rb").read()
        want = records(raw)
        if records(rewritten(raw)) != want:
            rewrite_changes.append(os.path.basename(path))
            continue
        checked += 1
        if records(rewritten(raw, encoding)) != want:
            differ.append(os.path.basename(path))
    print("\n%s: %d messages checked, %d left out (rewriting alone changes them: %s)" % (
        encoding, checked, len(rewrite_changes), ", ".join(rewrite_changes)))
    assert checked >= 80 and len(rewrite_changes) <= checked // 50, rewrite_changes
    assert differ == [], differ
