#!/usr/bin/env python3
"""Write the seed corpora of tests/fuzz/corpus/<what>/ from the shared vectors (run again when the
vectors change). Each seed is a file named after the vector's id."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import vectors  # noqa: E402


def write(what, name, data):
    d = os.path.join(HERE, "corpus", what)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for r in vectors.load("streams.tsv"):
        write("reply", r["id"].decode(), b"\x03" + r["stream"])
    bdir = os.path.join(vectors.DIR, "bounce")
    for name in sorted(os.listdir(bdir)):
        with open(os.path.join(bdir, name), "rb") as f:
            msg = f.read()
        write("bounce", name, b"\x00" + msg)            # default limits, fed whole
        write("bounce", name + ".tight", b"\x0f" + msg)  # tight limits, fed 7 octets at a time
        write("bounce", name + ".mbox", b"\x00From x\n" + msg + b"\n\nFrom y\n>From z\n")
    for r in vectors.load("decode.tsv"):
        write("decode", r["id"].decode(), b"\x01" + r["input"])
    for r in vectors.load("framing.tsv"):
        write("decode", "framing_" + r["id"].decode(), b"\x00" + r["input"])
    path = os.path.join(vectors.DIR, "addresses.tsv")
    if os.path.exists(path):
        for i, r in enumerate(vectors.load("addresses.tsv")):
            write("address", "a%03d" % i, r.get("input", b""))
    path = os.path.join(vectors.DIR, "dialogs.tsv")
    if os.path.exists(path):
        for i, r in enumerate(vectors.load("dialogs.tsv")):
            write("dialog", "d%03d" % i, r.get("server", b""))
    for i, r in enumerate(vectors.load("inspect.tsv")):
        write("inspect", "i%03d" % i, r["address"])
    for i, r in enumerate(vectors.load("typos.tsv")[:60]):
        write("inspect", "t%03d" % i, b"someone@" + r["typed"])


if __name__ == "__main__":
    main()
