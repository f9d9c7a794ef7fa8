"""Session fixture `dns_server`: dnsmasq on 127.0.0.1:5353 with the resolver's .test zones
(tests/fixtures/dns). Started through its ctl script unless it is already up, and stopped
afterwards only if this fixture started it. SMTPC_DNS_PORT (read by ctl too) moves it.
Imported by conftest.py."""
import os
import pathlib
import subprocess

import pytest

_CTL = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "dns" / "ctl"
DNS_SERVER = "127.0.0.1:%s" % (os.environ.get("SMTPC_DNS_PORT") or "5353")


def _ctl(*args):
    return subprocess.run([str(_CTL), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="session")
def dns_server():
    started = False
    if _ctl("status").returncode != 0:
        r = _ctl("start")
        if r.returncode != 0:
            raise RuntimeError("dns fixture failed to start:\n" + r.stdout + r.stderr)
        started = True
    yield DNS_SERVER
    if started:
        _ctl("stop")
