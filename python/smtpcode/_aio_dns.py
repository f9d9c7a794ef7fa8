"""MX lookups for smtpcode.aio: the route machine of csrc/dns_route.c (``_smtpcode._MxLookup``,
the same one the libuv resolver and smtpcode.resty drive) with its messages carried over asyncio
datagrams, and over an asyncio stream when an answer comes back truncated (TC). No thread, no
executor: everything runs on the loop.

The resolver options are verify()'s: ``dns_servers`` ("ip[:port]", "[v6]:port", a CSV string or
a list; None = the nameservers of /etc/resolv.conf), a deadline of 5 s for one domain's whole
lookup, two rounds of tries over the servers (the next server is tried on silence).
"""
import asyncio
import ipaddress
import random

from . import _smtpcode

TIMEOUT = 5.0  # one domain's whole lookup (smtpc_resolver_opts.timeout_ms's default)
TRIES = 2      # rounds over the servers (smtpc_resolver_opts.tries's default)
MIN_WAIT = 0.05


def parse_servers(spec):
    """[(host, port)] from verify()'s dns_servers; ValueError on a bad entry."""
    if spec is None:
        entries = []
        try:
            with open("/etc/resolv.conf", encoding="ascii", errors="replace") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0] == "nameserver":
                        entries.append(parts[1].split("%")[0])
        except OSError:
            pass
        if not entries:
            entries = ["127.0.0.1"]
    elif isinstance(spec, str):
        entries = spec.split(",")
    else:
        entries = list(spec)
    out = []
    for e in entries:
        if not isinstance(e, str):
            raise TypeError("dns_servers must be a string or a list of strings")
        e = e.strip()
        host, port = e, 53
        if e.startswith("["):
            host, sep, rest = e[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError("bad dns_servers entry: %r" % e)
            if rest:
                port = rest[1:]
        elif e.count(":") == 1:
            host, port = e.split(":")
        try:
            port = int(port)
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError("bad dns_servers entry: %r" % e) from None
        if not 0 < port < 65536:
            raise ValueError("bad dns_servers entry: %r" % e)
        out.append((host, port))
    if not out:
        raise ValueError("dns_servers is empty")
    return out


class _Udp(asyncio.DatagramProtocol):
    """One connected UDP socket per server; answers find their query by transaction id."""

    def __init__(self):
        self.transport = None
        self.waiting = {}  # txid -> Future of the response

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        # a response (QR set) to a query of ours; anything else is a stray datagram
        if len(data) >= 12 and data[2] & 0x80:
            fut = self.waiting.pop(int.from_bytes(data[:2], "big"), None)
            if fut is not None and not fut.done():
                fut.set_result(data)

    def error_received(self, exc):  # ICMP unreachable: nobody listens there
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionRefusedError())
        self.waiting.clear()

    def connection_lost(self, exc):
        self.error_received(exc)


class Resolver:
    def __init__(self, loop, dns_servers, family="prefer_ipv4"):
        self.loop = loop
        self.servers = parse_servers(dns_servers)
        self.family = family
        self.socks = {}      # (host, port) -> _Udp
        self.closed = False

    def close(self):
        self.closed = True
        for proto in self.socks.values():
            if proto.transport is not None:
                proto.transport.close()
        self.socks.clear()

    async def _udp(self, srv):
        if self.closed:
            raise OSError("the resolver is closed")
        proto = self.socks.get(srv)
        if proto is None:
            proto = _Udp()
            self.socks[srv] = proto
            try:
                # a numeric address: no getaddrinfo, hence no executor
                await self.loop.create_datagram_endpoint(lambda: proto, remote_addr=srv)
            except OSError:
                self.socks.pop(srv, None)
                raise
            if self.closed:  # closed while the socket was being made
                proto.transport.close()
                raise OSError("the resolver is closed")
        elif proto.transport is None:  # another lookup is making it
            await asyncio.sleep(0)
            return await self._udp(srv)
        return proto

    def _txid(self):
        """A transaction id no query in flight uses (a query keeps its id on every server)."""
        while True:
            t = random.getrandbits(16)
            if not any(t in p.waiting for p in self.socks.values()):
                return t

    async def _tcp(self, srv, msg, wait):
        async def go():
            r, w = await asyncio.open_connection(srv[0], srv[1])
            try:
                w.write(len(msg).to_bytes(2, "big") + msg)
                n = int.from_bytes(await r.readexactly(2), "big")
                return await r.readexactly(n)
            finally:
                w.close()
        try:
            data = await asyncio.wait_for(go(), wait)
        except asyncio.TimeoutError:
            return None, "timeout"
        except (OSError, asyncio.IncompleteReadError):
            return None, "servfail"
        if len(data) < 12 or data[:2] != msg[:2]:
            return None, "servfail"
        return data, None

    async def _exchange(self, srv, msg, wait):
        """One try at one server: (response, None) or (None, 'timeout' | 'refused' | ...)."""
        try:
            proto = await self._udp(srv)
        except OSError:
            return None, "refused"
        txid = int.from_bytes(msg[:2], "big")
        fut = self.loop.create_future()
        proto.waiting[txid] = fut
        timer = self.loop.call_later(wait, lambda: fut.done() or fut.set_result(None))
        try:
            proto.transport.sendto(msg)
            data = await fut
        except OSError:
            return None, "refused"
        finally:
            timer.cancel()
            if proto.waiting.get(txid) is fut:
                del proto.waiting[txid]
        if data is None:
            return None, "timeout"
        if data[2] & 0x02:  # TC: truncated, ask again over TCP in the time left
            return await self._tcp(srv, msg, wait)
        return data, None

    async def _ask(self, msg, deadline):
        """A query's tries: TRIES rounds over the servers, each a share of the time left."""
        n = len(self.servers)
        tries = TRIES * n
        err = "timeout"
        for i in range(tries):
            left = deadline - self.loop.time()
            if left <= 0:
                break
            data, err = await self._exchange(self.servers[i % n], msg,
                                             max(MIN_WAIT, left / (tries - i)))
            if data is not None:
                return data, None
        return None, err

    async def lookup(self, domain):
        """The smtpcode.Route of domain, as smtpcode.resolve returns it; ValueError when the
        domain is not a host name."""
        lk = _smtpcode._MxLookup(domain, family=self.family)
        deadline = self.loop.time() + TIMEOUT
        while not lk.done():
            queries = []
            while True:
                q = lk.next(self._txid())
                if q is None:
                    break
                queries.append(q)
            if not queries:
                break
            answers = await asyncio.gather(*(self._ask(m, deadline) for _, m in queries))
            for (qid, _), (data, err) in zip(queries, answers):
                if data is not None:
                    lk.answer(qid, data)
                else:
                    lk.fail(qid, err if err in ("timeout", "refused") else "servfail")
            if self.loop.time() >= deadline and not lk.done():
                lk.expire()
                break
        return lk.route()
