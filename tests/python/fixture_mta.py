"""Session fixtures for the probe tests: the loopback mail world (dnsmasq + Postfix + postgrey)
and fault servers.  Imported by conftest.py.

Each ctl script is idempotent; a fixture stops only what it started itself, so a world brought
up by `tests/fixtures/world start` (or by another suite) is left running.
"""
import os
import pathlib
import re
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
DNS_SERVERS = "127.0.0.1:5353"
PORT = 2525


def _ctl(name, *args, check=True):
    return subprocess.run([str(FIXTURES / name / "ctl"), *args], capture_output=True, text=True,
                          check=check, timeout=60)


def _ensure(name):
    """Start fixture `name` unless it is up; return True when this call started it."""
    if _ctl(name, "status", check=False).returncode == 0:
        return False
    r = _ctl(name, "start", check=False)
    if r.returncode != 0:
        raise RuntimeError("fixture %s failed to start:\n%s%s" % (name, r.stdout, r.stderr))
    return True


class MtaLog:
    """Postfix's own log (maillog_file), read from a mark, for assertions on what it saw."""

    _CONNECT = re.compile(r" (mta-[a-z0-9]+)/smtpd\[(\d+)\]: connect from ")
    _DISCONNECT = re.compile(r" (mta-[a-z0-9]+)/smtpd\[(\d+)\]: disconnect from \S+ (.*)$")

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def mark(self):
        return self.path.stat().st_size

    def lines_since(self, mark):
        with open(self.path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace").splitlines()

    def sessions_since(self, mark, listener="mta-mx1", settle=10.0):
        """(connects, disconnect stats) of one listener since mark, once every connect has its
        disconnect line (postlogd writes asynchronously, smtpd logs after the client left)."""
        end = time.monotonic() + settle
        while True:
            conns, disc, open_pids = [], [], set()
            for line in self.lines_since(mark):
                m = self._CONNECT.search(line)
                if m and m.group(1) == listener:
                    conns.append(line)
                    open_pids.add(m.group(2))
                    continue
                m = self._DISCONNECT.search(line)
                # only sessions that began after the mark: an smtpd process serves one
                # session at a time, so its pid pairs a disconnect with its connect
                if m and m.group(1) == listener and m.group(2) in open_pids:
                    open_pids.discard(m.group(2))
                    disc.append(m.group(3))
            if not open_pids or time.monotonic() > end:
                return conns, disc
            time.sleep(0.1)


@pytest.fixture(scope="session")
def mail_world():
    """dnsmasq on 127.0.0.1:5353 and Postfix/postgrey on 127.0.0.{1,2,3,5}:2525."""
    started = [n for n in ("dns", "mta") if _ensure(n)]
    yield {"dns_servers": DNS_SERVERS, "port": PORT}
    for n in reversed(started):
        _ctl(n, "stop", check=False)


@pytest.fixture(scope="session")
def mta_log(mail_world):
    d = _ctl("mta", "dir").stdout.strip()
    return MtaLog(os.path.join(d, "log", "maillog"))


class FaultServer:
    """One faultsmtp instance N on 127.0.0.<20+N>:2525, domain fN.fault.mta.test."""

    def __init__(self, n, script):
        import json
        self.n = n
        self.domain = "f%d.fault.mta.test" % n
        r = _ctl("fault", "start", str(n), json.dumps(script), check=False)
        if r.returncode != 0:
            raise RuntimeError("fault server %d failed:\n%s%s" % (n, r.stdout, r.stderr))
        self.dir = pathlib.Path(_ctl("fault", "dir", str(n)).stdout.strip())

    def connections(self):
        """Bytes received on each connection, in connection order."""
        return [p.read_bytes() for p in sorted((self.dir / "record").glob("conn-*.bin"))]

    def stats(self):
        """The server's counters: connections, rcpts, active and peak concurrent sessions."""
        import json
        return json.loads((self.dir / "stats.json").read_text())

    def stop(self):
        _ctl("fault", "stop", str(self.n), check=False)


@pytest.fixture
def fault_server(mail_world):
    """Factory: fault_server(n, script) -> FaultServer; every instance is stopped afterwards."""
    servers = []

    def make(n, script):
        s = FaultServer(n, script)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
