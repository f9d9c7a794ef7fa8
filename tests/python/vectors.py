"""Read the shared TSV vectors of tests/vectors/ (same format as the C and Lua loaders)."""
import os
import re

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors")

_ESC = re.compile(rb"\\(x[0-9a-fA-F]{2}|[rnt\\])")
_MAP = {b"r": b"\r", b"n": b"\n", b"t": b"\t", b"\\": b"\\"}


def unescape(field: bytes) -> bytes:
    def sub(m):
        g = m.group(1)
        return bytes([int(g[1:], 16)]) if g[:1] == b"x" else _MAP[g]
    return _ESC.sub(sub, field)


def load(name):
    """Rows as dicts of column -> bytes (unescaped); absent columns are b''."""
    rows, cols = [], None
    with open(os.path.join(DIR, name), "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line or line.startswith(b"#"):
                continue
            fields = line.split(b"\t")
            if cols is None:
                cols = [c.decode() for c in fields]
                continue
            rows.append({c: unescape(fields[i]) if i < len(fields) else b"" for i, c in enumerate(cols)})
    return rows


def text(b: bytes) -> str:
    return b.decode("utf-8", "replace")
