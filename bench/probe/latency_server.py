#!/usr/bin/env python3
"""latency_server -- a minimal SMTP responder with a fixed reply latency, for bench/probe.

tests/fixtures/fault/faultsmtp.py can delay replies too, but it is built for fault injection:
asyncio streams, a coroutine and a sleep per reply, a recording file per connection and a
stats file rewritten at every connect. At thousands of RCPTs a second that costs more CPU
than the client under test, and on a 2-core machine the bench then measures the server.
This one does the least per line: an asyncio Protocol, the replies to everything that arrived
in one read go out in one write at arrival + latency (pipelined commands overlap, as over a
distant link), or one at a time `delay` apart (serial mode, smtp-sink -W style).

Replies: EHLO offers PIPELINING and ENHANCEDSTATUSCODES, RCPT to a local part starting with
"unknown" is "550 5.1.1", any other "250 2.1.5"; DATA is refused (a prober never sends it).
Counters (connections, RCPTs, peak concurrent sessions) go to --stats as JSON, the same
fields faultsmtp writes, every 100 ms and at exit. Loopback addresses only.

  latency_server.py --listen 127.0.0.6:2525 (--latency 0.05 | --delay 0.05) --stats FILE --ready FILE
"""
import argparse
import asyncio
import json
import os
import signal

EHLO = (b"250-bench.mta.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
        b"250 SIZE 10240000\r\n")


class Stats:
    def __init__(self, path):
        self.path = path
        self.connections = self.rcpts = self.active = self.peak = 0

    def write(self):
        if self.path:
            with open(self.path + ".tmp", "w") as f:
                json.dump({"connections": self.connections, "rcpts": self.rcpts,
                           "active": self.active, "peak": self.peak}, f)
            os.replace(self.path + ".tmp", self.path)


def reply_to(line, stats):
    """(reply bytes, close after it) for one command line."""
    verb = line[:4].upper()
    if verb == b"RCPT":
        stats.rcpts += 1
        arg = line[8:].strip().lstrip(b"<").split(b"@", 1)[0].lower()
        if arg.startswith(b"unknown"):
            return b"550 5.1.1 Recipient address rejected: User unknown\r\n", False
        return b"250 2.1.5 Ok\r\n", False
    if verb == b"MAIL":
        return b"250 2.1.0 Ok\r\n", False
    if verb == b"EHLO":
        return EHLO, False
    if verb == b"HELO":
        return b"250 bench.mta.test\r\n", False
    if verb in (b"RSET", b"NOOP"):
        return b"250 2.0.0 Ok\r\n", False
    if verb == b"QUIT":
        return b"221 2.0.0 Bye\r\n", True
    if verb == b"DATA":
        return b"554 5.5.1 DATA is never expected from a prober\r\n", False
    return b"502 5.5.2 Error: command not recognized\r\n", False


class Session(asyncio.Protocol):
    def __init__(self, loop, stats, latency, delay):
        self.loop, self.stats, self.latency, self.delay = loop, stats, latency, delay
        self.buf = b""
        self.free_at = 0.0   # serial mode: when the previous reply leaves
        self.t = None

    def connection_made(self, transport):
        self.t = transport
        s = self.stats
        s.connections += 1
        s.active += 1
        s.peak = max(s.peak, s.active)
        self.send(self.loop.time(), [b"220 bench.mta.test ESMTP latency_server\r\n"], False)

    def connection_lost(self, exc):
        self.stats.active -= 1
        self.t = None

    def data_received(self, data):
        now = self.loop.time()
        lines = (self.buf + data).split(b"\r\n")
        self.buf = lines.pop()
        if len(self.buf) > 4096:  # no line is that long here: a confused client
            self.t.close()
            return
        out, close = [], False
        for line in lines:
            r, close = reply_to(line, self.stats)
            out.append(r)
            if close:
                break
        if out:
            self.send(now, out, close)

    def send(self, arrived, replies, close):
        if self.delay:  # one reply at a time, each `delay` after the one before
            for i, r in enumerate(replies):
                self.free_at = max(arrived, self.free_at) + self.delay
                self.loop.call_at(self.free_at, self.write, r, close and i == len(replies) - 1)
        else:
            self.loop.call_at(arrived + self.latency, self.write, b"".join(replies), close)

    def write(self, data, close):
        if self.t is not None and not self.t.is_closing():
            self.t.write(data)
            if close:
                self.t.close()


async def main_async(a):
    host, port = a.listen.rsplit(":", 1)
    if not host.startswith("127."):
        raise SystemExit("latency_server: loopback addresses only")
    loop = asyncio.get_running_loop()
    stats = Stats(a.stats)
    server = await loop.create_server(lambda: Session(loop, stats, a.latency, a.delay), host,
                                      int(port), backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write(str(os.getpid()))
    async with server:
        while not stop.is_set():
            stats.write()
            try:
                await asyncio.wait_for(stop.wait(), 0.1)
            except asyncio.TimeoutError:
                pass
    stats.write()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", default="127.0.0.6:2525")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--stats")
    p.add_argument("--ready")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
