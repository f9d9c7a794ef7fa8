"""faultlib -- shared machinery of the fault matrix (test_faults.py) and the hostile-address
batch (test_hostile.py).

  MatrixServers   runs tests/fixtures/fault/matrix_server.py (many faultsmtp servers in one
                  process, each on its own 127.0.2.N) and reads back what each one received.
  run_cell        runs one smtpcode.verify() batch in a child process (`python faultlib.py`),
                  so that a crash or a hang in the engine fails one test instead of the suite,
                  and so that each batch's memory is its own: the child reports its resident
                  size before the batch and its peak (VmHWM) after it.
  private_dns     an instance of the DNS fixture of our own, on a free port (tests/fixtures/
                  dns/conf.d/faults.conf holds our zones).

Nothing here listens or connects outside 127.0.0.0/8.
"""
import contextlib
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
MATRIX_SERVER = ROOT / "tests" / "fixtures" / "fault" / "matrix_server.py"
DNS_CTL = ROOT / "tests" / "fixtures" / "dns" / "ctl"
STATE = ROOT / "build" / "fixtures" / "faults"
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


def _udp_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _dns_state(port):
    return ROOT / "build" / "fixtures" / ("dns-%d" % port)  # as tests/fixtures/dns/ctl has it


def _forget_old_dns():
    """Instances started by earlier runs that were killed before they could stop them."""
    for owner in (ROOT / "build" / "fixtures").glob("dns-*/faults-owner"):
        try:
            pid = int(owner.read_text())
            port = int(owner.parent.name.split("-", 1)[1])
        except ValueError:
            continue
        if not os.path.exists("/proc/%d" % pid):
            _dns_ctl(port, "stop")
            subprocess.run(["rm", "-rf", str(owner.parent)])


@contextlib.contextmanager
def private_dns():
    """An instance of the DNS fixture of our own (tests/fixtures/dns/ctl on another port, with
    its own state directory and responder on port + 37): the shared one on 5353 may be
    restarted by other suites while the matrix runs, and may have been started before
    faults.conf existed. Each run takes a free port of its own (SMTPC_FAULTS_DNS_PORT fixes
    it), so that concurrent runs do not stop each other's. Yields "127.0.0.1:PORT"."""
    _forget_old_dns()
    port = int(os.environ.get("SMTPC_FAULTS_DNS_PORT") or 0)
    rng = random.Random()
    while not port:
        p = rng.randrange(20000, 32000)
        if _udp_free(p) and _udp_free(p + 37):
            port = p
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
        (_dns_state(port) / "faults-owner").write_text(str(os.getpid()))
    rcode, n = _dns_query(server, "c1.faults.test")
    if rcode != 0 or n == 0:
        raise RuntimeError("DNS fixture on %s does not serve the faults.test zones" % server)
    try:
        yield server
    finally:
        if not was_up:
            _dns_ctl(port, "stop")
            subprocess.run(["rm", "-rf", str(_dns_state(port))])


# ------------------------------------------------------------------------------------------
# the fault servers


def pick_port(ips=("127.0.2.1", "127.0.2.200", "127.0.2.251")):
    """A port free on our addresses, below the ephemeral range (client sockets never hold
    it). Every run picks its own, so that two runs of these tests at once (two engineers, or
    `make test` beside a single test file) never meet on the same address and port."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        socks = []
        try:
            for ip in ips:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((ip, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port for the fault servers")


def _forget_old_runs(name):
    """State directories of earlier runs whose test process is gone."""
    for d in STATE.glob(name + "-*"):
        try:
            pid = int(d.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        if pid != os.getpid() and not os.path.exists("/proc/%d" % pid):
            subprocess.run(["rm", "-rf", str(d)])


class MatrixServers:
    """One matrix_server process; `listeners` as in its config; stop() ends it (and it ends by
    itself when this process dies). State in build/fixtures/faults/<name>-<our pid>/."""

    def __init__(self, name, listeners, blackholes=(), huge=None):
        _forget_old_runs(name)
        self.dir = STATE / ("%s-%d" % (name, os.getpid()))
        subprocess.run(["rm", "-rf", str(self.dir)], check=True)
        self.dir.mkdir(parents=True)
        self.record = self.dir / "record"
        cfg = self.dir / "config.json"
        cfg.write_text(json.dumps({"listeners": listeners, "blackholes": list(blackholes)}))
        ready = self.dir / "pid"
        self.log = open(self.dir / "log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(MATRIX_SERVER), "--config", str(cfg), "--record",
             str(self.record), "--certdir", str(self.dir), "--ready", str(ready)] +
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
    # The classifier's automata and the inspect tables are built once per process, on first
    # use (megabytes, and more under valgrind): built before the first reading, so that the
    # growth measured is the batch's own, which is what a leak or an unbounded buffer shows in.
    smtpcode.decode("550 5.1.1 <a@example.org>: Recipient address rejected: User unknown",
                    host="mx.example.org")
    smtpcode.inspect("a@example.org")
    try:  # and the peak starts again from here (Linux >= 4.0: "5" resets VmHWM)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
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
