"""Session fixture for the proxy tests: dante, microsocks and the fault proxy
(tests/fixtures/socks/ctl) in front of the mail world.  Imported by conftest.py."""
import pathlib

import pytest

from fixture_mta import ROOT, _ctl, _ensure

SOCKS_USER, SOCKS_PASS = "smtpcproxy", "s3cret"
# name -> (host:port, needs credentials); see tests/fixtures/socks/ctl
PROXIES = {
    "dante": ("127.0.0.1:1080", False),
    "dante-auth": ("127.0.0.1:1081", True),
    "microsocks": ("127.0.0.1:1082", False),
    "microsocks-auth": ("127.0.0.1:1083", True),
}
FAULT_DROP, FAULT_TTL, FAULT_GENERAL = "127.0.0.1:1084", "127.0.0.1:1085", "127.0.0.1:1086"
COUNTING_RELAY = "127.0.0.1:1087"


def proxy_url(name, scheme="socks5", password=None):
    where, auth = PROXIES[name]
    cred = "%s:%s@" % (SOCKS_USER, password or SOCKS_PASS) if auth or password else ""
    return "%s://%s%s" % (scheme, cred, where)


class ProxyLogs:
    """The proxies' own logs, read from a mark."""

    def __init__(self, d):
        self.dir = pathlib.Path(d) / "log"

    def mark(self, name):
        p = self.dir / name
        return p.stat().st_size if p.exists() else 0

    def since(self, name, mark):
        with open(self.dir / name, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")


@pytest.fixture(scope="session")
def socks_world(mail_world):
    started = _ensure("socks")
    import os
    d = os.environ.get("SMTPC_FIXTURE_DIR", str(ROOT / "build" / "fixtures"))
    yield ProxyLogs(pathlib.Path(d) / "socks")
    if started:
        _ctl("socks", "stop", check=False)
