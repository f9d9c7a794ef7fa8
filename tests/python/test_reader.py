"""smtpcode.Reader: the shared stream vectors at every split point, errors and memory ownership."""
import gc

import pytest

import smtpcode
import vectors

ROWS = vectors.load("streams.tsv")


def run(stream, cuts):
    rd = smtpcode.Reader()
    got, err = [], None
    prev = 0
    try:
        for c in list(cuts) + [len(stream)]:
            rd.feed(stream[prev:c])
            prev = c
            for rep in rd:
                got.append("%d:%d" % (rep.code, len(rep.lines)))
    except smtpcode.ReplyError as e:
        err = str(e)
    return ",".join(got), err


@pytest.mark.parametrize("row", ROWS, ids=[r["id"].decode() for r in ROWS])
def test_stream_every_split(row):
    s = row["stream"]
    want = row["replies"].decode()
    for i in range(len(s) + 1):
        got, err = run(s, [i])
        assert got == want, "split at %d" % i
        if row["error"]:
            assert err is not None
            assert err.endswith("at offset %s" % row["error_offset"].decode())
        else:
            assert err is None


def test_each_reply_comes_out_once():
    rd = smtpcode.Reader()
    rd.feed(b"250 a\r\n250 b\r\n")
    assert [r.text for r in rd] == ["a", "b"]
    assert list(rd) == []
    rd.feed(b"221 bye\r\n")
    assert [r.code for r in rd] == [221]


def test_errors_are_sticky():
    rd = smtpcode.Reader()
    rd.feed(b"garbage\r\n")
    with pytest.raises(smtpcode.ReplyError):
        next(rd)
    with pytest.raises(smtpcode.ReplyError):
        rd.feed(b"250 ok\r\n")


def test_limits_are_options():
    rd = smtpcode.Reader(max_lines=2)
    rd.feed(b"250-a\r\n250-b\r\n250 c\r\n")
    with pytest.raises(smtpcode.ReplyError, match="more lines"):
        list(rd)


def test_gc_mid_reply_and_pending():
    rd = smtpcode.Reader()
    rd.feed(b"250-first\r\n250-sec")
    assert rd.pending == 18
    assert list(rd) == []
    del rd
    gc.collect()


def test_reply_outlives_reader():
    rd = smtpcode.Reader()
    rd.feed(b"550 5.1.1 gone\r\n")
    rep = next(rd)
    rd.feed(b"x" * 100 + b"\r\n") if False else None
    del rd
    gc.collect()
    assert rep.text == "gone" and rep.status == "5.1.1"
