"""The `smtpcode` command as a user runs it (python -m smtpcode in a subprocess): decode, explain,
resolve, argument errors and exit codes. Verify against the loopback world is in
test_cli_verify.py. Expectations are written from the inputs (and the fixtures' configuration),
not copied from the command's output.
"""
import json
import subprocess
import sys

import pytest

import smtpcode
from smtpcode.cli import logparse

DNS = "127.0.0.1:5353"

GMAIL_LOG = (
    "Nov 29 13:00:01 mx postfix/smtp[123]: 4ABC1: to=<bob@example.com>, "
    "relay=gmail-smtp-in.l.google.com[142.250.1.27]:25, delay=1, delays=0.1/0/0.5/0.4, "
    "dsn=5.1.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.1.27] said: "
    "550-5.1.1 The email account that you tried to reach does not exist. Please try "
    "550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 "
    "unnecessary spaces. 550 5.1.1 https://support.google.com/mail/?p=NoSuchUser "
    "a1si123 - gsmtp (in reply to RCPT TO command))")
POSTFIX_REJECT = (
    "Nov 29 13:00:03 mx postfix/smtpd[99]: NOQUEUE: reject: RCPT from unknown[127.0.0.1]: "
    "550 5.1.1 <nobody@users.mta.test>: Recipient address rejected: User unknown in virtual "
    "mailbox table; from=<probe@probe.test> to=<nobody@users.mta.test> proto=ESMTP "
    "helo=<probe.test>")
POSTFIX_TIMEOUT = (
    "Nov 29 13:00:04 mx postfix/smtp[124]: 5DEF2: to=<carol@example.net>, relay=none, "
    "delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to "
    "mx.example.net[192.0.2.5]:25: Connection timed out)")
POSTFIX_CONNECT = "Nov 29 13:00:02 mx postfix/smtpd[99]: connect from unknown[127.0.0.1]"
EXIM_BOUNCE = (
    "2024-01-01 12:00:00 1rABCD-0001Xy-2Z ** bob@example.org R=dnslookup T=remote_smtp "
    "H=mx.example.org [192.0.2.7] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no: SMTP error "
    "from remote mail server after RCPT TO:<bob@example.org>: 550 5.1.1 <bob@example.org>: "
    "Recipient address rejected: User unknown")
EXIM_DEFER = (
    "2024-01-01 12:00:05 1rABCE-0001Xy-3A == dave@example.org R=dnslookup T=remote_smtp "
    "defer (-44) H=mx.example.org [192.0.2.7]: SMTP error from remote mail server after end "
    "of data: 452 4.2.2 Mailbox full")
EXIM_ARRIVAL = "2024-01-01 12:00:06 1rABCF-0001Xy-4B <= alice@example.org H=c.test [192.0.2.8]"


def cli(*args, stdin=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "smtpcode", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def jsonl(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def no_traceback(r):
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr


# -- decode ----------------------------------------------------------------------------------

def test_decode_words_are_one_reply():
    r = cli("decode", "--format", "jsonl", "550", "5.1.1", "<x@y.test>:", "User", "unknown")
    assert r.returncode == 0, r.stderr
    (d,) = jsonl(r.stdout)
    assert (d["code"], d["status"], d["reason"], d["hard_bounce"]) == (550, "5.1.1",
                                                                       "userunknown", True)
    assert d["text"] == "<x@y.test>: User unknown"


def test_decode_text_explains_the_reason():
    r = cli("decode", "smtp; 452 4.2.2 Mailbox full")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("452 4.2.2 ")
    assert "transient" in out and "retry later" in out
    assert "mailboxfull" in out
    # the catalog's words for the reason, wired through (not hard-coded in the CLI)
    assert smtpcode.explain("mailboxfull").title in out


def test_decode_postfix_log_line_gives_host_command_and_multiline_reply():
    r = cli("decode", "--format", "jsonl", GMAIL_LOG)
    assert r.returncode == 0, r.stderr
    (d,) = jsonl(r.stdout)
    assert d["source"] == "postfix"
    assert d["host"] == "gmail-smtp-in.l.google.com" and d["ip"] == "142.250.1.27"
    assert d["command"] == "RCPT" and d["recipient"] == "bob@example.com"
    assert (d["code"], d["status"], d["reason"]) == (550, "5.1.1", "userunknown")
    assert len(d["lines"]) == 4 and d["lines"][0].startswith("The email account")
    assert d["lines"][3].endswith("- gsmtp")
    assert d["provider"] == "google"       # the host reached the provider rules


def test_decode_each_stdin_line_and_skip_log_lines_without_reply():
    lines = [GMAIL_LOG, POSTFIX_CONNECT, POSTFIX_REJECT, EXIM_ARRIVAL, EXIM_BOUNCE, EXIM_DEFER,
             "", "250-mx.example.test", "250-PIPELINING", "250 8BITMIME",
             "421 4.7.0 Try again later, closing connection."]
    r = cli("decode", "--format", "jsonl", stdin="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    recs = jsonl(r.stdout)
    assert [d["code"] for d in recs] == [550, 550, 550, 452, 250, 421]
    reject, exim, defer, ehlo = recs[1], recs[2], recs[3], recs[4]
    assert reject["client"] == "unknown" and reject["ip"] == "127.0.0.1"
    assert reject["command"] == "RCPT" and reject["recipient"] == "nobody@users.mta.test"
    assert reject["text"].endswith("User unknown in virtual mailbox table")   # not "; from=<"
    assert exim["source"] == "exim" and exim["host"] == "mx.example.org"
    assert exim["command"] == "RCPT" and exim["recipient"] == "bob@example.org"
    assert (defer["command"], defer["status"], defer["reason"]) == ("DATA", "4.2.2",
                                                                    "mailboxfull")
    assert defer["recipient"] == "dave@example.org" and defer["temporary"] is True
    assert ehlo["lines"] == ["mx.example.test", "PIPELINING", "8BITMIME"]
    assert ehlo["kind"] == "success"


def test_decode_postfix_line_without_reply_uses_its_dsn():
    r = cli("decode", "--format", "jsonl", POSTFIX_TIMEOUT)
    (d,) = jsonl(r.stdout)
    assert d["code"] is None and d["status"] == "4.4.1" and d["temporary"] is True
    assert d["text"].endswith("Connection timed out") and d["recipient"] == "carol@example.net"


def test_decode_bad_line_is_reported_and_the_rest_decoded():
    r = cli("decode", "--format", "jsonl", stdin="250-a\n251 b\n550 5.1.1 nope\n")
    assert r.returncode == 1
    no_traceback(r)
    recs = jsonl(r.stdout)
    assert "error" in recs[0] and recs[0]["input"] == "250-a\n251 b"
    assert recs[1]["code"] == 550
    assert "smtpcode decode: error:" in r.stderr


def test_decode_explains_in_japanese():
    r = cli("decode", "--lang", "ja", "550 5.1.1 <x@y.test>: User unknown")
    assert r.returncode == 0, r.stderr
    assert smtpcode.explain("userunknown", "ja").title in r.stdout
    assert smtpcode.explain("userunknown", "en").title not in r.stdout


def test_decode_log_line_without_reply_given_as_text_is_a_failure():
    r = cli("decode", POSTFIX_CONNECT)
    assert r.returncode == 1 and r.stdout == ""
    no_traceback(r)
    assert "without a server reply" in r.stderr


def test_decode_text_output_escapes_control_characters():
    r = cli("decode", "550 5.1.1 evil \x1b[2J text\x07")
    assert r.returncode == 0
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "evil \\x1b[2J text\\x07" in r.stdout


def test_decode_empty_text_is_a_failure_not_a_traceback():
    r = cli("decode", "")
    assert r.returncode == 1
    no_traceback(r)
    assert "error" in r.stderr


# -- the log parser on its own ---------------------------------------------------------------

@pytest.mark.parametrize("line,command", [
    ("Jan  1 00:00:00 h postfix/smtp[1]: A: to=<a@b.test>, relay=m.test[192.0.2.1]:25, "
     "dsn=5.7.1, status=bounced (host m.test[192.0.2.1] said: 554 5.7.1 Spam (in reply to "
     "end of DATA command))", "DATA"),
    ("Jan  1 00:00:00 h postfix/smtp[1]: A: to=<a@b.test>, relay=m.test[192.0.2.1]:25, "
     "dsn=5.0.0, status=bounced (host m.test[192.0.2.1] said: 553 5.1.8 Bad sender (in "
     "reply to MAIL FROM command))", "MAIL"),
    ("Jan  1 00:00:00 h postfix/smtp[1]: A: to=<a@b.test>, relay=none, dsn=4.0.0, "
     "status=deferred (host m.test[192.0.2.1] refused to talk to me: 554 5.7.1 Go away)", "CONN"),
    ("2024-01-01 00:00:00 1rABCD-0001Xy-2Z ** a@b.test R=r T=t H=m.test [192.0.2.1]: SMTP "
     "error from remote mail server after initial connection: 554 5.7.1 Go away", "CONN"),
    ("2024-01-01 00:00:00 1rABCD-0001Xy-2Z ** a@b.test R=r T=t H=m.test [192.0.2.1]: SMTP "
     "error from remote mail server after pipelined MAIL FROM:<s@c.test> SIZE=10: 550 5.7.1 "
     "No", "MAIL"),
])
def test_logparse_commands(line, command):
    e = logparse.parse(line)
    assert isinstance(e, logparse.LogEntry)
    assert e.command == command and e.host == "m.test" and e.ip == "192.0.2.1"
    assert e.recipient == "a@b.test"
    assert e.reply[:3] in ("554", "553", "550")


def test_logparse_knows_what_is_not_a_log_line():
    assert logparse.parse("550 5.1.1 User unknown") is None
    assert logparse.parse(POSTFIX_CONNECT) is logparse.SKIP
    assert logparse.parse(EXIM_ARRIVAL) is logparse.SKIP


# -- explain ---------------------------------------------------------------------------------

def test_explain_japanese():
    r = cli("explain", "550", "--lang", "ja")
    assert r.returncode == 0, r.stderr
    ja = smtpcode.explain(550, "ja")
    assert r.stdout.startswith("550  " + ja.title)
    # wrapped by display width: compare without the line breaks and indents
    assert "".join(ja.fixes.split()) in "".join(r.stdout.split())
    assert smtpcode.explain(550, "en").title not in r.stdout


def test_explain_several_keys_as_json():
    r = cli("explain", "5.1.1", "userunknown", "421", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [d["key"] for d in jsonl(r.stdout)] == ["5.1.1", "userunknown", "421"]


def test_explain_reasons_lists_every_reason():
    r = cli("explain", "reasons")
    assert r.returncode == 0
    assert [ln.split()[0] for ln in r.stdout.splitlines()] == list(smtpcode.reasons())


def test_explain_unknown_key_is_a_failure():
    r = cli("explain", "nosuchthing")
    assert r.returncode == 1
    no_traceback(r)
    assert r.stderr.startswith("smtpcode explain: error: nosuchthing:")


@pytest.mark.parametrize("args", [["explain"], ["explain", "550", "--lang", "fr"], [],
                                  ["frobnicate"], ["decode", "--format", "xml", "250 ok"]])
def test_usage_errors_exit_2(args):
    r = cli(*args)
    assert r.returncode == 2
    no_traceback(r)
    assert "usage:" in r.stderr


def test_help_documents_exit_codes():
    r = cli("--help")
    assert r.returncode == 0
    assert "exit status" in r.stdout and "2  usage error" in r.stdout


# -- verify: argument and input errors (no server needed) ------------------------------------

@pytest.mark.parametrize("args", [["verify", "-"], ["verify", "-", "--helo", "probe.test"],
                                  ["verify", "-", "--from", "probe@probe.test"]])
def test_verify_requires_from_and_helo_and_says_why(args):
    r = cli(*args, stdin="alice@users.mta.test\n")
    assert r.returncode == 2
    no_traceback(r)
    assert "--from and --helo are required" in r.stderr
    assert "identify itself" in r.stderr


@pytest.mark.parametrize("opt", [["--port", "0"], ["--port", "70000"], ["--concurrency", "0"],
                                 ["--timeout", "abc"], ["--deadline", "-1"],
                                 ["--timeout", "nan"], ["--starttls", "maybe"],
                                 ["--format", "xml"], ["--greylist-delay", "-5"]])
def test_verify_bad_option_values_exit_2(opt):
    r = cli("verify", "-", "--from", "probe@probe.test", "--helo", "probe.test", *opt,
            stdin="alice@users.mta.test\n")
    assert r.returncode == 2, (opt, r.stderr)
    no_traceback(r)
    assert "usage:" in r.stderr


def test_verify_unreadable_input_exits_1(tmp_path):
    for path in (tmp_path / "missing.txt", tmp_path):
        r = cli("verify", str(path), "--from", "probe@probe.test", "--helo", "probe.test")
        assert r.returncode == 1
        no_traceback(r)
        assert r.stderr.startswith("smtpcode verify: error:") and str(path) in r.stderr


def test_verify_csv_without_the_column_exits_1(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text("name,mail\nAlice,alice@users.mta.test\n")
    r = cli("verify", str(f), "--column", "email", "--from", "probe@probe.test",
            "--helo", "probe.test")
    assert r.returncode == 1
    no_traceback(r)
    assert "no column 'email'" in r.stderr and "name, mail" in r.stderr


def test_verify_unwritable_output_exits_1(tmp_path):
    r = cli("verify", "-", "-o", str(tmp_path / "no" / "such" / "dir.csv"),
            "--from", "probe@probe.test", "--helo", "probe.test", stdin="bad address\n")
    assert r.returncode == 1
    no_traceback(r)
    assert "cannot write" in r.stderr


# -- resolve ---------------------------------------------------------------------------------

def test_resolve_routes(mail_world):
    r = cli("resolve", "--dns", DNS, "--format", "jsonl", "users.mta.test", "nullmx.mta.test",
            "implicit.mta.test", "nxdomain.mta.test", "backup.mta.test")
    assert r.returncode == 0, r.stderr
    users, nullmx, implicit, nx, backup = jsonl(r.stdout)
    assert users["mx"] == [{"preference": 10, "host": "mx1.mta.test",
                            "addresses": ["127.0.0.1"]}]
    assert nullmx["null_mx"] is True and nullmx["mx"] == []
    assert implicit["implicit"] is True and implicit["mx"][0]["host"] == "implicit.mta.test"
    assert nx["error"] == "nxdomain"
    assert [(m["preference"], m["host"]) for m in backup["mx"]] == [
        (10, "mx-defer.mta.test"), (20, "mx1.mta.test")]


def test_resolve_text_and_failure_exit(mail_world):
    r = cli("resolve", "--dns", DNS, "users.mta.test", "nullmx.mta.test", "servfail.test")
    assert r.returncode == 1                 # SERVFAIL is no answer
    no_traceback(r)
    assert "mx1.mta.test" in r.stdout and "127.0.0.1" in r.stdout
    assert "nullmx.mta.test: null MX" in r.stdout
    assert "servfail.test" in r.stderr


def test_carried_csv_columns_get_unique_names():
    from smtpcode.cli.formats import carry_names
    assert carry_names(["name", "name", "email", "reason", "input_reason"], "email") == [
        (0, "name"), (1, "name_2"), (2, "email"), (3, "input_reason"), (4, "input_reason_2")]
    # an address column named `address` is the record's own address; a second one is kept
    assert carry_names(["address", "id", "address"], "address") == [(1, "id"),
                                                                   (2, "input_address")]
