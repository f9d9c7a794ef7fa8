"""Fixture `http_service(**env)`: Debian's nginx with the Lua module running
examples/openresty/nginx.conf (through tests/fixtures/nginx/ctl, on loopback), and a small HTTP
client for it. Each distinct setting (workers, rate, body limit, sender, extra configuration) is
its own instance on its own port and state directory; all are stopped at the end of the session.
Imported by conftest.py."""
import http.client
import json
import os
import pathlib
import subprocess

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_CTL = _ROOT / "tests" / "fixtures" / "nginx" / "ctl"


class HttpService:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, headers dict, body bytes) of one request on a fresh connection."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None):
        status, hdrs, data = self.request(method, path, body, headers)
        assert hdrs.get("content-type", "").startswith("application/json"), (status, data[:200])
        return status, json.loads(data)


@pytest.fixture(scope="session")
def http_service():
    running = {}

    def start(workers=1, rate=1000, body_max="64k", mail_from="probe@sender.test", dns_port=5353,
              extra=""):
        """extra: more configure() entries, Lua text ("deadline = 2,"), after the others."""
        key = (workers, rate, body_max, mail_from, dns_port, extra)
        if key in running:
            return running[key][0]
        port = 8089 + len(running)
        env = dict(os.environ, SMTPC_HTTP_PORT=str(port), SMTPC_HTTP_WORKERS=str(workers),
                   SMTPC_HTTP_RATE=str(rate), SMTPC_HTTP_BODY_MAX=body_max,
                   SMTPC_HTTP_MAIL_FROM=mail_from, SMTPC_DNS_PORT=str(dns_port),
                   SMTPC_HTTP_EXTRA=extra,
                   SMTPC_HTTP_STATE=str(_ROOT / "build" / "fixtures" / ("nginx-%d" % port)))
        r = subprocess.run([str(_CTL), "start"], env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("nginx fixture failed to start:\n" + r.stdout + r.stderr)
        running[key] = (HttpService(port), env)
        return running[key][0]

    yield start
    for _, env in running.values():
        subprocess.run([str(_CTL), "stop"], env=env, capture_output=True, timeout=60)
