"""smtpcode.classify: held-out provider replies (tests/vectors/classify.tsv, shared with the C
and Lua suites), the same replies written differently (case, a full stop, doubled spaces), the
binding's argument handling, and invariants on arbitrary input."""
import pytest
from hypothesis import given, settings, strategies as st

import smtpcode
from reply_contract import assert_reply_contract
import vectors

HELD_OUT = vectors.load("classify.tsv")


def _ctx(row):
    ctx = {}
    if row["command"]:
        ctx["command"] = vectors.text(row["command"])
    if row["host"]:
        ctx["host"] = vectors.text(row["host"])
    return ctx


@pytest.mark.parametrize("row", HELD_OUT, ids=[vectors.text(r["id"]) for r in HELD_OUT])
def test_held_out(row):
    code = int(row["code"]) or None
    status = vectors.text(row["status"]) or None
    r = smtpcode.classify(code, status, row["text"], **_ctx(row))
    assert r.reason == vectors.text(row["reason"])
    assert bool(r.hard_bounce) == (row["hard_bounce"] == b"1")
    assert bool(r.temporary) == (row["temporary"] == b"1")
    assert bool(r.greylisted) == (row["greylisted"] == b"1")
    assert (r.retry_after or 0) == int(row["retry_after"])
    if row["provider"]:
        assert r.provider == vectors.text(row["provider"])
    if r.temporary:
        assert r.retry
    if r.hard_bounce:
        assert not r.retry


def test_held_out_is_big_enough():
    assert len(HELD_OUT) >= 50
    providers = {vectors.text(r["provider"]) for r in HELD_OUT if r["provider"]}
    # every provider the issue names has at least one held-out reply
    for p in ("google", "microsoft", "yahoo", "apple", "zoho", "mimecast", "proofpoint",
              "barracuda", "cisco", "tencent", "mailru", "gmx", "orange", "comcast", "docomo",
              "kddi", "softbank", "rakuten", "yahoojp", "ocn"):
        assert p in providers, p


def test_classify_fields_and_kinds():
    r = smtpcode.classify(421, "4.7.0", "Greylisted, see http://postgrey.schweikert.ch/help/x.html",
                          command="RCPT", host="mx.example.org")
    assert (r.code, r.status, r.kind) == (421, "4.7.0", "transient")
    assert r.greylisted and r.retry and r.retry_after == 300 and not r.hard_bounce
    r = smtpcode.classify(None, "5.1.1", "")
    assert r.code is None and r.kind == "permanent" and r.reason == "userunknown" and r.hard_bounce
    r = smtpcode.classify(None, None, "mailbox full")
    assert r.code is None and r.status is None and r.kind == "unknown" and r.reason == "mailboxfull"
    # bytes work like str
    assert smtpcode.classify(550, None, b"Relay access denied").reason == "norelaying"
    # the code and status found in the text are used when the caller has none
    r = smtpcode.classify(None, None, "smtp; 550 5.1.1 <a@b.example>: Recipient address rejected")
    assert r.code == 550 and r.status == "5.1.1" and r.reason == "userunknown"


def test_provider_context_changes_the_meaning():
    gmail = smtpcode.classify(421, "4.7.27", "rate limited", command="DATA", host="gmail-smtp-in.l.google.com")
    other = smtpcode.classify(421, "4.7.27", "rate limited", command="DATA", host="mx.example.org")
    assert gmail.reason == "authfailure" and gmail.provider == "google"
    assert other.reason != "authfailure" and other.provider is None


def test_command_context():
    assert smtpcode.classify(550, None, "User unknown", command="RCPT").reason == "userunknown"
    assert smtpcode.classify(550, None, "User unknown", command="DATA").reason == "filtered"


def test_bad_arguments():
    with pytest.raises(smtpcode.ReplyError):
        smtpcode.classify(99, None, "x")
    with pytest.raises(TypeError):
        smtpcode.classify(550, None, 12)


@settings(max_examples=400, deadline=None)
@given(code=st.one_of(st.none(), st.integers(100, 599)),
       status=st.one_of(st.none(), st.sampled_from(["4.7.1", "5.1.1", "5.7.606", "4.2.2", "2.0.0", "5.7.27"])),
       text=st.binary(max_size=600),
       command=st.sampled_from([None, "RCPT", "DATA", "MAIL", "CONN", "EHLO"]),
       host=st.sampled_from([None, "gmail-smtp-in.l.google.com", "mx.example.org", ".", ""]))
def test_invariants_on_arbitrary_input(code, status, text, command, host):
    ctx = {k: v for k, v in (("command", command), ("host", host)) if v is not None}
    try:
        r = smtpcode.classify(code, status, text, **ctx)
    except smtpcode.ReplyError:
        return
    assert_reply_contract(r)


# How a reply was written down, not what it says: upper case (replies are case-insensitive; a
# log or a client may shout them), a closing full stop, doubled spaces (from a flattened
# multi-line reply or a hand-copied log).
RESPELLINGS = {
    "upper case": lambda t: t.upper() if t.isascii() else t,
    "full stop": lambda t: t + ".",
    "doubled spaces": lambda t: t.replace(" ", "  "),
}


@pytest.mark.parametrize("respelling", sorted(RESPELLINGS))
def test_the_writing_does_not_change_the_reason(respelling):
    change = RESPELLINGS[respelling]
    differ = []
    for row in HELD_OUT:
        code = int(row["code"]) or None
        status = vectors.text(row["status"]) or None
        text = vectors.text(row["text"])
        a = smtpcode.classify(code, status, text, **_ctx(row))
        b = smtpcode.classify(code, status, change(text), **_ctx(row))
        if (a.reason, a.hard_bounce, a.temporary) != (b.reason, b.hard_bounce, b.temporary):
            differ.append((vectors.text(row["id"]), a.reason, b.reason))
    assert differ == [], differ
