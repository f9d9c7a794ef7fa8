"""The bounce parser against real bounces: ../shared/corpus/bounces/*.eml (461 mails of the
Sisimai project's set-of-emails, BSD-2) and the expected per-recipient rows of
../shared/corpus/sisimai-dev.tsv (id = "<file name>#<recipient index>").

Measured over the messages that have rows in the TSV (some rows' files are held back on purpose,
and some files have no rows: ARF reports, auto-replies, delivered notices):
  - records per message equal to the TSV's rows: >= 97% of messages;
  - for the recipients of those messages, matched in order: status >= 97%, reply code >= 95%,
    reason >= 95%, hard bounce >= 99%;
  - every rfc3464-*, lhost-postfix-*, -exim-*, -sendmail-*, -qmail-*, -gmail-*, -office365-*
    file gives the TSV's number of recipients.
Only bounce records count (kind "bounce", not a delivery report: action delivered/relayed/
expanded or a 2.x.x status), as the TSV lists failures only; and, as Sisimai does, a "delayed"
recipient counts only in a report that has no "failed" one (a warning beside failures is no
bounce). The corpus lives outside the repo;
without it the test is skipped (and says so).
"""
import collections
import os
import re

import pytest

import smtpcode

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.environ.get("SMTPCODE_CORPUS",
                        os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "corpus")))
MAILS = os.path.join(CORPUS, "bounces")
TSV = os.path.join(CORPUS, "sisimai-dev.tsv")
MUST_COUNT = re.compile(r"^(rfc3464|lhost-(postfix|exim|sendmail|qmail|gmail|office365))-")

pytestmark = pytest.mark.skipif(not (os.path.isdir(MAILS) and os.path.isfile(TSV)),
                                reason="the shared corpus (%s) is absent: nothing to measure" % CORPUS)


def expected():
    rows = collections.defaultdict(list)
    with open(TSV, encoding="utf-8") as f:
        cols = f.readline().rstrip("\n").split("\t")
        for line in f:
            rec = dict(zip(cols, line.rstrip("\n").split("\t")))
            name, _, idx = rec["id"].partition("#")
            rows[name].append((int(idx), rec))
    return {k: [r for _, r in sorted(v, key=lambda x: x[0])] for k, v in rows.items()}


def deliberate_disagreement(w, g):
    """Issue 10's rule, where smtpcode departs from Sisimai on purpose (see test_corpus.py): a
    "no such user" text with no command known and no status saying the mailbox exists is
    `userunknown` (a hard bounce); Sisimai calls it `filtered`. Such recipients count apart
    (raw figures are printed too). The TSV's command is Sisimai's reading of the whole mail; the
    parser passes the command it finds itself, so the TSV's is not required to be empty here
    (lhost-sendmail-27: "550 ... User unknown" then "503 Need RCPT" shows the 550 answered
    RCPT, though Sisimai says DATA)."""
    st = w["status"]
    return (w["reason"] == "filtered" and g.reason == "userunknown"
            and st[:3] not in ("5.2", "5.3", "5.7", "4.2", "4.3", "4.7"))


def is_failure(b):
    return (b.kind == "bounce" and b.action not in ("delivered", "relayed", "expanded")
            and not (b.status or "").startswith("2."))


@pytest.fixture(scope="module")
def measured():
    exp = expected()
    names = sorted(n[:-4] for n in os.listdir(MAILS) if n.endswith(".eml") and n[:-4] in exp)
    m = collections.Counter()
    wrong_count = []
    misses = collections.defaultdict(list)
    for name in names:
        with open(os.path.join(MAILS, name + ".eml"), "rb") as f:
            got = [b for b in smtpcode.parse_bounce(f.read()) if is_failure(b)]
        if any(b.action == "failed" for b in got):
            got = [b for b in got if b.action != "delayed"]
        want = exp[name]
        m["messages"] += 1
        if len(got) == len(want):
            m["count_ok"] += 1
        else:
            wrong_count.append((name, len(want), len(got)))
        for w, g in zip(want, got):
            m["recipients"] += 1
            apart = deliberate_disagreement(w, g)
            m["deliberate"] += apart
            m["raw_reason"] += w["reason"] == g.reason
            m["raw_hard"] += (w["hardbounce"] == "1") == g.hard_bounce
            checks = {
                "status": w["status"] == (g.status or ""),
                "code": w["reply_code"] == (str(g.reply_code) if g.reply_code else ""),
            }
            if not apart:  # left out of the reason and hard-bounce measure, not counted as agreeing
                m["judged"] += 1
                checks["reason"] = w["reason"] == g.reason
                checks["hard"] = (w["hardbounce"] == "1") == g.hard_bounce
            for k, ok in checks.items():
                m[k] += ok
                if not ok:
                    misses[k].append(name)
    return m, wrong_count, misses


def _share(m, key, of):
    return m[key] / m[of] if m[of] else 0.0


def test_corpus_present_and_sized(measured):
    m, _, _ = measured
    assert m["messages"] >= 400 and m["recipients"] >= 300


@pytest.mark.parametrize("key,of,goal", [
    ("count_ok", "messages", 0.97),
    ("status", "recipients", 0.97),
    ("code", "recipients", 0.95),
    ("reason", "judged", 0.95),
    ("hard", "judged", 0.99),
])
def test_corpus_agreement(measured, key, of, goal):
    m, wrong_count, misses = measured
    share = _share(m, key, of)
    detail = wrong_count if key == "count_ok" else misses[key]
    print("%s: %.1f%% (%d/%d)" % (key, 100 * share, m[key], m[of]))
    if key in ("reason", "hard"):
        print("  raw %s agreement with Sisimai %d/%d; deliberate disagreements left out: %d"
              % (key, m["raw_" + key], m["recipients"], m["deliberate"]))
        # 16, and it must not grow: more would mean the rule catches texts it should not
        assert m["deliberate"] <= 16, "%d deliberate disagreements > 16" % m["deliberate"]
    assert share >= goal, "%s %.1f%% < %.0f%%: %s" % (key, 100 * share, 100 * goal, detail[:40])


def test_corpus_main_mtas_give_every_recipient(measured):
    _, wrong_count, _ = measured
    bad = [w for w in wrong_count if MUST_COUNT.match(w[0])]
    assert not bad, "files whose recipients differ from the TSV (name, want, got): %s" % bad


def test_text_alone_names_the_dsn_recipients():
    """A bounce forwarded or filed without its attachments keeps only its text. For every corpus
    bounce with a delivery-status part, that part is hidden (its type renamed) and the rest read
    again: the text's formats (and the last-resort reader) must name the same recipients as the
    DSN did for most of them. 201 of 247 did before the text readers of stop 27, 213 now; the
    others are notices whose text names nobody (Amazon SES's receiving notices, Office 365's
    HTML-only text) or Sendmail's naming the expanded address where its DSN names the alias."""
    same = total = 0
    for name in sorted(os.listdir(MAILS)):
        with open(os.path.join(MAILS, name), "rb") as f:
            data = f.read()
        if not re.search(rb"(?i)content-type:\s*message/delivery-status", data):
            continue
        hidden = re.sub(rb"(?i)(content-type:\s*)message/delivery-status", rb"\1application/x-hidden",
                        data)
        want = {r.recipient.lower() for r in smtpcode.parse_bounce(data) if r.kind == "bounce"}
        got = {r.recipient.lower() for r in smtpcode.parse_bounce(hidden) if r.kind == "bounce"}
        total += 1
        same += want == got
    print("\ntext alone names the DSN's recipients: %d of %d" % (same, total))
    assert total >= 240
    assert same / total >= 0.84
