"""`smtpcode decode` (replies, bounce diagnostics, Postfix/Exim log lines) and `smtpcode explain`."""
import io
import json
import re
import shutil
import sys

import smtpcode

from . import logparse
from .formats import printable
from .main import EXIT_FAILURE, EXIT_OK, Failure
from .wrap import fill, fill_items, width as text_width

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
        description="Look up the catalog: a reply code (550), an enhanced status code (5.1.1), "
                    "a class (5xx, 5 or 5.x.x) or a reason name (userunknown, see `smtpcode "
                    "explain reasons`). A reply pasted from a log as one argument ('554 5.7.1 "
                    "...') explains its code and its status.")
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


# Every word decode and explain print, in both languages: labels, the verdict line, headings.
_WORDS = {
    "en": {"reply": "reply:", "reason": "reason:", "status": "status:", "provider": "provider:",
           "log": "log:", "meaning": "meaning:", "causes": "causes:", "fixes": "fixes:",
           "no_code": "(no code)", "success": "success", "intermediate": "intermediate",
           "transient": "transient", "permanent": "permanent", "unknown": "unknown",
           "hard_bounce": "hard bounce", "greylisted": "greylisted", "retry": "retry later",
           "retry_after": "retry later (after %d s)", "no_retry": "do not retry as is",
           "sep": ", ", "dash": " - ", "Causes": "Causes", "Fixes": "Fixes"},
    "ja": {"reply": "応答:", "reason": "理由:", "status": "ステータス:", "provider": "事業者:",
           "log": "ログ:", "meaning": "意味:", "causes": "原因:", "fixes": "対処法:",
           "no_code": "（コードなし）", "success": "成功", "intermediate": "中間応答",
           "transient": "一時的なエラー", "permanent": "恒久的なエラー", "unknown": "不明",
           "hard_bounce": "ハードバウンス", "greylisted": "グレーリスティング",
           "retry": "時間をおいて再送", "retry_after": "時間をおいて再送（%d 秒後以降）",
           "no_retry": "そのまま再送しない", "sep": "、", "dash": "：",
           "Causes": "原因", "Fixes": "対処法"},
}
_LABEL = 12  # display columns of the label column


def _para(label, text, width):
    pad = label + " " * max(1, _LABEL - text_width(label))
    return fill(text, width, pad, " " * text_width(pad))


def _describe(rep, entry, lang):
    width = _width()
    w = _WORDS[lang]
    head = " ".join(str(x) for x in (rep.code, rep.status) if x is not None) or w["no_code"]
    facts = [w.get(rep.kind, rep.kind)]
    if rep.hard_bounce:
        facts.append(w["hard_bounce"])
    if rep.greylisted:
        facts.append(w["greylisted"])
    if rep.retry:
        facts.append(w["retry_after"] % rep.retry_after if rep.retry_after else w["retry"])
    elif rep.kind != "success":
        facts.append(w["no_retry"])
    out = [fill_items(facts, w["sep"], width, head + "  ", " " * (text_width(head) + 2))]
    if rep.text:
        out.append(_para(w["reply"], printable(rep.text).replace("\n", " / "), width))
    why = _explain(rep.reason, lang)
    out.append(_para(w["reason"], rep.reason + (w["dash"] + why.title if why else ""), width))
    if rep.status:
        st = _explain(rep.status, lang)
        if st:
            out.append(_para(w["status"], rep.status + w["dash"] + st.title, width))
    if rep.provider:
        out.append(_para(w["provider"], rep.provider, width))
    if entry is not None:
        ctx = entry.context()
        if entry.host:
            ctx["host"] = entry.host + (" [%s]" % entry.ip if entry.ip else "")
            ctx.pop("ip", None)
        out.append(_para(w["log"], printable("  ".join("%s %s" % kv for kv in ctx.items()), ""),
                         width))
    if why:
        out.append(_para(w["meaning"], why.description, width))
        out.append(_para(w["causes"], why.causes, width))
        out.append(_para(w["fixes"], why.fixes, width))
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

def _is_key(word):
    try:
        smtpcode.explain(word)
    except (smtpcode.ReplyError, ValueError):
        return False
    return True


def _keys(args):
    """The catalog keys of the arguments. An argument that is not keys alone is a reply pasted
    from a log: '554 5.7.1' gives both keys, '550 5.1.1 <a@b>: User unknown' and '550-5.1.1'
    their code and status (as decode reads them); an unknown word stays as it is, to fail."""
    for arg in args:
        words = arg.split()
        if not words or all(_is_key(x) for x in words):
            for x in words or [arg]:
                yield x
            continue
        # not keys alone: read it as a reply ("550-5.1.1", "554 5.7.1 Rejected")
        try:
            rep = smtpcode.decode(arg)
        except smtpcode.ReplyError:
            yield arg
            continue
        found = [str(x) for x in (rep.code, rep.status) if x is not None]
        for x in found or [arg]:
            yield x


def run_explain(a):
    if a.keys == ["reasons"]:
        for r in smtpcode.reasons():
            e = _explain(r, a.lang)
            sys.stdout.write("%-16s %s\n" % (r, e.title if e else ""))
        return EXIT_OK
    width = _width()
    w = _WORDS[a.lang]
    failed = []
    first = True
    for key in _keys(a.keys):
        try:
            e = smtpcode.explain(int(key) if key.isdigit() else key, a.lang)
        except (smtpcode.ReplyError, ValueError) as err:
            failed.append("%s: %s" % (key, err))
            continue
        if a.format == "json":
            sys.stdout.write(json.dumps(dict(key=e.key, title=e.title, description=e.description,
                                             causes=e.causes, fixes=e.fixes, action=e.action),
                                        ensure_ascii=False) + "\n")
            continue
        if not first:
            sys.stdout.write("\n")
        first = False
        sys.stdout.write("%s\n\n%s\n\n%s\n%s\n\n%s\n%s\n" % (
            fill(e.title, width, e.key + "  ", " " * (len(e.key) + 2)),
            fill(e.description, width),
            w["Causes"], fill(e.causes, width, "  ", "  "),
            w["Fixes"], fill(e.fixes, width, "  ", "  ")))
    if failed:
        raise Failure("; ".join(failed))
    return EXIT_OK
