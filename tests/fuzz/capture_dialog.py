#!/usr/bin/env python3
"""Write seeds for fuzz_dialog (tests/fuzz/corpus/dialog/) from real servers on loopback.

Each seed is 4 control octets (see fuzz_dialog.c) and then the exact bytes one server sent in
a probe-shaped session: banner, EHLO, STARTTLS + EHLO again when offered (the replies read
inside TLS, as the dialog sees them once the driver has decrypted), MAIL, three RCPTs, QUIT.
Run it with the test world up (tests/fixtures/world start); the servers it asks for:
  postfix-tls    Postfix mx1 (127.0.0.1:2525), STARTTLS, users.mta.test users
  postfix-notls  Postfix without TLS (127.0.0.5:2525)
  postfix-defer  Postfix's deferring listener (127.0.0.2:2525)
  postfix-grey   Postfix + postgrey (127.0.0.3:2525): 450 greylisting
  sink           Postfix's smtp-sink (started here on 127.0.3.250:2525)
  fault-rset     faultsmtp with a 1-recipient transaction limit (started here on
                 127.0.3.251:2525): 452 4.5.3, RSET, a new transaction
Nothing outside 127.0.0.0/8 is contacted.
"""
import os
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "dialog")


class Rec:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), 5)
        self.s.settimeout(5)
        self.got = b""
        self.buf = b""

    def reply(self):
        """Read one whole reply (last line "ddd " or "ddd\\r\\n") and record its bytes."""
        while True:
            lines = self.buf.split(b"\r\n")
            used = 0
            for line in lines[:-1]:
                used += len(line) + 2
                if len(line) < 4 or line[3:4] != b"-":
                    out, self.buf = self.buf[:used], self.buf[used:]
                    self.got += out
                    return out
            chunk = self.s.recv(65536)
            if not chunk:
                out, self.buf = self.buf, b""
                self.got += out
                return out
            self.buf += chunk

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\r\n")
        return self.reply()


def session(host, port, rcpts, tls):
    r = Rec(host, port)
    try:
        steps(r, host, rcpts, tls)
    except OSError:  # the server hung up (a 421 greeting ...): its bytes so far are the seed
        pass
    r.s.close()
    return r.got


def steps(r, host, rcpts, tls):
    if not r.reply().startswith(b"220"):
        return
    ehlo = r.cmd("EHLO probe.test")
    if tls and b"STARTTLS" in ehlo:
        if r.cmd("STARTTLS").startswith(b"220"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            r.s = ctx.wrap_socket(r.s, server_hostname=host)
            r.cmd("EHLO probe.test")
    if r.cmd("MAIL FROM:<probe@probe.test>").startswith(b"2"):
        for a in rcpts:
            if r.cmd("RCPT TO:<%s>" % a).startswith(b"452 4.5.3"):
                # too many recipients: a new transaction for the rest, as the dialog does
                r.cmd("RSET")
                r.cmd("MAIL FROM:<probe@probe.test>")
                r.cmd("RCPT TO:<%s>" % a)
    r.cmd("QUIT")


def write(name, ctl, data):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes(ctl) + data)
    print("%s: %d octets" % (name, len(data)))


def main():
    users = ["alice@users.mta.test", "nobody@users.mta.test", "full@users.mta.test"]
    # ctl: [mode/flags, recipients-1, max_rejections-1, chunk-1]
    write("postfix-tls", [0x04, 2, 7, 63], session("127.0.0.1", 2525, users, True))
    write("postfix-tls-bytewise", [0x14, 2, 7, 0], session("127.0.0.1", 2525, users, True))
    write("postfix-notls", [0x03, 2, 7, 63], session("127.0.0.5", 2525, users, False))
    write("postfix-defer", [0x03, 2, 7, 15],
          session("127.0.0.2", 2525, ["alice@backup.mta.test"] * 3, False))
    write("postfix-grey", [0x0b, 2, 1, 31],
          session("127.0.0.3", 2525, ["a@greylist.mta.test", "b@greylist.mta.test",
                                      "c@greylist.mta.test"], False))
    sink = subprocess.Popen(["smtp-sink", "-u", "postfix", "127.0.3.250:2525", "16"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.3.250", 2525), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        write("sink", [0x00, 2, 7, 63], session("127.0.3.250", 2525, users, True))
    finally:
        sink.terminate()
        sink.wait()
    import json
    import tempfile
    tmp = tempfile.mkdtemp(prefix="capture-")
    cfg = os.path.join(tmp, "config.json")
    with open(cfg, "w") as f:
        json.dump({"listeners": [{"listen": "127.0.3.251:2525", "rcpt_limit": 1,
                                  "script": {"users": {"alice": "250 2.1.5 Ok",
                                                       "": "550 5.1.1 User unknown"}}}]}, f)
    ready = os.path.join(tmp, "pid")
    fault = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "fixtures", "fault",
                                                           "matrix_server.py"),
                              "--config", cfg, "--record", tmp, "--certdir", tmp,
                              "--ready", ready])
    try:
        for _ in range(200):
            if os.path.exists(ready):
                break
            time.sleep(0.05)
        write("fault-rset", [0x03, 2, 7, 7],
              session("127.0.3.251", 2525, ["alice@f.test", "nobody@f.test", "alice2@f.test"],
                      False))
    finally:
        fault.terminate()
        fault.wait()


if __name__ == "__main__":
    sys.exit(main())
