"""Pull the SMTP reply out of a Postfix or Exim log line.

Mail logs say what a remote server replied, but wrapped in each MTA's own prose:

  postfix/smtp[1]: 4F2A: to=<bob@x.test>, relay=mx.x.test[192.0.2.1]:25, ..., dsn=5.1.1,
      status=bounced (host mx.x.test[192.0.2.1] said: 550 5.1.1 <bob@x.test>: User unknown
      (in reply to RCPT TO command))
  1rAbCd-000123-Ab ** bob@x.test R=dnslookup T=remote_smtp H=mx.x.test [192.0.2.1]:
      SMTP error from remote mail server after RCPT TO:<bob@x.test>: 550 5.1.1 User unknown

parse() returns the reply text with what the line says around it (host, command, recipient),
so the classifier gets the same context a live session would give it. It is plain regular
expressions over one line: no I/O, nothing kept between lines.
"""
import re

# A log line carries no reply worth decoding ("connect from ...", "removed"): parse() says SKIP.
SKIP = object()


class LogEntry:
    """What one log line says: the reply text and its context (each None when absent)."""

    __slots__ = ("source", "reply", "host", "ip", "command", "recipient", "client", "dsn")

    def __init__(self, source, reply, host=None, ip=None, command=None, recipient=None,
                 client=None, dsn=None):
        self.source = source        # "postfix" or "exim"
        self.reply = reply          # the server's reply (or the MTA's own words when none)
        self.host = host            # remote server that replied
        self.ip = ip
        self.command = command      # "RCPT", "MAIL", "DATA", "CONN", "EHLO" ...
        self.recipient = recipient
        self.client = client        # smtpd rejects: the client the local server refused
        self.dsn = dsn              # the MTA's own status code when the reply has none

    def context(self):
        return {k: getattr(self, k) for k in ("source", "host", "ip", "command", "recipient",
                                              "client", "dsn") if getattr(self, k) is not None}


# -- Postfix ---------------------------------------------------------------------------------

_PF_PROG = re.compile(r"\bpostfix(?:-[\w.]+)?/(?:[\w.-]+/)*[\w.-]+\[\d+\]: (?P<msg>.*)$")
_PF_TO = re.compile(r"\bto=<(?P<rcpt>[^>]*)>")
_PF_RELAY = re.compile(r"\brelay=(?P<host>[^\[\s,]+)\[(?P<ip>[^\]]*)\]")
_PF_DSN = re.compile(r"\bdsn=(?P<dsn>[245]\.\d{1,3}\.\d{1,3})\b")
_PF_STATUS = re.compile(r"\bstatus=\w+ \((?P<detail>.*)\)\s*$")
# "host mx.x.test[192.0.2.1] said: 550 ... (in reply to RCPT TO command)"
_PF_SAID = re.compile(r"\bhost (?P<host>[^\[\s]+)\[(?P<ip>[^\]]*)\] (?P<verb>said|refused to talk "
                      r"to me): (?P<reply>.*?)(?: \(in reply to (?P<cmd>.+?) command\))?\s*$")
# smtpd: "NOQUEUE: reject: RCPT from c.test[192.0.2.9]: 550 5.1.1 <x>: ...; from=<..> to=<..>"
_PF_REJECT = re.compile(r"\breject: (?P<cmd>[A-Z-]+) from (?P<client>[^\[\s]+)\[(?P<ip>[^\]]*)\]"
                        r"(?::\d+)?: (?P<reply>.*?)(?:; (?:from|to)=<.*)?\s*$")

# Postfix names the command as it was sent; the classifier wants its verb.
_COMMANDS = (("RCPT", "RCPT"), ("MAIL", "MAIL"), ("END OF DATA", "DATA"), ("END-OF-MESSAGE", "DATA"),
             ("DATA", "DATA"), ("EHLO", "EHLO"), ("HELO", "HELO"), ("LHLO", "EHLO"),
             ("STARTTLS", "STARTTLS"), ("AUTH", "AUTH"), ("CONNECT", "CONN"),
             ("INITIAL CONNECTION", "CONN"), ("GREETING", "CONN"))


def _verb(text):
    if not text:
        return None
    up = text.upper()
    for needle, verb in _COMMANDS:
        if needle in up:
            return verb
    return None


def _postfix(msg):
    rcpt = _PF_TO.search(msg)
    rcpt = rcpt.group("rcpt") if rcpt else None
    m = _PF_REJECT.search(msg)
    if m:
        return LogEntry("postfix", m.group("reply"), command=_verb(m.group("cmd")),
                        recipient=rcpt, client=m.group("client"), ip=m.group("ip"))
    status = _PF_STATUS.search(msg)
    detail = status.group("detail") if status else None
    m = _PF_SAID.search(detail if detail is not None else msg)
    if m:
        cmd = "CONN" if m.group("verb") != "said" else _verb(m.group("cmd"))
        return LogEntry("postfix", m.group("reply"), host=m.group("host"), ip=m.group("ip"),
                        command=cmd, recipient=rcpt)
    if detail is None:
        return SKIP
    # No remote reply: Postfix's own words ("connect to ...: Connection refused", "Host or
    # domain name not found ..."); the classifier reads those phrases too.
    relay = _PF_RELAY.search(msg)
    dsn = _PF_DSN.search(msg)
    return LogEntry("postfix", detail, host=relay.group("host") if relay else None,
                    ip=relay.group("ip") if relay else None, recipient=rcpt,
                    dsn=dsn.group("dsn") if dsn else None)


# -- Exim ------------------------------------------------------------------------------------

_EXIM_ID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}"
_EXIM_LINE = re.compile(r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [-+]\d{4})? )?"
                        r"(?:\[\d+\] )?(?P<id>" + _EXIM_ID + r") (?P<msg>.*)$")
_EXIM_RCPT = re.compile(r"^(?:\*\*|==|=>|->|\*>) (?P<rcpt>\S+)")
_EXIM_HOST = re.compile(r"\bH=(?P<host>[^\s\[]+) \[(?P<ip>[^\]]+)\]")
_EXIM_ERROR = re.compile(r"SMTP error from remote (?:mail server|mailer) after (?P<after>.+?): "
                         r"(?P<reply>\d{3}(?:[ -].*)?)$")
_EXIM_REJECT = re.compile(r"\brejected (?P<cmd>RCPT|MAIL|DATA|EHLO|HELO|connection)\b[^:]*: "
                          r"(?P<reply>.*)$")


def _exim(msg):
    rcpt = _EXIM_RCPT.match(msg)
    rcpt = rcpt.group("rcpt").strip("<>") if rcpt else None
    host = _EXIM_HOST.search(msg)
    kw = dict(host=host.group("host"), ip=host.group("ip")) if host else {}
    m = _EXIM_ERROR.search(msg)
    if m:
        return LogEntry("exim", m.group("reply"), command=_verb(m.group("after")),
                        recipient=rcpt, **kw)
    m = _EXIM_REJECT.search(msg)
    if m:
        return LogEntry("exim", m.group("reply"), command=_verb(m.group("cmd")) or "CONN",
                        recipient=rcpt, client=kw.get("host"), ip=kw.get("ip"))
    if rcpt is not None and msg.startswith(("**", "==")) and ": " in msg:
        # a failure without a remote reply ("retry timeout exceeded", "Unrouteable address")
        return LogEntry("exim", msg.rsplit(": ", 1)[1], recipient=rcpt, **kw)
    return SKIP


def _unfold(entry):
    """Logs join a multi-line reply with spaces ("550-5.1.1 a 550-5.1.1 b 550 5.1.1 c"): give
    the decoder its lines back, split where the same code starts a new line."""
    if isinstance(entry, LogEntry):
        m = re.match(r"(\d{3})-", entry.reply)
        if m:
            entry.reply = "\n".join(re.split(r" (?=%s[- ])" % m.group(1), entry.reply))
    return entry


def parse(line):
    """LogEntry for a Postfix/Exim line with a reply, SKIP for one without, None otherwise."""
    m = _PF_PROG.search(line)
    if m:
        return _unfold(_postfix(m.group("msg")))
    m = _EXIM_LINE.match(line)
    if m:
        return _unfold(_exim(m.group("msg")))
    return None
