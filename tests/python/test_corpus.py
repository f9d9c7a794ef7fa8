"""The classifier measured on real bounces: Sisimai's public sample set (../shared/corpus).

Every row is classified with smtpcode.classify(code, status, diagnostic, command=, host=) and
compared with the reason and hard-bounce flag Sisimai expects. The test fails below 96% reason
agreement (issue 10's bar) or 99% hard-bounce agreement, and prints the agreement and every row that misses.
It is skipped, saying why, only when no corpus exists (the corpus is not part of the repo).
"""
import csv
import os

import pytest

import smtpcode
from reply_contract import assert_reply_contract

REASON_BAR = 0.96
HARD_BOUNCE_BAR = 0.99
MAX_DELIBERATE = 21  # rows left out by deliberate_disagreement: 21, and it must not grow
_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def corpus_path():
    env = os.environ.get("SMTPCODE_CORPUS")
    if env:
        return os.path.join(env, "sisimai-dev.tsv") if os.path.isdir(env) else env
    return os.path.join(_ROOT, "..", "shared", "corpus", "sisimai-dev.tsv")


def load_corpus():
    path = corpus_path()
    if not os.path.exists(path):
        pytest.skip("no corpus: %s does not exist (set SMTPCODE_CORPUS)" % path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows, "empty corpus " + path
    return rows


def classify_row(row):
    ctx = {}
    if row["command"]:
        ctx["command"] = row["command"]
    if row["rhost"]:
        ctx["host"] = row["rhost"]
    return smtpcode.classify(
        int(row["reply_code"]) if row["reply_code"] else None,
        row["status"] or None,
        row["diagnostic"],
        **ctx,
    )


def deliberate_disagreement(row, r):
    """The one rule where smtpcode departs from Sisimai on purpose (issue 10).

    A "no such user" text with no command known (the row has none and no framing around the
    reply names one) and no status saying the mailbox exists (X.2, X.3, X.7) is `userunknown`,
    a hard bounce: a person or a probe pasting a bare reply means the RCPT answer. Sisimai
    labels such rows `filtered` because, with no command, it assumes the reply came after
    DATA. The corpus rows are bounce mails whose command was lost on the way into the TSV;
    the rule follows what the text says, so these rows are counted apart, by this narrow
    test, and printed."""
    st = row["status"]
    return (row["reason"] == "filtered" and r.reason == "userunknown" and not row["command"]
            and r.command is None and not (st[:3] in ("5.2", "5.3", "5.7", "4.2", "4.3", "4.7")))


def test_corpus_agreement():
    rows = load_corpus()
    reason_ok = hard_ok = raw_reason = raw_hard = 0
    misses, deliberate = [], []
    for row in rows:
        r = classify_row(row)
        want_hb = row["hardbounce"] == "1"
        raw_reason += r.reason == row["reason"]
        raw_hard += bool(r.hard_bounce) == want_hb
        if deliberate_disagreement(row, r):
            # left out of the measured rows (not counted as agreeing): the bars below hold on
            # the rows where smtpcode and Sisimai mean to agree, and the raw figure is printed
            deliberate.append("%-28s sisimai filtered, smtpcode userunknown | %.90s" % (row["id"], row["diagnostic"]))
            continue
        if r.reason == row["reason"]:
            reason_ok += 1
        if bool(r.hard_bounce) == want_hb:
            hard_ok += 1
        if r.reason != row["reason"] or bool(r.hard_bounce) != want_hb:
            misses.append("%-28s want %-15s hb=%d got %-15s hb=%d provider=%s | %.110s" % (
                row["id"], row["reason"], want_hb, r.reason, r.hard_bounce, r.provider,
                row["diagnostic"]))
    n = len(rows) - len(deliberate)
    # the rule departs from 21 rows; more would mean it catches texts it should not
    assert len(deliberate) <= MAX_DELIBERATE, "%d deliberate disagreements > %d" % (len(deliberate), MAX_DELIBERATE)
    print("\ncorpus rows measured %d: reason agreement %d (%.2f%%), hard_bounce agreement %d (%.2f%%)"
          % (n, reason_ok, 100.0 * reason_ok / n, hard_ok, 100.0 * hard_ok / n))
    print("raw agreement with Sisimai: reason %d (%.2f%%), hard_bounce %d (%.2f%%); deliberate "
          "disagreements (commandless user-unknown texts, see deliberate_disagreement) %d:\n  %s"
          % (raw_reason, 100.0 * raw_reason / len(rows), raw_hard, 100.0 * raw_hard / len(rows), len(deliberate),
             "\n  ".join(deliberate)))
    print("misses (%d):\n  %s" % (len(misses), "\n  ".join(misses)))
    assert reason_ok / n >= REASON_BAR, "reason agreement %.2f%% < %.0f%%" % (100.0 * reason_ok / n, 100 * REASON_BAR)
    assert hard_ok / n >= HARD_BOUNCE_BAR, "hard_bounce agreement %.2f%% < %.0f%%" % (100.0 * hard_ok / n, 100 * HARD_BOUNCE_BAR)


def test_corpus_contract_holds_on_every_row():
    """Whatever the reason, the decision is internally consistent on real data."""
    for row in load_corpus():
        assert_reply_contract(classify_row(row))


def test_corpus_reply_code():
    """The reply code, on the rows that have one: found in the text by decode(), and found or
    inferred (code_inferred, the provider's documented code for words whose own code was
    stripped on the way: Sisimai removes "550-5.7.26" prefixes from Gmail's folded replies
    after reading the code). Both are printed; every inferred code must be the row's."""
    rows = [row for row in load_corpus() if row["reply_code"]]
    found = inferred = 0
    wrong = []
    for row in rows:
        r = smtpcode.decode(row["diagnostic"])
        if r.code is not None:
            found += 1
            assert r.code_source == "text"
        elif r.code_inferred is not None:
            inferred += 1
            if str(r.code_inferred) != row["reply_code"]:
                wrong.append("%s: inferred %d, row %s" % (row["id"], r.code_inferred, row["reply_code"]))
    n = len(rows)
    print("\nreply code on %d rows that have one: found in the text %d (%.1f%%); found or inferred %d "
          "(%.1f%%); inferred %d, of which disagree with the row: %d"
          % (n, found, 100.0 * found / n, found + inferred, 100.0 * (found + inferred) / n, inferred, len(wrong)))
    assert not wrong, wrong
    assert found / n >= 0.91, "code found in the text on %.1f%% (was 91.9%%)" % (100.0 * found / n)
    assert (found + inferred) / n >= 0.95
