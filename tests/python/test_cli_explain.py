"""`smtpcode explain` and `smtpcode decode` text output as a user reads it (python -m smtpcode in
a subprocess): the Causes/Fixes headings (原因/対処法), a reply pasted as one argument, class
keys, Japanese labels, and wrapping by display width. Expectations come from the catalog through
the binding and from what the issue asks, not from the command's own output."""
import json
import os
import subprocess
import sys

import pytest
from wcwidth import wcswidth

import smtpcode


def cli(*args, columns=None):
    env = dict(os.environ)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "smtpcode", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def squeeze(s):
    return "".join(s.split())


def section(out, heading):
    """The indented lines under a heading line, joined without the wrapping."""
    lines = out.splitlines()
    i = lines.index(heading)
    body = []
    for line in lines[i + 1:]:
        if not line.startswith("  "):
            break
        body.append(line)
    return body


@pytest.mark.parametrize("lang,causes,fixes", [("en", "Causes", "Fixes"), ("ja", "原因", "対処法")])
def test_explain_prints_causes_and_fixes_under_headings(lang, causes, fixes):
    r = cli("explain", "5.1.1", "--lang", lang)
    assert r.returncode == 0, r.stderr
    e = smtpcode.explain("5.1.1", lang)
    assert squeeze("".join(section(r.stdout, causes))) == squeeze(e.causes)
    assert squeeze("".join(section(r.stdout, fixes))) == squeeze(e.fixes)
    assert squeeze(e.description) in squeeze(r.stdout)
    # causes come before fixes, and the class-specific text is the 5.1.1 one
    assert r.stdout.index(causes) < r.stdout.index(fixes)
    assert e.causes != smtpcode.explain("4.1.1", lang).causes


def test_explain_one_argument_as_pasted_works_like_two():
    one, two = cli("explain", "554 5.7.1"), cli("explain", "554", "5.7.1")
    assert one.returncode == 0 and two.returncode == 0, one.stderr
    assert one.stdout == two.stdout
    assert one.stdout.startswith("554  ")
    assert "\n5.7.1  " in one.stdout


def test_explain_a_whole_pasted_reply_explains_its_code_and_status():
    r = cli("explain", "--format", "json", "550 5.1.1 <bob@example.com>: Recipient address "
                                          "rejected: User unknown in virtual mailbox table")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert [d["key"] for d in recs] == ["550", "5.1.1"]
    assert recs[1]["causes"] == smtpcode.explain("5.1.1").causes
    assert recs[1]["fixes"] == smtpcode.explain("5.1.1").fixes


def test_explain_a_continuation_line_prefix_is_read_as_a_reply():
    r = cli("explain", "--format", "json", "550-5.1.1")
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["key"] for x in r.stdout.splitlines()] == ["550", "5.1.1"]


def test_explain_unknown_word_still_fails():
    r = cli("explain", "nosuchthing", "550")
    assert r.returncode == 1
    assert "nosuchthing" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout.startswith("550  ")


@pytest.mark.parametrize("key,norm,word", [
    ("4xx", "4xx", "Transient"), ("5", "5xx", "Permanent"), ("5.x.x", "5.x.x", "Permanent"),
    ("4.X.X", "4.x.x", "transient")])
def test_explain_class_keys(key, norm, word):
    r = cli("explain", key)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith(norm + "  ") and word in first


def test_explain_text_wraps_japanese_by_display_width():
    e = smtpcode.explain("5.1.1", "ja")
    r = cli("explain", "5.1.1", "--lang", "ja", columns=40)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert all(wcswidth(line) <= 40 for line in lines), [l for l in lines if wcswidth(l) > 40]
    body = section(r.stdout, "原因")
    # the paragraph has no spaces to break at, yet it is split into several lines that fill
    # the width, and each line break falls between characters, none dropped or added
    assert len(body) >= 3
    assert squeeze("".join(body)) == squeeze(e.causes)
    assert max(wcswidth(line) for line in body) >= 36
    # kinsoku: no line starts with closing punctuation
    assert not any(line.strip()[0] in "、。）」" for line in lines if line.strip())


def test_explain_english_wraps_at_spaces():
    r = cli("explain", "5.1.1", columns=50)
    lines = r.stdout.splitlines()
    assert all(len(line) <= 50 for line in lines)
    words = smtpcode.explain("5.1.1").fixes.split()
    assert " ".join(" ".join(section(r.stdout, "Fixes")).split()) == " ".join(words)


def test_decode_in_japanese_labels_everything():
    r = cli("decode", "--lang", "ja", "550 5.1.1 <x@y.test>: User unknown", columns=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    verdict = squeeze(out.split("応答:")[0])  # it may wrap, between its items only
    assert verdict.startswith("5505.1.1")
    # the verdict line: permanent, hard bounce, do not retry as is -- in Japanese
    assert "恒久的なエラー" in verdict and "ハードバウンス" in verdict and "そのまま再送しない" in verdict
    for label in ("応答:", "理由:", "ステータス:", "意味:", "原因:", "対処法:"):
        assert any(line.startswith(label) for line in out.splitlines()), label
    for english in ("reply:", "reason:", "status:", "meaning:", "action:", "causes:", "fixes:",
                    "permanent", "hard bounce", "do not retry"):
        assert english not in out, english
    assert all(wcswidth(line) <= 60 for line in out.splitlines())


def test_decode_transient_verdict_in_japanese():
    r = cli("decode", "--lang", "ja", "452 4.2.2 Mailbox full")
    assert r.returncode == 0, r.stderr
    verdict = squeeze(r.stdout.split("応答:")[0])
    assert "一時的なエラー" in verdict and "時間をおいて再送" in verdict
    assert "transient" not in r.stdout and "retry later" not in r.stdout
