"""faultlib -- shared machinery of the fault matrix (test_faults.py) and the hostile-address
batch (test_hostile.py).

  MatrixServers   runs tests/fixtures/fault/matrix_server.py (many faultsmtp servers in one
                  process, each on its own 127.0.2.N) and reads back what each one received.
  run_cell        runs one smtpcode.verify() batch in a child process (`python faultlib.py`),
                  so that a crash or a hang in the engine fails one test instead of the suite,
                  and so that each batch's memory is its own: the child reports its resident
                  size before the batch and its peak (VmHWM) after it.
  private_dns     an instance of the DNS fixture of our own (tests/fixtures/dns/conf.d/
                  faults.conf holds our zones) on DNS_PORT.

Nothing here listens or connects outside 127.0.0.0/8.
"""
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
MATRIX_SERVER = ROOT / "tests" / "fixtures" / "fault" / "matrix_server.py"
DNS_CTL = ROOT / "tests" / "fixtures" / "dns" / "ctl"
STATE = ROOT / "build" / "fixtures" / "faults"
PORT = 2525
DNS_PORT = int(os.environ.get("SMTPC_FAULTS_DNS_PORT") or "5363")  # its responder: + 37
SENDER = "probe@probe.test"
HELO = "probe.test"


def cell_ip(n):
    return "127.0.2.%d" % n


# ------------------------------------------------------------------------------------------
# DNS


def _dns_query(server, name, qtype=15, timeout=1.0):
    """One UDP query to server ("127.0.0.1:5353"); returns the RCODE and the answer count."""
    host, port = server.rsplit(":", 1)
    qid = os.getpid() & 0xFFFF
    q = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + qtype.to_bytes(2, "big") + b"\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, (host, int(port)))
        msg, _ = s.recvfrom(4096)
    except OSError:
        return None, 0
    finally:
        s.close()
    return msg[3] & 0x0F, int.from_bytes(msg[6:8], "big")


def _dns_ctl(port, *args):
    env = dict(os.environ, SMTPC_DNS_PORT=str(port))
    return subprocess.run([str(DNS_CTL), *args], env=env, capture_output=True, text=True,
                          timeout=60)


@contextlib.contextmanager
def private_dns(port=DNS_PORT):
    """A DNS fixture instance of our own (tests/fixtures/dns/ctl on another port, with its own
    state directory and responder): the shared one on 5353 may be restarted by other suites
    while the matrix runs, and may have been started before faults.conf existed. Yields
    "127.0.0.1:PORT"; stops the instance afterwards unless it was already running."""
    server = "127.0.0.1:%d" % port
    was_up = _dns_ctl(port, "status").returncode == 0
    if was_up and _dns_query(server, "c1.faults.test")[1] == 0:
        _dns_ctl(port, "stop")  # ours, but started before faults.conf: read it again
        was_up = False
    if not was_up:
        r = _dns_ctl(port, "start")
        if r.returncode != 0:
            raise RuntimeError("DNS fixture on port %d did not start:\n%s%s"
                               % (port, r.stdout, r.stderr))
    rcode, n = _dns_query(server, "c1.faults.test")
    if rcode != 0 or n == 0:
        raise RuntimeError("DNS fixture on %s does not serve the faults.test zones" % server)
    try:
        yield server
    finally:
        if not was_up:
            _dns_ctl(port, "stop")


# ------------------------------------------------------------------------------------------
# the fault servers


def _stop_stale(pidfile):
    """A server left behind by an interrupted run would hold our addresses: stop it, if it
    is still that server."""
    try:
        pid = int(pidfile.read_text())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if MATRIX_SERVER.name.encode() not in f.read():
                return
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    for _ in range(100):
        if not os.path.exists("/proc/%d" % pid):
            return
        time.sleep(0.05)


class MatrixServers:
    """One matrix_server process; `listeners` as in its config; stop() ends it."""

    def __init__(self, name, listeners, blackholes=(), huge=None):
        self.dir = STATE / name
        _stop_stale(self.dir / "pid")
        subprocess.run(["rm", "-rf", str(self.dir)], check=True)
        self.dir.mkdir(parents=True)
        self.record = self.dir / "record"
        cfg = self.dir / "config.json"
        cfg.write_text(json.dumps({"listeners": listeners, "blackholes": list(blackholes)}))
        ready = self.dir / "pid"
        self.log = open(self.dir / "log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(MATRIX_SERVER), "--config", str(cfg), "--record",
             str(self.record), "--certdir", str(STATE / "certs"), "--ready", str(ready)] +
            (["--huge", str(huge)] if huge else []),
            stdout=self.log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 30
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise RuntimeError("matrix_server did not start:\n" +
                                   (self.dir / "log").read_text())
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def received(self, ip):
        """Every byte each connection to ip sent, in connection order."""
        d = self.record / ip
        if not d.is_dir():
            return []
        return [p.read_bytes() for p in sorted(d.glob("conn-*.bin"))]


# ------------------------------------------------------------------------------------------
# one verify() batch in a child process


def run_cell(addresses, timeout_s=60, **opts):
    """Run smtpcode.verify(addresses, **opts) in a child. Returns a dict: results (to_dict()
    of each, plus 'error'), elapsed (s), rss_before and rss_peak (KiB), or 'crash' with the
    child's exit status and stderr when it died."""
    req = json.dumps({"addresses": addresses, "opts": opts})
    try:
        p = subprocess.run([sys.executable, os.path.abspath(__file__)], input=req.encode(),
                           capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"crash": "hung: no end after %s s" % timeout_s}
    if p.returncode != 0:
        return {"crash": "exit %d\n%s" % (p.returncode, p.stderr.decode("utf-8", "replace"))}
    return json.loads(p.stdout)


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _child():
    import smtpcode  # imported here: the parent process never runs the engine itself

    req = json.loads(sys.stdin.buffer.read())
    before = _status_kib("VmRSS")
    t0 = time.monotonic()
    out = []
    for r in smtpcode.verify(req["addresses"], **req["opts"]):
        d = r.to_dict()
        d["at"] = time.monotonic() - t0
        out.append(d)
    elapsed = time.monotonic() - t0
    sys.stdout.write(json.dumps({"results": out, "elapsed": elapsed, "rss_before": before,
                                 "rss_peak": _status_kib("VmHWM")}))


if __name__ == "__main__":
    _child()
