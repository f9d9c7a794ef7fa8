"""smtpcode.resty outside content handlers: in access_by_lua, in an ngx.timer.at callback made by
a request, and in a timer made by init_worker_by_lua. Debian's nginx with the Lua module runs a
small config written here (loopback only) against the Postfix/dnsmasq world; each context
verifies alice@users.mta.test (deliverable, by the world's configuration) and
nobody@users.mta.test (undeliverable) and reports the verdicts it got."""
import http.client
import pathlib
import shutil
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STATE = ROOT / "build" / "fixtures" / "nginx-contexts"
PORT = 8079

CONF = r"""
load_module /usr/share/nginx/modules/ndk_http_module.so;
load_module /usr/share/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
daemon on;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path logs/body;
    lua_package_path "ROOT/lua/?.lua;/usr/share/lua/5.1/?.lua;;";
    lua_package_cpath "ROOT/build/cmake/luajit/?.so;;";
    lua_shared_dict hosts 1m;
    lua_shared_dict out 1m;
    init_by_lua_block {
        OPTS = { mail_from = "probe@sender.test", helo = "probe.sender.test", port = 2525,
                 dns_servers = "127.0.0.1:5353", timeout = 5, deadline = 60,
                 shared_dict = "hosts" }
        function VERDICTS(where)
            local res, err = require("smtpcode.resty").verify(
                { "alice@users.mta.test", "nobody@users.mta.test" }, OPTS)
            local out = {}
            if not res then out = { "error: " .. tostring(err) } end
            for _, r in ipairs(res or {}) do out[#out + 1] = r.address .. "=" .. r.verdict end
            table.sort(out)
            ngx.shared.out:set(where, table.concat(out, " "))
        end
    }
    init_worker_by_lua_block {
        ngx.timer.at(0, function(premature) if not premature then VERDICTS("init_worker") end end)
    }
    server {
        listen 127.0.0.1:PORT;
        location = /access {
            access_by_lua_block { VERDICTS("access") }
            content_by_lua_block { ngx.say(ngx.shared.out:get("access")) }
        }
        location = /timer {
            content_by_lua_block {
                ngx.timer.at(0, function(premature) if not premature then VERDICTS("timer") end end)
                ngx.say("started")
            }
        }
        location = /out { content_by_lua_block { ngx.say(ngx.shared.out:get(ngx.var.arg_k) or "") } }
    }
}
"""

EXPECTED = "alice@users.mta.test=deliverable nobody@users.mta.test=undeliverable"


def get(path):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode().strip()
    finally:
        c.close()


@pytest.fixture(scope="module")
def nginx(mail_world):
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    if STATE.exists():
        shutil.rmtree(STATE)
    (STATE / "logs" / "body").mkdir(parents=True)
    conf = STATE / "nginx.conf"
    conf.write_text(CONF.replace("ROOT", str(ROOT)).replace("PORT", str(PORT)))
    subprocess.run([nginx_bin, "-p", str(STATE), "-c", str(conf)], check=True, timeout=30)
    try:
        for _ in range(100):
            try:
                get("/out?k=none")
                break
            except OSError:
                time.sleep(0.05)
        yield
    finally:
        subprocess.run([nginx_bin, "-p", str(STATE), "-c", str(conf), "-s", "stop"], timeout=30)
        time.sleep(0.3)


def wait_for(key):
    for _ in range(200):
        status, body = get("/out?k=" + key)
        if body:
            return body
        time.sleep(0.05)
    return None


def test_in_access_by_lua(nginx):
    assert get("/access") == (200, EXPECTED)


def test_in_a_timer_made_by_a_request(nginx):
    assert get("/timer") == (200, "started")
    assert wait_for("timer") == EXPECTED


def test_in_a_timer_made_by_init_worker(nginx):
    assert wait_for("init_worker") == EXPECTED
