"""Reading bounces from mailboxes: the I/O around the C parser (smtpcode.parse_bounce).

``bounces(source)`` yields one Bounce per recipient, lazily, from
  - an mbox file (mboxo or mboxrd: messages start at "From " lines),
  - a Maildir folder (the messages in cur/ and new/) or any folder of message files,
  - a single message file (.eml),
  - an open binary file, or "-" for standard input;
any file may be gzip-compressed. Memory stays bounded by the largest message: an mbox is read
in chunks and split by the C splitter.
"""
import gzip
import io
import os
import sys

from ._smtpcode import BounceError, _Mbox, parse_bounce

__all__ = ["bounces", "messages"]

CHUNK = 1 << 20


def _binary(f):
    """A buffered binary stream over f, unwrapped from gzip when its magic number says so."""
    if not hasattr(f, "peek"):
        # BytesIO and the like: wrap them so that the first octets can be looked at
        f = io.BufferedReader(f) if isinstance(f, io.RawIOBase) else io.BufferedReader(_Raw(f))
    if f.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")
    return f


class _Raw(io.RawIOBase):
    """A file object with read() only, seen as a raw stream (for io.BufferedReader)."""

    def __init__(self, f):
        self.f = f

    def readable(self):
        return True

    def readinto(self, b):
        data = self.f.read(len(b))
        if isinstance(data, str):
            raise TypeError("bounces() needs a binary file (open(path, 'rb'))")
        b[:len(data)] = data
        return len(data)


def _from_stream(f, label):
    """(label, message bytes) for each message of an mbox or single-message stream."""
    f = _binary(f)
    first = f.read(CHUNK)
    if not first.startswith(b"From "):
        # one message: read whole (a message is bounded by the parser's own size limit)
        yield label, first + f.read()
        return
    mb = _Mbox()
    n = 0
    chunk = first
    while True:
        nxt = f.read(CHUNK)
        for msg in mb.feed(chunk, not nxt):
            n += 1
            yield "%s#%d" % (label, n), msg
        if not nxt:
            break
        chunk = nxt


def _maildir_files(path):
    subs = [os.path.join(path, d) for d in ("cur", "new") if os.path.isdir(os.path.join(path, d))]
    if not subs:
        subs = [path]
    for d in subs:
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p) and not name.startswith("."):
                yield p


def messages(source):
    """(label, message bytes) for every message in source (see the module's doc)."""
    if source == "-":
        yield from _from_stream(sys.stdin.buffer, "-")
        return
    if isinstance(source, (str, bytes, os.PathLike)):
        path = os.fsdecode(source)
        if os.path.isdir(path):
            for p in _maildir_files(path):
                with open(p, "rb") as f:
                    yield from _from_stream(f, p)
            return
        with open(path, "rb") as f:
            yield from _from_stream(f, path)
        return
    yield from _from_stream(source, getattr(source, "name", "<file>"))


def bounces(source, on_error=None):
    """Yield a Bounce for every recipient of every message in source, lazily.

    A message beyond the parser's limits raises BounceError, unless on_error is given: then
    on_error(label, error) is called and the next message is read."""
    for label, msg in messages(source):
        try:
            records = parse_bounce(msg)
        except BounceError as e:
            if on_error is None:
                raise
            on_error(label, e)
            continue
        yield from records
