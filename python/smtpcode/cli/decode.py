"""`smtpcode decode` (replies, bounce diagnostics, Postfix/Exim log lines) and `smtpcode explain`."""
import io
import json
import re
import shutil
import sys
import textwrap

import smtpcode

from . import logparse
from .formats import printable
from .main import EXIT_FAILURE, EXIT_OK, Failure

_CONTINUATION = re.compile(r"^\d{3}-")


def add_decode_parser(sub):
    sp = sub.add_parser(
        "decode", help="decode an SMTP reply, a bounce diagnostic or a mail log line",
        description="Decode one reply (the words of TEXT, joined), or each line of standard "
                    "input. Multi-line replies ('250-...' then '250 ...') on stdin are read as "
                    "one. Postfix and Exim log lines are understood: the host, command and "
                    "recipient are taken from the line; their lines without a reply are skipped.")
    sp.add_argument("text", nargs="*", metavar="TEXT", help="the reply; '-' or none: stdin")
    sp.add_argument("--command", help="the SMTP command the reply answered (RCPT, MAIL, DATA, "
                                      "CONN ...), when the text does not say")
    sp.add_argument("--host", help="the server (or recipient domain) that replied")
    sp.add_argument("--format", choices=("text", "jsonl"), default="text")
    sp.add_argument("--lang", choices=("en", "ja"), default="en",
                    help="language of the explanation")
    sp.set_defaults(run=run_decode, parser=sp)


def add_explain_parser(sub):
    sp = sub.add_parser(
        "explain", help="explain a reply code, enhanced status code or reason",
        description="Look up the catalog: a reply code (550), an enhanced status code (5.1.1) "
                    "or a reason name (userunknown, see `smtpcode explain reasons`).")
    sp.add_argument("keys", nargs="+", metavar="CODE")
    sp.add_argument("--lang", choices=("en", "ja"), default="en")
    sp.add_argument("--format", choices=("text", "json"), default="text")
    sp.set_defaults(run=run_explain, parser=sp)


# -- decode ----------------------------------------------------------------------------------

def _items(a):
    """Each reply of the input: the words of TEXT, or the lines of stdin."""
    if a.text and a.text != ["-"]:
        yield " ".join(a.text)
        return
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    held = []
    for line in stdin:
        line = line.rstrip("\r\n")
        if _CONTINUATION.match(line):
            held.append(line)
            continue
        if held:
            held.append(line)
            line, held = "\n".join(held), []
        if line.strip():
            yield line
    if held:
        yield "\n".join(held)


def _explain(key, lang):
    try:
        return smtpcode.explain(key, lang)
    except (smtpcode.ReplyError, ValueError):
        return None


def _width():
    return max(40, min(100, shutil.get_terminal_size((100, 24)).columns))


def _para(label, text, width):
    return textwrap.fill(text, width=width, initial_indent="%-10s" % label,
                         subsequent_indent=" " * 10, break_long_words=False,
                         break_on_hyphens=False)


def _describe(rep, entry, lang):
    width = _width()
    head = " ".join(str(x) for x in (rep.code, rep.status) if x is not None) or "(no code)"
    facts = [rep.kind]
    if rep.hard_bounce:
        facts.append("hard bounce")
    if rep.greylisted:
        facts.append("greylisted")
    if rep.retry:
        facts.append("retry later" + (" (after %d s)" % rep.retry_after if rep.retry_after else ""))
    elif rep.kind != "success":
        facts.append("do not retry as is")
    out = ["%s  %s" % (head, ", ".join(facts))]
    if rep.text:
        out.append(_para("reply:", printable(rep.text).replace("\n", " / "), width))
    why = _explain(rep.reason, lang)
    out.append(_para("reason:", rep.reason + (" - " + why.title if why else ""), width))
    if rep.status:
        st = _explain(rep.status, lang)
        if st:
            out.append(_para("status:", "%s - %s" % (rep.status, st.title), width))
    if rep.provider:
        out.append(_para("provider:", rep.provider, width))
    if entry is not None:
        ctx = entry.context()
        if entry.host:
            ctx["host"] = entry.host + (" [%s]" % entry.ip if entry.ip else "")
            ctx.pop("ip", None)
        out.append(_para("log:", printable("  ".join("%s %s" % kv for kv in ctx.items()), ""),
                         width))
    if why:
        out.append(_para("meaning:", why.description, width))
        out.append(_para("action:", why.action, width))
    return "\n".join(out) + "\n"


def run_decode(a):
    failed = 0
    first = True
    for item in _items(a):
        entry = logparse.parse(item)
        if entry is logparse.SKIP:
            if a.text and a.text != ["-"]:
                raise Failure("a mail log line without a server reply: nothing to decode")
            continue
        text = entry.reply if entry is not None else item
        command = (entry.command if entry is not None else None) or a.command
        host = (entry.host if entry is not None else None) or a.host
        try:
            ctx = {k: v for k, v in (("command", command), ("host", host)) if v}
            if entry is not None and entry.dsn:
                # the MTA's own words and status code ("connect to ...: timed out", 4.4.1)
                rep = smtpcode.classify(None, entry.dsn, text, **ctx)
            else:
                rep = smtpcode.decode(text, **ctx)
        except smtpcode.ReplyError as e:
            failed += 1
            shown = item if len(item) <= 80 else item[:77] + "..."
            sys.stderr.write("smtpcode decode: error: %s: %r\n" % (e, shown))
            if a.format == "jsonl":
                sys.stdout.write(json.dumps({"input": item, "error": str(e)},
                                            ensure_ascii=False) + "\n")
            continue
        if a.format == "jsonl":
            rec = {"input": item}
            rec.update(rep.to_dict())
            if entry is not None:
                rec.update(entry.context())
            sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(("" if first else "\n") + _describe(rep, entry, a.lang))
        first = False
        sys.stdout.flush()
    if failed and a.text and a.text != ["-"]:
        raise Failure("could not decode the reply")
    return EXIT_FAILURE if failed else EXIT_OK


# -- explain ---------------------------------------------------------------------------------

def run_explain(a):
    if a.keys == ["reasons"]:
        for r in smtpcode.reasons():
            e = _explain(r, a.lang)
            sys.stdout.write("%-16s %s\n" % (r, e.title if e else ""))
        return EXIT_OK
    width = _width()
    failed = []
    for i, key in enumerate(a.keys):
        try:
            e = smtpcode.explain(int(key) if key.isdigit() else key, a.lang)
        except (smtpcode.ReplyError, ValueError) as err:
            failed.append("%s: %s" % (key, err))
            continue
        if a.format == "json":
            sys.stdout.write(json.dumps(dict(key=e.key, title=e.title, description=e.description,
                                             action=e.action), ensure_ascii=False) + "\n")
            continue
        if i:
            sys.stdout.write("\n")
        # Japanese has no spaces to wrap at: give it whole lines and let the terminal wrap
        fill = (lambda s: s) if a.lang == "ja" else (
            lambda s: textwrap.fill(s, width=width, break_on_hyphens=False))
        sys.stdout.write("%s  %s\n\n%s\n\n%s\n" % (e.key, e.title, fill(e.description),
                                                   fill(e.action)))
    if failed:
        raise Failure("; ".join(failed))
    return EXIT_OK
