"""smtpcode.explain through the Python binding, driven by tests/vectors/explain.tsv (the same rows
the C and Lua suites read), plus the binding's contract: int keys, ValueError, Explanation."""
import gc

import pytest

import smtpcode
from vectors import load, text

ROWS = load("explain.tsv")


def call(key, lang):
    return smtpcode.explain(key) if lang == "-" else smtpcode.explain(key, lang)


def check_entry(e, norm_key, word, causes="-", fixes="-", absent="-"):
    assert e.key == norm_key
    for f in (e.title, e.description, e.causes, e.fixes, e.action):
        assert isinstance(f, str) and f
    assert e.action == e.fixes
    if word != "-":
        assert word.lower() in e.title.lower(), (e.title, word)
    if causes not in ("", "-"):
        assert causes in e.causes, (e.causes, causes)
    if fixes not in ("", "-"):
        assert fixes in e.fixes, (e.fixes, fixes)
    if absent not in ("", "-"):
        for f in (e.description, e.causes, e.fixes):
            assert absent not in f, (f, absent)


def check_error(key, lang, outcome):
    with pytest.raises(ValueError) as info:
        call(key, lang)
    # The message tells a bad language apart from a bad key.
    assert ("language" in str(info.value)) == (outcome == "BADLANG")


@pytest.mark.parametrize("row", ROWS, ids=[f"{i + 1}:{text(r['key'])!r}/{text(r['lang'])}" for i, r in enumerate(ROWS)])
def test_vector(row):
    key, lang, outcome = text(row["key"]), text(row["lang"]), text(row["outcome"])
    if outcome == "ok":
        e = call(key, lang)
        check_entry(e, text(row["norm_key"]), text(row["title"]), text(row.get("causes", "")),
                    text(row.get("fixes", "")), text(row.get("absent", "")))
    else:
        check_error(key, lang, outcome)
    # The same key given as an int gives the same outcome.
    if key.isascii() and key.isdigit() and not key.startswith("0"):
        if outcome == "ok":
            ei = call(int(key), lang)
            check_entry(ei, text(row["norm_key"]), text(row["title"]))
            assert (ei.title, ei.description, ei.action) == (e.title, e.description, e.action)
        else:
            check_error(int(key), lang, outcome)


def test_reply_error_is_value_error():
    with pytest.raises(smtpcode.ReplyError):
        smtpcode.explain("5.01.1")
    assert issubclass(smtpcode.ReplyError, ValueError)


def test_default_is_english():
    assert smtpcode.explain(550) == smtpcode.explain(550, "en")
    assert smtpcode.explain(550, lang="ja").title != smtpcode.explain(550).title
    ja = smtpcode.explain(550, "ja")
    assert "です" in ja.description or "ます" in ja.description


def test_every_code_100_to_599_and_the_classes():
    for code in range(0, 1000):
        if 100 <= code <= 599:
            e = smtpcode.explain(code, "ja")
            assert e.key == f"{code:03d}"
            assert e.title and e.description and e.causes and e.fixes
        elif 1 <= code <= 5:  # a lone first digit is the class, as the key "5"
            assert smtpcode.explain(code).key == f"{code}xx"
        else:
            with pytest.raises(ValueError):
                smtpcode.explain(code)


@pytest.mark.parametrize("key", [-550, 10**30, True, 550.0, None, b"550", ["550"]])
def test_wrong_key_types(key):
    with pytest.raises((TypeError, ValueError)):
        smtpcode.explain(key)


def test_status_with_class():
    x, p, t = smtpcode.explain("X.2.2"), smtpcode.explain("5.2.2"), smtpcode.explain("4.2.2")
    assert p.title == x.title
    assert x.description in p.description
    assert p.description != t.description


def test_every_reason():
    for name in smtpcode.reasons():
        for lang in ("en", "ja"):
            assert smtpcode.explain(name, lang).key == name


def test_strings_outlive_later_calls():
    a = smtpcode.explain(599)
    title = a.title
    for _ in range(100):
        smtpcode.explain("5.9.9", "ja")
    gc.collect()
    assert a.title == title and "mail system" in title
