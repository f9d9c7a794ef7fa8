"""decode() on text the classifier was not built from (issue 10), shared with the C and Lua
suites: tests/vectors/heldout.tsv (real replies from MTA sources and providers' documentation,
each group with its source) and tests/vectors/framing.tsv (replies inside relaying MTAs'
framing: code, status and command found, text without the framing)."""
import re

import smtpcode
from reply_contract import assert_reply_contract
import vectors

# Three kinds of rows (see the header of heldout.tsv). The rows of the first sixteen sets had
# rules written for their misses after their set was scored at first sight: they hold the bars
# below. The held-back rows (ids 'h<set>x-', drawn at random before scoring) never had a rule
# written for them: they measure how far the rules reach text nobody fitted them to, and hold a
# floor under the figure they gave when last measured (63.0% / 93.9% over 1005 rows), so a change
# that loses them shows. From the seventeenth set on, a miss gets a rule only when a second real
# text of its cause from another source exists, and those sets' other rows ('h17-' ...) hold the
# same floor (72.9% / 97.0% over 775 rows now): a 95% bar would ask for a rule per miss, most of
# them fitted to the one row. The floor was 65% / 93% until the twentieth set (replies not in
# English, 25% of reasons at first sight) lowered the held-back figure from 68.0% / 94.7%: it
# was set about four points under the figure, as before. The figure has since fallen, as harder sets
# came in (63.0% at the fifty-first): a set that takes it under the floor is a finding to report, not
# a reason to lower the floor quietly.
REASON_BAR = 0.95
HARD_BOUNCE_BAR = 0.99
HELD_BACK_REASON_FLOOR = 0.62
HELD_BACK_HARD_BOUNCE_FLOOR = 0.90
HELD_BACK = re.compile(rb"h[0-9]+x-")
FLOOR_SETS = re.compile(rb"h(1[7-9]|[2-9][0-9])-")  # sets 17 on, rows not held back
HELD_OUT = vectors.load("heldout.tsv")
FRAMING = vectors.load("framing.tsv")


def _decode(row):
    ctx = {}
    if row["command"]:
        ctx["command"] = vectors.text(row["command"])
    if row["host"]:
        ctx["host"] = vectors.text(row["host"])
    return smtpcode.decode(row["text"], **ctx)


def _check(rows, label, min_rows, reason_bar, hard_bar, show_misses=True):
    """Decodes rows, prints their figures and every miss, and holds them to the bars. The misses
    of held-back rows are listed by id alone (show_misses=False): those rows are to be measured,
    not read, and a log that showed their texts and labels would invite the rule that makes their
    figure mean nothing."""
    assert len(rows) >= min_rows
    reason_ok = hard_ok = 0
    misses = []
    for row in rows:
        r = _decode(row)
        assert_reply_contract(r)
        want_reason, want_hb = vectors.text(row["reason"]), row["hard_bounce"] == b"1"
        reason_ok += r.reason == want_reason
        hard_ok += bool(r.hard_bounce) == want_hb
        if r.reason != want_reason or bool(r.hard_bounce) != want_hb:
            misses.append("%s: want %s hb=%d, got %s hb=%d | %.90s" % (
                vectors.text(row["id"]), want_reason, want_hb, r.reason, r.hard_bounce,
                vectors.text(row["text"])) if show_misses else vectors.text(row["id"]))
    n = len(rows)
    print("\n%s %d: reasons %.1f%%, hard bounce %.1f%%" % (label, n, 100.0 * reason_ok / n, 100.0 * hard_ok / n))
    print("misses (%d):\n  %s" % (len(misses), "\n  ".join(misses)))
    assert reason_ok / n >= reason_bar, misses
    assert hard_ok / n >= hard_bar, misses


def test_held_out_agreement():
    _check([row for row in HELD_OUT if not HELD_BACK.match(row["id"]) and not FLOOR_SETS.match(row["id"])],
           "held-out, rows with rules for their set's misses", 150, REASON_BAR, HARD_BOUNCE_BAR)


def test_later_sets_rows_with_rules():
    _check([row for row in HELD_OUT if FLOOR_SETS.match(row["id"])],
           "held-out, sets 17 on, rows with rules where a second text was found", 60,
           HELD_BACK_REASON_FLOOR, HELD_BACK_HARD_BOUNCE_FLOOR)


def test_held_back_rows():
    _check([row for row in HELD_OUT if HELD_BACK.match(row["id"])],
           "held-back rows", 90, HELD_BACK_REASON_FLOOR, HELD_BACK_HARD_BOUNCE_FLOOR, show_misses=False)


def test_held_out_rows_are_sourced_and_unique():
    """Every row sits under a '# source:' comment, and no reply is there twice."""
    seen, sourced = set(), False
    with open(vectors.DIR + "/heldout.tsv", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.startswith("# source:"):
                sourced = True
            elif line.startswith("#") or line.startswith("id\t") or not line.strip():
                continue
            else:
                assert sourced, "row before any source comment: line %d" % (i + 1)
                key = tuple(line.rstrip("\n").split("\t")[1:4])
                assert key not in seen, "duplicate row: line %d" % (i + 1)
                seen.add(key)


def test_framing():
    assert len(FRAMING) >= 20
    for row in FRAMING:
        r = smtpcode.decode(row["input"])
        ident = vectors.text(row["id"])
        assert r.code == (int(row["code"]) or None), ident
        assert r.status == (vectors.text(row["status"]) or None), ident
        assert r.command == (vectors.text(row["command"]) or None), ident
        assert r.text == vectors.text(row["text"]), ident


def test_command_given_wins_over_framing():
    text = "host mx.example.net[192.0.2.10] said: 550 No such user (in reply to end of DATA command)"
    assert smtpcode.decode(text).reason == "filtered"
    r = smtpcode.decode(text, command="RCPT")
    assert r.command == "RCPT" and r.reason == "userunknown" and r.hard_bounce


def test_classify_takes_the_command_from_framing_too():
    r = smtpcode.classify(550, None, "SMTP error from remote mail server after end of data: 550 No such user")
    assert r.command == "DATA" and r.reason == "filtered"
    r = smtpcode.classify(550, None, "No such user")
    assert r.command is None and r.reason == "userunknown"


def test_inferred_codes():
    """code stays what the text holds; code_inferred is Google's documented code for words that
    lost theirs, only when exactly one fits (tests/vectors/inferred_codes.tsv)."""
    rows = vectors.load("inferred_codes.tsv")
    assert len(rows) >= 15
    for row in rows:
        ident = vectors.text(row["id"])
        ctx = {"host": vectors.text(row["host"])} if row["host"] else {}
        r = smtpcode.decode(row["text"], **ctx)
        assert r.code == (int(row["code"]) or None), ident
        assert r.code_source == (vectors.text(row["code_source"]) or None), ident
        assert r.code_inferred == (int(row["code_inferred"]) or None), ident
        assert r.to_dict()["code_inferred"] == r.code_inferred
    text = "The email account that you tried to reach does not exist. - gsmtp"
    r = smtpcode.classify(550, None, text)
    assert (r.code, r.code_source, r.code_inferred) == (550, "given", None)
    r = smtpcode.classify(None, "5.1.1", text)
    assert (r.code, r.code_source, r.code_inferred) == (None, "provider", 550)
