"""`smtpcode verify`: read addresses, run smtpcode.verify() over them, write one record each.

Input is streamed into the engine (it pulls lazily and keeps a bounded window), so a list of
millions is fine; only the rows still in flight are held, plus, with --ordered, the finished
records waiting for an earlier one. The engine runs on a worker thread (see pump.py).
"""
import contextlib
import csv
import inspect
import os
import stat
import sys

import smtpcode

from . import cluster, formats
from .main import EXIT_OK, Failure, dns_servers, port, positive_float
from .main import positive_int, seconds
from .progress import Progress
from .pump import Pump

WHY_IDENTIFY = ("--from and --helo are required: a prober must identify itself truthfully. "
                "Use a sender address on a domain you control (--from you@your.domain) and "
                "this host's real name (--helo mail.your.domain, one whose DNS points back "
                "here); servers judge, and may block, the prober by both.")


def add_parser(sub):
    sp = sub.add_parser(
        "verify", help="check whether addresses take mail (SMTP, without sending any)",
        description="Check each address by SMTP without sending mail: MX lookup, EHLO, "
                    "STARTTLS, MAIL FROM, RCPT TO, then RSET/QUIT. DATA is never sent. "
                    "Input: one address per line (blank lines and lines starting with '#' "
                    "are skipped), or CSV with --column.")
    sp.add_argument("input", nargs="?", default="-", metavar="FILE|-",
                    help="addresses to check (default: standard input)")
    _opt = _option_adder(_api_defaults())
    _opt(sp, "--from", "mail_from", metavar="ADDR",
         help="envelope sender (MAIL FROM), on a domain you control (required)")
    _opt(sp, "--helo", "helo", metavar="NAME", help="this host's name for EHLO/HELO (required)")
    g = sp.add_argument_group("input and output")
    g.add_argument("--column", metavar="NAME",
                   help="the input is CSV with a header; NAME is the address column (the other "
                        "columns are carried through to the output)")
    g.add_argument("--dedupe", action="store_true",
                   help="probe each address once however often the input repeats it (the same "
                        "mailbox in another letter case of the domain included); every input "
                        "row still gets its record")
    g.add_argument("--format", choices=("table", "jsonl", "csv", "parquet"),
                   help="output format (default: table on a terminal, csv or parquet for an "
                        "--output ending in .csv or .parquet, else jsonl); parquet needs pyarrow")
    g.add_argument("-o", "--output", metavar="FILE", help="write records to FILE, not stdout")
    g.add_argument("--ordered", action="store_true",
                   help="write records in input order (default: as each completes)")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (it is drawn only when stderr is a terminal)")
    g.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr at the end")
    _opt(g, "--transcript", "transcript", action="store_const", const=True,
         help="add each session's transcript to the records")

    n = sp.add_argument_group("network (the defaults are smtpcode.verify()'s)")
    _opt(n, "--port", "port", type=port, help="SMTP port")
    _opt(n, "--dns", "dns_servers", action="append", metavar="SERVER",
         help="DNS server ip[:port], repeatable (default: the system's resolvers)")
    _opt(n, "--proxy", "proxy", metavar="URL",
         help="connect through a SOCKS5 proxy: socks5://[user:pass@]host[:port], or socks5h:// "
              "to let the proxy resolve the MX host names (default: connect directly)")
    _opt(n, "--source-address", "source_address", action="append", metavar="IP",
         help="local address to connect from; repeat it (or separate with commas) for "
              "several: each MX host gets one of them, round-robin, and keeps it for the run "
              "(default: the system's choice)")
    _opt(n, "--connect-timeout", "connect_timeout", type=positive_float, metavar="SECONDS",
         help="limit for each TCP connect")
    _opt(n, "--timeout", "timeout", type=positive_float, metavar="SECONDS",
         help="limit for each server reply")
    _opt(n, "--deadline", "deadline", type=positive_float, metavar="SECONDS",
         help="limit per address from its queueing; an address still pending then is "
              "'unknown'")
    p = sp.add_argument_group("politeness (per MX host; the defaults are smtpcode.verify()'s)")
    _opt(p, "--concurrency", "concurrency", type=positive_int, metavar="N",
         help="sessions open at once, all hosts")
    _opt(p, "--per-host", "per_host", type=positive_int, metavar="N",
         help="sessions open at once per MX address")
    _opt(p, "--host-pause", "host_pause", type=seconds, metavar="SECONDS",
         help="wait between new sessions to one MX address")
    _opt(p, "--rcpt-per-session", "rcpt_per_session", type=positive_int, metavar="N",
         help="RCPT commands per session")
    _opt(p, "--max-rejections", "max_rejections", type=positive_int, metavar="N",
         help="rejected RCPTs per session before a new one")
    _opt(p, "--greylist-delay", "greylist_delay", type=seconds, metavar="SECONDS",
         help="wait before retrying a greylisted address")
    t = sp.add_argument_group("TLS, catch-all and disposable addresses")
    _opt(t, "--starttls", "starttls", choices=("opportunistic", "required", "off"),
         help="STARTTLS use")
    _opt(t, "--tls-verify", "tls_verify", action="store_const", const=True,
         help="check the server's certificate (default: not checked)")
    _opt(t, "--no-catch-all", "catch_all", action="store_const", const=False,
         help="skip the per-domain catch-all test (one RCPT to a random address)")
    _opt(t, "--disposable", "disposable", choices=("risky", "undeliverable"),
         help="verdict for a disposable (throw-away) address that would be deliverable")
    c = sp.add_argument_group(
        "result cache (an SQLite file kept across runs, like Postfix's verify(8) database)")
    # argparse takes the first default of a shared dest: --cache's, $SMTPCODE_CACHE
    _opt(c, "--cache", "cache", metavar="PATH",
         default=os.environ.get("SMTPCODE_CACHE") or None,
         help="reuse results stored in PATH and store new ones (default: $SMTPCODE_CACHE "
              "when set, else no cache)")
    _opt(c, "--no-cache", "cache", action="store_const", const=None,
         help="no cache, even with $SMTPCODE_CACHE set")
    _opt(c, "--refresh", "refresh", action="store_const", const=True,
         help="probe every address again, storing the new results")
    _opt(c, "--cache-positive-ttl", "cache_positive_ttl", type=seconds, metavar="SECONDS",
         help="how long deliverable (and catch-all) results are reused")
    _opt(c, "--cache-negative-ttl", "cache_negative_ttl", type=seconds, metavar="SECONDS",
         help="how long undeliverable results are reused")
    _opt(c, "--cache-unknown-ttl", "cache_unknown_ttl", type=seconds, metavar="SECONDS",
         help="how long unknown and risky results are reused (0: not stored)")
    cluster.add_arguments(sp)
    sp.set_defaults(run=run, parser=sp)
    return sp


def _api_defaults():
    """smtpcode.verify()'s keyword defaults, read from its signature: one source of truth."""
    try:
        params = inspect.signature(smtpcode.verify).parameters
    except (AttributeError, TypeError, ValueError):
        return {}
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


# verify()'s keywords the command has flags for (each flag's dest is the keyword), in the
# order _opt added them; engine_options passes on those that were given
API_OPTIONS = []


def _option_adder(defaults):
    """add(group, flag, api_name, ...): an option left unset (None) unless given, so that the
    API's own default applies; --help shows that default for a flag that takes a value (a
    switch's help says what it changes)."""
    def add(group, flag, name, help, **kw):
        dv = defaults.get(name)
        if dv is not None and kw.get("action", "store") in ("store", "append"):
            help = "%s (default %s)" % (help, _show(dv))
        kw.setdefault("default", None)
        group.add_argument(flag, dest=name, help=help, **kw)
        if name not in API_OPTIONS:
            API_OPTIONS.append(name)
    return add


def _show(v):
    if isinstance(v, float) and v >= 86400 and v % 86400 == 0:
        return "%g s = %g days" % (v, v / 86400)
    return "%g" % v if isinstance(v, float) else str(v)


# the values the command takes in another form than the API: comma lists, repeatable
_TO_API = {"dns_servers": dns_servers, "source_address": dns_servers}


def engine_options(a):
    opts = {}
    for name in API_OPTIONS:
        v = getattr(a, name, None)
        if v is not None:
            opts[name] = _TO_API[name](v) if name in _TO_API else v
    return opts


def _dedupe_key(address):
    """The mailbox an input names, as RCPT TO would carry it (domain case and IDNA folded,
    local part as written); an address that does not parse is its own key."""
    try:
        return smtpcode.parse_address(address).ascii_address
    except (ValueError, AttributeError):
        return address


class _NotText(Exception):
    pass


class Source:
    """The input's addresses as (address, CSV row or None). It decodes line by line, so that a
    bad line is named by its number; a read error stops the iteration and is kept in .error
    (raised inside the engine's pull, it would be lost)."""

    def __init__(self, f, name, column=None):
        self.f, self.name, self.column = f, name, column
        self.error = None
        self.header = None
        self.lineno = 0
        if column is not None:
            self.reader = csv.reader(self._lines())
            try:
                self.header = next(self.reader, None) or []
            except (csv.Error, _NotText) as e:
                raise Failure("%s: unreadable CSV header: %s" % (name, e))
            if column not in self.header:
                raise Failure("%s: no column %r in the header (columns: %s)"
                              % (name, column, ", ".join(self.header) or "none"))
            self.col = self.header.index(column)

    def _lines(self):
        for raw in self.f:
            self.lineno += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _NotText("line %d is not UTF-8 text" % self.lineno) from None
            if self.lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield line

    def __iter__(self):
        try:
            if self.column is None:
                for line in self._lines():
                    s = line.strip()
                    if s and not s.startswith("#"):
                        yield s, None
            else:
                n = len(self.header)
                for row in self.reader:
                    if row:                # a short row is padded, extra cells dropped
                        row = (row + [""] * n)[:n]
                        yield row[self.col], row
        except _NotText as e:
            self.error = "%s: %s" % (self.name, e)
        except csv.Error as e:
            self.error = "%s: line %d: %s" % (self.name, self.lineno, e)
        except OSError as e:
            self.error = "%s: %s" % (self.name, e.strerror or e)


def _open_input(path):
    if path == "-":
        if sys.stdin.isatty():
            sys.stderr.write("smtpcode verify: reading addresses from the terminal, one a line; "
                             "end with Ctrl-D\n")
        return sys.stdin.buffer, "<stdin>"
    if os.path.isdir(path):
        raise Failure("%s: is a directory" % path)
    try:
        return open(path, "rb"), path
    except OSError as e:
        raise Failure("cannot read %s: %s" % (path, e.strerror or e))


def _precount(path, column):
    """(count, widest address) of a regular input file, for the bar's total and the table's
    column; (None, None) when the input is a stream or cannot be read twice."""
    try:
        if path == "-" or not stat.S_ISREG(os.stat(path).st_mode):
            return None, None
        with open(path, "rb") as f:
            src = Source(f, path, column)
            n = width = 0
            for address, _ in src:
                n += 1
                width = max(width, len(address))
            return n, width
    except (OSError, Failure):
        return None, None


def run(a):
    if not a.mail_from or not a.helo:
        a.parser.error(WHY_IDENTIFY)
    fmt = formats.choose(a.format, sys.stdout, a.output)
    if fmt == "parquet" and a.output is None:
        a.parser.error("--format parquet writes a file: give -o FILE")
    if cluster.wanted(a):
        if a.scheduler and a.workers:
            a.parser.error("--scheduler and --workers: one or the other")
        progress = cluster.run(a, engine_options(a), fmt)
        if not a.quiet:
            sys.stderr.write(progress.summary())
        return EXIT_OK
    f, name = _open_input(a.input)
    with (contextlib.nullcontext(f) if f is sys.stdin.buffer else f):
        source = Source(f, name, a.column)
        out = sys.stdout
        if a.output is not None and fmt != "parquet":
            try:
                out = open(a.output, "w", encoding="utf-8", newline="")
            except OSError as e:
                raise Failure("cannot write %s: %s" % (a.output, e.strerror or e))
        try:
            return _verify(a, source, out)
        finally:
            if out is not sys.stdout and fmt != "parquet":
                out.close()


def _verify(a, source, out):
    if not hasattr(smtpcode, "verify"):
        raise Failure("this build of smtpcode has no probe engine (smtpcode.verify)")
    fmt = formats.choose(a.format, out, a.output)
    show_bar = a.progress and sys.stderr.isatty()
    total, width = _precount(a.input, a.column) if (show_bar or fmt == "table") else (None, None)
    carry = formats.carry_names(source.header, a.column) if source.header is not None else []
    columns = [o for _, o in carry] + list(formats.FIELDS)
    if a.cache:
        columns += list(formats.CACHE_FIELDS)
    if a.transcript:
        columns.append(formats.TRANSCRIPT)
    if fmt == "parquet":
        w = cluster.ParquetWriter(a.output, columns)
    else:
        w = formats.writer(fmt, out, columns, address_width=width or 32)

    progress = Progress(total=total, enabled=show_bar)
    pump = Pump(smtpcode.verify, source, engine_options(a),
                dedupe=_dedupe_key if a.dedupe else None)
    waiting, next_out, got = {}, 0, 0
    try:
        try:
            for r, i, row, own in pump:
                got += 1
                rec = formats.record(r, row and [(o, row[c]) for c, o in carry], a.transcript,
                                     cache=bool(a.cache), address=own)
                progress.count(r.verdict, r.reason)
                if not a.ordered or i is None:
                    progress.emit(lambda: w.write(rec, r), out)
                    continue
                waiting[i] = (rec, r)
                while next_out in waiting:
                    rec_r = waiting.pop(next_out)
                    progress.emit(lambda: w.write(*rec_r), out)
                    next_out += 1
        except (ValueError, TypeError) as e:
            if not got:                    # the engine refused the options
                a.parser.error(str(e))
            raise Failure(str(e))
        except OSError as e:               # the cache file (named in the message)
            raise Failure(str(e))
        for i in sorted(waiting):          # only when the engine lost a result (checked below)
            progress.emit(lambda: w.write(*waiting[i]), out)
        w.close()
    finally:
        progress.close()
    if not a.quiet:
        sys.stderr.write(progress.summary())
        if a.dedupe and pump.probed < pump.fed:
            sys.stderr.write("%d duplicate rows answered from the first of their kind "
                             "(%d addresses probed)\n" % (pump.fed - pump.probed, pump.probed))
    if source.error:
        raise Failure(source.error + " (the addresses before it were checked)")
    if pump.missing():
        raise Failure("%d of %d addresses got no result" % (pump.missing(), pump.fed))
    return EXIT_OK
