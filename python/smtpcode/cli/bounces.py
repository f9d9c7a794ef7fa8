"""`smtpcode bounces PATH...`: every recipient of every bounce in mailboxes, Maildirs and files.

Output: a table on a terminal, or JSON lines / CSV (--format). A progress bar on stderr when it
is a terminal, and a summary by reason at the end. --unsubscribe-list writes the addresses
whose bounces are hard: the ones to remove from a mailing list.
"""
import collections
import os
import sys
import time

import smtpcode
from smtpcode._bounces import messages

from .formats import CsvWriter, JsonlWriter, printable
from .main import EXIT_FAILURE, EXIT_OK, Failure

FIELDS = ("source", "kind", "recipient", "original_recipient", "action", "status", "reply_code", "reason",
          "hard_bounce", "retry", "command", "rhost", "diagnostic", "mta", "reporting_mta",
          "arrival_date", "original_message_id", "original_subject", "original_from",
          "original_to", "feedback_type", "note", "explanation")


def add_parser(sub):
    sp = sub.add_parser(
        "bounces", help="read bounces from mbox files, Maildir folders or .eml files",
        description="One record per failed recipient of every bounce in the inputs (mbox, "
                    "Maildir folder, folder of message files, single message, '-' for stdin; "
                    "gzip'd files too). ARF abuse reports and auto-replies are listed with "
                    "kind 'feedback' / 'autoreply'; other mail is skipped.")
    sp.add_argument("paths", nargs="+", metavar="PATH")
    sp.add_argument("--format", choices=("table", "jsonl", "csv"),
                    help="default: table on a terminal, else jsonl")
    sp.add_argument("--lang", choices=("en", "ja"), default="en",
                    help="language of the explanation column")
    sp.add_argument("--unsubscribe-list", metavar="FILE",
                    help="write the addresses with a hard bounce to FILE, one a line, sorted "
                         "(with the address the sender wrote, when forwarding or an alias "
                         "made another recipient)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.set_defaults(run=run, parser=sp)


class _Table:
    def __init__(self, out):
        self.out = out
        self._line("RECIPIENT", "KIND", "REASON", "HARD", "REPLY", "EXPLANATION")

    def _line(self, *cols):
        self.out.write(("%-32s  %-9s  %-15s  %-4s  %-9s  %s" % cols).rstrip() + "\n")

    def write(self, rec, result=None):
        reply = " ".join(str(x) for x in (rec["reply_code"], rec["status"]) if x) or "-"
        self._line(printable(rec["recipient"] or "-", ""), rec["kind"], rec["reason"],
                   "yes" if rec["hard_bounce"] else "no", reply,
                   printable(rec["explanation"] or "", ""))

    def close(self):
        self.out.flush()


class _Explainer:
    def __init__(self, lang):
        self.lang, self.cache = lang, {}

    def __call__(self, reason):
        if reason not in self.cache:
            try:
                self.cache[reason] = smtpcode.explain(reason, self.lang).title
            except ValueError:
                self.cache[reason] = None
        return self.cache[reason]


def _record(label, b, explain):
    rec = collections.OrderedDict((f, None) for f in FIELDS)
    rec["source"] = label
    for f in FIELDS[1:-1]:
        rec[f] = getattr(b, f)
    rec["explanation"] = explain(b.reason)
    return rec


def run(a):
    out = sys.stdout
    fmt = a.format or ("table" if out.isatty() else "jsonl")
    for p in a.paths:
        if p != "-" and not os.path.exists(p):
            raise Failure("%s: no such file or folder" % p)
    if fmt == "table":
        w = _Table(out)
    elif fmt == "csv":
        w = CsvWriter(out, FIELDS)
    else:
        w = JsonlWriter(out)
    bar = None
    if not a.no_progress and sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(unit="msg", file=sys.stderr, mininterval=0.2, leave=True)
    explain = _Explainer(a.lang)
    reasons, kinds = collections.Counter(), collections.Counter()
    hard, nmsg, nerr = set(), 0, 0
    started = time.monotonic()
    try:
        for path in a.paths:
            try:
                for label, msg in messages(path):
                    nmsg += 1
                    if bar is not None:
                        bar.update(1)
                    try:
                        records = smtpcode.parse_bounce(msg)
                    except smtpcode.BounceError as e:
                        nerr += 1
                        sys.stderr.write("smtpcode bounces: %s: %s\n" % (label, e))
                        continue
                    for b in records:
                        rec = _record(label, b, explain)
                        if bar is not None and out.isatty():
                            with bar.external_write_mode(file=out):
                                w.write(rec)
                        else:
                            w.write(rec)
                        kinds[b.kind] += 1
                        if b.kind == "bounce":
                            reasons[b.reason] += 1
                            if b.hard_bounce and b.recipient:
                                hard.add(b.recipient)
                                # the address the sender wrote, which the list knows
                                if b.original_recipient:
                                    hard.add(b.original_recipient)
            except OSError as e:
                raise Failure("%s: %s" % (path, e.strerror or e)) from None
    finally:
        if bar is not None:
            bar.close()
        w.close()
    if a.unsubscribe_list:
        try:
            with open(a.unsubscribe_list, "w", encoding="utf-8") as f:
                for addr in sorted(hard):
                    f.write(addr + "\n")
        except OSError as e:
            raise Failure("%s: %s" % (a.unsubscribe_list, e.strerror or e)) from None
    took = time.monotonic() - started
    lines = ["%d message%s in %.1f s: %d bounce record%s, %d feedback, %d autoreply%s" % (
        nmsg, "" if nmsg == 1 else "s", took, kinds["bounce"], "" if kinds["bounce"] == 1 else "s",
        kinds["feedback"], kinds["autoreply"], ", %d unreadable" % nerr if nerr else "")]
    if reasons:
        lines.append("by reason: " + ", ".join(
            "%s %d" % (r, c) for r, c in sorted(reasons.items(), key=lambda rc: (-rc[1], rc[0]))))
    if a.unsubscribe_list:
        lines.append("%d hard-bounced address%s written to %s" % (
            len(hard), "" if len(hard) == 1 else "es", a.unsubscribe_list))
    sys.stderr.write("\n".join(lines) + "\n")
    return EXIT_FAILURE if nerr else EXIT_OK
