"""Output of `smtpcode verify`: one flat record per address, written as a table, JSON lines or CSV.

A record is the result's fields under their own names, with the decided reply flattened into
`code`, `status` (the enhanced status code) and `text`, so that CSV and jq users see one level;
what the address itself tells (`disposable`, `role`, `free_provider`, `suggestion`) comes last.
Columns carried from a CSV input come first, under their own names; one that would collide
with a result field is renamed `input_<name>`.
"""
import csv
import json
import os

FIELDS = ("address", "verdict", "reason", "code", "status", "text", "mx", "catch_all", "tls",
          "duration", "disposable", "role", "free_provider", "suggestion")
TRANSCRIPT = "transcript"
CACHE_FIELDS = ("cached", "age")          # only with a result cache (verify --cache)


def record(result, carried=None, transcript=False, cache=False, address=None):
    """The flat record (a dict in output order) for one smtpcode.Result; `address` replaces
    the result's when the row's own text differs (a --dedupe duplicate)."""
    rec = dict(carried) if carried else {}
    reply = result.reply
    rec.update(
        address=result.address if address is None else address,
        verdict=result.verdict,
        reason=result.reason,
        code=reply.code if reply is not None else None,
        status=reply.status if reply is not None else None,
        text=reply.text if reply is not None else None,
        mx=result.mx,
        catch_all=result.catch_all,
        tls=result.tls,
        duration=round(result.duration, 3) if result.duration is not None else None,
        disposable=result.disposable,
        role=result.role,
        free_provider=result.free_provider,
        suggestion=result.suggestion,
    )
    if cache:
        rec.update(cached=result.cached, age=round(result.age, 3))
    if transcript:
        rec[TRANSCRIPT] = result.transcript
    return rec


def carry_names(header, column):
    """[(input position, output name)] for the CSV columns carried to the output; names are
    made unique (a repeated header name gets _2, _3 ...) so every cell keeps its place."""
    reserved = set(FIELDS) | set(CACHE_FIELDS) | {TRANSCRIPT}
    out, used = [], set(reserved)
    for i, name in enumerate(header):
        if name == column == "address" and i == header.index(column):
            continue                      # it is the result's own `address`, same text
        base = "input_" + name if name in reserved else name
        new, n = base, 1
        while new in used:
            n += 1
            new = "%s_%d" % (base, n)
        used.add(new)
        out.append((i, new))
    return out


def printable(s, keep="\n"):
    """s with control and other unprintable characters shown as escapes (\\x1b ...)."""
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() or c in keep else
                   ("\\x%02x" % ord(c) if ord(c) < 256 else "\\u%04x" % ord(c)) for c in s)


class JsonlWriter:
    def __init__(self, out, **_):
        self.out = out

    def write(self, rec, result=None):
        self.out.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def close(self):
        self.out.flush()


def _csv_cell(v):
    if v is None:
        return ""
    if v is True or v is False:
        return "true" if v else "false"
    return v


class CsvWriter:
    def __init__(self, out, columns, **_):
        self.out = out
        self.w = csv.writer(out, lineterminator="\n")
        self.w.writerow(columns)          # a header even for no input: the shape is known

    def write(self, rec, result=None):
        self.w.writerow([_csv_cell(v) for v in rec.values()])

    def close(self):
        self.out.flush()


_COLORS = {"deliverable": "32", "undeliverable": "31", "risky": "33", "unknown": "2"}


class TableWriter:
    """Fixed columns for eyes on a terminal; the variable-length MX goes last. Long addresses
    are printed whole (they push their row right) rather than cut."""

    def __init__(self, out, address_width=32, color=False, **_):
        self.out = out
        self.aw = max(12, min(address_width, 60))
        self.color = color
        self._line("ADDRESS", "VERDICT", "REASON", "REPLY", "FLAGS", "MX", header=True)

    def _line(self, address, verdict, reason, reply, flags, mx, header=False):
        v = "%-13s" % verdict
        if self.color and not header and verdict in _COLORS:
            v = "\033[%sm%s\033[0m" % (_COLORS[verdict], v)
        line = "%-*s  %s  %-15s  %-9s  %-14s  %s" % (self.aw, address, v, reason, reply, flags, mx)
        self.out.write(line.rstrip() + "\n")

    def write(self, rec, result=None):
        reply = " ".join(str(x) for x in (rec["code"], rec["status"]) if x is not None)
        flags = []
        if rec["catch_all"]:
            flags.append("catch-all")
        if rec["tls"]:
            flags.append("tls")
        if rec.get("cached"):
            flags.append("cached")
        if result is not None and result.reply is not None and result.reply.greylisted:
            flags.append("greylisted")
        # what the address itself says, compactly; a suggestion names the domain meant
        flags += [n for n, k in (("disp", "disposable"), ("role", "role"), ("free", "free_provider"))
                  if rec.get(k)]
        if rec.get("suggestion"):
            flags.append("typo:" + rec["suggestion"].rpartition("@")[2])
        # a hostile input line (or DNS name) must not write control bytes to a terminal
        self._line(printable(rec["address"], ""), rec["verdict"], rec["reason"] or "", reply or "-",
                   printable(",".join(flags), "") or "-", printable(rec["mx"] or "-", ""))
        if rec.get(TRANSCRIPT):
            for ln in rec[TRANSCRIPT].splitlines():
                self.out.write("    | %s\n" % ln)

    def close(self):
        self.out.flush()


def wants_color(out):
    return out.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def choose(fmt, out, path):
    """The format to use when --format was not given: a table on a terminal, else by the
    --output file's extension (.csv, .parquet), else JSON lines."""
    if fmt:
        return fmt
    if path is None and out.isatty():
        return "table"
    if path is not None and path.lower().endswith(".csv"):
        return "csv"
    if path is not None and path.lower().rstrip("/").endswith(".parquet"):
        return "parquet"
    return "jsonl"


def writer(fmt, out, columns, address_width=32):
    if fmt == "table":
        return TableWriter(out, address_width=address_width, color=wants_color(out))
    if fmt == "csv":
        return CsvWriter(out, columns)
    return JsonlWriter(out)
