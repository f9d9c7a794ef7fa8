"""smtpcode.inspect() and the inspection fields of Address: the shared vectors
(tests/vectors/inspect.tsv, typos.tsv, valid_domains.tsv) through the Python binding."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import smtpcode
import vectors

ROWS = vectors.load("inspect.tsv")
MX = {"unknown": None, "none": False, "ok": True}


@pytest.mark.parametrize("row", ROWS, ids=["%d" % (i + 1) for i in range(len(ROWS))])
def test_vectors(row):
    address = vectors.text(row["address"])
    mx = MX[vectors.text(row["route"])]
    if row["valid"] == b"no":
        with pytest.raises(smtpcode.AddressError):
            smtpcode.inspect(address, mx=mx)
        return
    got = smtpcode.inspect(address, mx=mx)
    want_suggestion = None if row["suggestion"] == b"-" else vectors.text(row["suggestion"])
    assert got == (row["disposable"] == b"1", row["role"] == b"1", row["free"] == b"1",
                   want_suggestion)
    assert (got.disposable, got.role, got.free_provider, got.suggestion) == tuple(got)
    # parse_address carries the same flags; its suggestion is the no-DNS candidate
    a = smtpcode.parse_address(address)
    assert (a.disposable, a.role, a.free_provider) == tuple(got)[:3]
    assert a.suggestion == smtpcode.inspect(address).suggestion


def test_typos_measure():
    rows = vectors.load("typos.tsv")
    assert len(rows) >= 300
    right = 0
    for row in rows:
        meant = vectors.text(row["meant"])
        got = smtpcode.inspect("someone@" + vectors.text(row["typed"]), mx=False).suggestion
        right += got == (None if meant == "-" else "someone@" + meant)
    assert right * 10 >= len(rows) * 9, "%d of %d" % (right, len(rows))


def test_valid_domains_get_no_suggestion():
    rows = vectors.load("valid_domains.tsv")
    assert len(rows) >= 300
    wrong = [d for d in (vectors.text(r["domain"]) for r in rows)
             if smtpcode.inspect("someone@" + d).suggestion is not None]
    assert wrong == []


def test_tables_and_types():
    t = smtpcode.inspect_tables()
    assert t["disposable"] >= 100_000 and t["free_provider"] > 1000 and t["role"] > 500
    assert smtpcode.inspect(b"info@mailinator.com") == (True, True, False, None)
    with pytest.raises(TypeError):
        smtpcode.inspect(42)
    with pytest.raises(TypeError):
        smtpcode.inspect("a@b.example", dns=True)
    with pytest.raises(smtpcode.AddressError) as e:
        smtpcode.inspect("a@b\ud800.example")
    assert e.value.kind == "invalid_utf8"

    class Unanswerable:
        def __bool__(self):
            raise RuntimeError("no truth value")
    with pytest.raises(RuntimeError):
        smtpcode.inspect("a@gmial.com", mx=Unanswerable())
    assert smtpcode.inspect("a@gmial.com", mx=0).suggestion == "a@gmail.com"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_result_or_address_error(data):
    try:
        r = smtpcode.inspect(data)
    except smtpcode.AddressError:
        return
    assert isinstance(r.suggestion, (str, type(None)))
