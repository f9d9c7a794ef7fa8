"""smtpcode.aio -- verify addresses on the running asyncio event loop.

    async for r in smtpcode.aio.verify(addresses, mail_from=..., helo=..., **options):
        ...
    r = await smtpcode.aio.verify_one("user@example.com", mail_from=..., helo=...)

The same options and the same results as ``smtpcode.verify``, decided by the same C planner
(csrc/plan.c): this module only moves bytes and time for it. Sockets are asyncio transports
(STARTTLS through ``loop.start_tls``); MX lookups are the C route machine (csrc/dns_route.c,
the one behind ``verify``'s resolver) with its messages over asyncio datagrams, TCP when an
answer is truncated (smtpcode/_aio_dns.py). Nothing blocks the loop: the C tables are built
when the module is imported, and the one slow step left, loading the system's CA certificates
for ``tls_verify=True`` (some 40 ms), is done once per process in the loop's default executor.
Cancelling the task that iterates (or leaving the ``async for``) closes every session.

``smtpcode.verify`` (libuv, the GIL released) is the faster path for batch jobs; this one is
for programs that already live on an asyncio loop (a web service, a bot, a pipeline stage).
"""
import asyncio
import os
import ssl

from . import _smtpcode
from ._aio_dns import Resolver

__all__ = ["verify", "verify_one"]

_SLICE = 200  # addresses added, or results handed over, between two turns of the loop

_PLAN_OPTS = ("mail_from", "helo", "port", "concurrency", "per_host", "rcpt_per_session",
              "starttls", "catch_all", "greylist_delay", "deadline", "timeout", "transcript",
              "connect_timeout", "max_rejections", "host_pause", "disposable")


class _Session(asyncio.Protocol):
    """One connection the planner asked for. Bytes go to the planner; nothing is decided here."""

    __slots__ = ("drv", "sid", "transport", "task", "lost", "closing", "connecting")

    def __init__(self, drv, sid):
        self.drv = drv
        self.sid = sid
        self.transport = None
        self.task = None
        self.lost = False
        self.closing = False
        self.connecting = True

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if not self.closing:
            drv = self.drv
            drv.plan.read(drv.now(), self.sid, data)
            drv.pump()

    def eof_received(self):
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc):
        self.lost = True
        drv = self.drv
        if self.closing:  # we asked: the slot is free now
            drv.release(self)
        elif self.transport is not None:
            drv.plan.eof(drv.now(), self.sid, None)
            drv.pump()


class _Driver:
    def __init__(self, loop, dns_servers, ssl_context, opts, results):
        self.loop = loop
        self.plan = _smtpcode._Plan(seed=int.from_bytes(os.urandom(8), "little"), **opts)
        self.dns = Resolver(loop, dns_servers)
        self.results = results          # an asyncio.Queue of Result (None: done)
        self.sessions = {}
        self.tasks = set()
        self.timer = None
        self.pumping = False
        self.failed = None
        self.ssl = ssl_context

    def now(self):
        return int(self.loop.time() * 1e6)

    # -- actions out of the planner ---------------------------------------------------------

    def pump(self):
        if self.pumping:
            return
        self.pumping = True
        try:
            while True:
                acts = self.plan.drain(self.now())
                if not acts:
                    break
                for a in acts:
                    self.perform(a)
        finally:
            self.pumping = False
        if self.plan.done and not self.sessions and self.results is not None:
            self.results.put_nowait(None)
            self.results = None
            self.dns.close()

    def perform(self, a):
        kind = a[0]
        if kind == "write":
            s = self.sessions.get(a[1])
            if s is not None and s.transport is not None and not s.closing:
                s.transport.write(a[2])
        elif kind == "result":
            if self.results is not None:
                self.results.put_nowait(a[1])
        elif kind == "resolve":
            self.spawn(self.resolve(a[1], a[2]))
        elif kind == "connect":
            s = _Session(self, a[1])
            self.sessions[a[1]] = s
            s.task = self.spawn(self.connect(s, a[2], a[3]))
        elif kind == "start_tls":
            s = self.sessions.get(a[1])
            if s is not None:
                self.spawn(self.start_tls(s, a[2]))
        elif kind == "close":
            s = self.sessions.get(a[1])
            if s is not None:
                self.close(s)
        elif kind == "wake":
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if a[1]:
                self.timer = self.loop.call_at(a[1] / 1e6, self.on_wake)

    def on_wake(self):
        self.timer = None
        self.plan.tick(self.now())
        self.pump()

    def spawn(self, coro):
        t = self.loop.create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    def close(self, s):
        s.closing = True
        if s.transport is not None and not s.lost:
            s.transport.close()  # connection_lost releases it
        elif s.connecting:
            s.task.cancel()      # still connecting: connect() releases it
        else:
            self.release(s)

    def release(self, s):
        if self.sessions.get(s.sid) is s:
            del self.sessions[s.sid]
            self.plan.released(self.now(), s.sid)
            self.pump()

    # -- the I/O ------------------------------------------------------------------------------

    async def resolve(self, token, domain):
        try:
            route = await self.dns.lookup(domain)
        except asyncio.CancelledError:
            raise
        except Exception:
            route = None  # not a host name, or no socket: the planner says DNS
        self.plan.resolved(self.now(), token, route)
        self.pump()

    async def connect(self, s, ip, port):
        try:
            await self.loop.create_connection(lambda: s, ip, port)
            s.connecting = False
        except asyncio.CancelledError:
            s.connecting = False
            if s.closing:  # the planner gave up (connect timeout) or we are cancelled
                self.release(s)
                return
            raise
        except OSError as e:
            s.connecting = False
            if not s.closing:
                self.plan.eof(self.now(), s.sid, e.strerror or str(e))
                self.pump()
            else:
                self.release(s)
            return
        if s.closing:  # closed while the connect was finishing: connection_lost releases it
            s.transport.close()
            return
        self.plan.connected(self.now(), s.sid)
        self.pump()

    async def start_tls(self, s, name):
        ok = False
        if self.ssl is not None and s.transport is not None and not s.lost:
            try:
                t = await self.loop.start_tls(s.transport, s, self.ssl, server_hostname=name)
                if t is not None:
                    s.transport = t
                    ok = True
            except asyncio.CancelledError:
                raise
            except (OSError, ssl.SSLError, ConnectionError, ValueError):
                ok = False
        if s.closing or s.lost:
            if s.lost and s.closing:
                self.release(s)
            elif s.lost:
                self.plan.eof(self.now(), s.sid, "TLS handshake failed")
                self.pump()
            return
        self.plan.tls(self.now(), s.sid, ok)
        self.pump()

    def shutdown(self):
        """Cancel: every pending address is reported, every session closed."""
        self.plan.cancel(self.now())
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.pump()
        for s in list(self.sessions.values()):
            if s.transport is not None:
                s.transport.abort()
            if s.task is not None and not s.task.done():
                s.task.cancel()
        for t in list(self.tasks):
            t.cancel()
        self.dns.close()


_contexts = {}  # tls_verify -> the ssl.SSLContext every session of this process shares


def _context(verify):
    if verify:
        return ssl.create_default_context()  # reads the CA store: slow, and not on the loop
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # nothing to load: no check, no CA store
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _ssl_context(loop, verify):
    ctx = _contexts.get(verify)
    if ctx is None:
        ctx = await loop.run_in_executor(None, _context, True) if verify else _context(False)
        ctx = _contexts.setdefault(verify, ctx)
    return ctx


async def verify(addresses, *, mail_from, helo, dns_servers=None, tls_verify=False, **options):
    """Check addresses by SMTP without sending mail; an async iterator of smtpcode.Result.

    `addresses` is any iterable (or async iterable) of str, read lazily with a bounded window
    of pending work. Options are those of smtpcode.verify.
    """
    unknown = set(options) - set(_PLAN_OPTS)
    if unknown:
        raise TypeError("verify() got an unexpected keyword argument %r" % sorted(unknown)[0])
    if isinstance(addresses, (str, bytes)):
        raise TypeError("verify() takes an iterable of addresses, not one string")
    loop = asyncio.get_running_loop()
    opts = dict(options, mail_from=mail_from, helo=helo)
    results = asyncio.Queue()
    tls = None
    if opts.get("starttls", "opportunistic") != "off":
        tls = await _ssl_context(loop, bool(tls_verify))
    drv = _Driver(loop, dns_servers, tls, opts, results)
    conc = opts.get("concurrency", 100)
    window = max(256, min(65536, conc * opts.get("rcpt_per_session", 50) * 2))
    if hasattr(addresses, "__aiter__"):
        source, is_async = addresses.__aiter__(), True
    else:
        source, is_async = iter(addresses), False
    tag = 0
    more = True
    try:
        while True:
            # keep the window full: the planner batches what it holds
            while more and drv.plan.pending < window:
                try:
                    a = await source.__anext__() if is_async else next(source)
                except (StopIteration, StopAsyncIteration):
                    more = False
                    drv.plan.end()
                    break
                if not isinstance(a, str):
                    raise TypeError("verify() addresses must be str, not %s" % type(a).__name__)
                drv.plan.add(drv.now(), a, tag)
                tag += 1
                if tag % _SLICE == 0:
                    await asyncio.sleep(0)  # a large window is filled in slices: others run
            # the planner acts on the next loop turn (a WAKE for now), with everything added
            drv.pump()
            r = await results.get()
            if r is None:
                return
            yield r
            n = 1
            while not results.empty():
                r = results.get_nowait()
                if r is None:
                    return
                yield r
                n += 1
                if n % _SLICE == 0:
                    await asyncio.sleep(0)  # a consumer that never awaits still lets others run
    finally:
        drv.dns.close()  # lookups still running find no socket: their domains fail as DNS
        if drv.results is not None or drv.sessions:
            drv.shutdown()
            # let the closes and cancellations run before the caller goes on
            await asyncio.sleep(0)


async def verify_one(address, **options):
    """The smtpcode.Result for one address (same options as verify)."""
    async for r in verify([address], **options):
        return r
    raise RuntimeError("verify_one: no result")  # never: every address yields one
