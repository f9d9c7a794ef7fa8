"""smtpcode.dask on a distributed.LocalCluster of 3 worker processes, against real servers:
the smtp-sink world of tests/load (22 smtp-sink servers, 1,000 domains on a private dnsmasq) and
the Postfix world (tests/fixtures/mta), whose log shows how many sessions each listener had at
once. Skipped, with the reason, only when Dask is not installed (PyPI unreachable at install)."""
import collections
import importlib.machinery
import json
import importlib.util
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask[distributed] is not installed (tests/install-deps could not "
                          "reach PyPI): the Dask scale-out tests cannot run")
pd = pytest.importorskip("pandas")
dd = pytest.importorskip("dask.dataframe")

import smtpcode                 # noqa: E402
import smtpcode.cli.formats     # noqa: E402
import smtpcode.dask as sdask   # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
PY = sys.executable
SENDER = dict(mail_from="probe@probe.test", helo="probe.test")

# tests/load/run is a script (no .py); its world of smtp-sink servers is reused as it is
_loader = importlib.machinery.SourceFileLoader("load_run", str(ROOT / "tests" / "load" / "run"))
load = importlib.util.module_from_spec(importlib.util.spec_from_loader("load_run", _loader))
_loader.exec_module(load)


@pytest.fixture(scope="module")
def sink_world():
    """22 smtp-sink servers on 127.0.3.x:2525, dnsmasq on 127.0.0.1:5455 for d0..d999.load.test."""
    load.STATE.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        load.start_world(1000, procs)
        yield {"dns_servers": "127.0.0.1:%d" % load.DNS_PORT, "port": load.SMTP_PORT}
    finally:
        load.stop_world(procs)


@pytest.fixture(scope="module")
def cluster():
    # 3 worker processes, one thread each: a slot is one task on one process
    with distributed.LocalCluster(n_workers=3, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as c, \
            distributed.Client(c) as client:
        yield client


def addresses(n, domains):
    return ["u%d@d%d.load.test" % (i, i % domains) for i in range(n)]


def test_100k_addresses_one_result_per_row(sink_world, cluster):
    n = 100_000
    src = pd.DataFrame({"email": addresses(n, 1000), "row": range(n)})
    src.loc[src.index % 50 == 49, "email"] = src["email"].str.upper()  # given back as given
    ddf = dd.from_pandas(src, npartitions=6)
    out = sdask.verify(ddf, column="email", dns_servers=sink_world["dns_servers"],
                       port=sink_world["port"], timeout=30, deadline=600, **SENDER)
    assert out.npartitions == 6          # lazy: nothing has been probed yet
    got = out.compute()
    assert len(got) == n
    assert sorted(got["row"]) == list(range(n))           # each input row exactly once
    back = got.set_index("row").sort_index()
    assert (back["email"] == src.set_index("row")["email"]).all()   # carried through as given
    assert back.index.equals(src.set_index("row").index)
    want = [load.expected(a) for a in back["email"]]
    have = list(zip(back["verdict"], back["reason"], back["code"]))
    wrong = [(a, h, w) for a, h, w in zip(back["email"], have, want) if h != w]
    assert not wrong, wrong[:5]
    assert set(got["worker"]) <= {"0", "1", "2"}


def test_one_mx_group_is_one_lane(sink_world, cluster):
    # every domain of one sink address lands in one output partition, whatever its name
    out = sdask.verify(addresses(3000, 1000), column="email", npartitions=4, lanes=5,
                       dns_servers=sink_world["dns_servers"], port=sink_world["port"],
                       **SENDER)
    parts = cluster.gather(cluster.compute(out.to_delayed()))
    seen = collections.defaultdict(set)
    total = 0
    for k, p in enumerate(parts):
        total += len(p)
        for mx_address in set(p["mx_address"]):
            seen[mx_address].add(k)
    assert total == 3000
    assert len(seen) == 22
    assert all(len(v) == 1 for v in seen.values()), dict(seen)


def test_every_kind_of_input_gives_one_row_per_row_without_traffic():
    # invalid addresses only: the engine answers syntaxerror without any network, so the
    # synchronous scheduler will do for the shapes
    import dask.bag as db
    bad = ["x", "y@@z", "", "a b@c.test", "x"]
    cases = {
        "list": (bad + [None], "email"),
        "bag of strings": (db.from_sequence(bad, npartitions=2), "email"),
        "bag of dicts": (db.from_sequence([{"e": a, "n": i} for i, a in enumerate(bad)],
                                          npartitions=3), "e"),
        "pandas": (pd.DataFrame({"email": bad, "reason": range(len(bad))}), "email"),
        "dask series": (dd.from_pandas(pd.Series(bad), npartitions=2), "email"),
    }
    for what, (coll, column) in cases.items():
        got = sdask.verify(coll, column=column, npartitions=2, **SENDER).compute(scheduler="sync")
        n = len(bad) + (what == "list")
        assert len(got) == n, what
        assert set(zip(got["verdict"], got["reason"])) == {("undeliverable", "syntaxerror")}, what
        assert got["code"].isna().all() and got["mx"].isna().all(), what
    # an input column named like a result column is kept, renamed
    got = sdask.verify(cases["pandas"][0], column="email", **SENDER).compute(scheduler="sync")
    assert sorted(got["input_reason"]) == list(range(len(bad)))
    assert len(sdask.verify([], **SENDER).compute(scheduler="sync")) == 0
    with pytest.raises(ValueError, match="helo is required"):
        sdask.verify(["x"], mail_from="probe@probe.test")
    with pytest.raises(ValueError, match="no column"):
        sdask.verify(pd.DataFrame({"a": ["x"]}), column="email", **SENDER)


def test_lanes_are_dealt_by_rows_and_agree_everywhere():
    import random
    rnd = random.Random(14)
    loads = {"ip:10.0.%d.%d" % (i // 250, i % 250): rnd.choice([1, 3, 10, 200, 5000])
             for i in range(700)}
    lanes = sdask.assign_lanes(loads, 7)
    assert set(lanes) == set(loads) and set(lanes.values()) == set(range(7))
    # the same answer from loads listed in another order (another task, another worker)
    assert sdask.assign_lanes(dict(sorted(loads.items(), reverse=True)), 7) == lanes
    per_lane = collections.Counter()
    for k, lane in lanes.items():
        per_lane[lane] += loads[k]
    # greedy, biggest first: no lane exceeds the mean by more than its largest group
    assert max(per_lane.values()) <= sum(loads.values()) / 7 + max(loads.values())


def test_group_key_is_the_primary_mx_address(dns_server):
    # from the resolver's zones (tests/fixtures/dns/conf.d/mta.conf): users and catchall have
    # MX mx1 = 127.0.0.1, implicit has no MX and its own A 127.0.0.1 (one group, three names);
    # backup's preferred MX is mx-defer 127.0.0.2; no route, no group but the domain itself
    key = {d: sdask.group_key(smtpcode.resolve(d, dns_servers=dns_server))
           for d in ("users.mta.test", "catchall.mta.test", "implicit.mta.test",
                     "backup.mta.test", "nullmx.mta.test", "nxdomain.mta.test")}
    assert key == {"users.mta.test": "ip:127.0.0.1", "catchall.mta.test": "ip:127.0.0.1",
                   "implicit.mta.test": "ip:127.0.0.1", "backup.mta.test": "ip:127.0.0.2",
                   "nullmx.mta.test": "domain:nullmx.mta.test",
                   "nxdomain.mta.test": "domain:nxdomain.mta.test"}


# --- politeness across the cluster, counted in Postfix's own log ----------------------------

POLITE_DNS_PORT = 5461
# mailbox domains of the Postfix world, given MX names of their own that share two addresses
POLITE_DOMAINS = {"users.mta.test": "127.0.0.1", "backup.mta.test": "127.0.0.1",
                  "failover.mta.test": "127.0.0.1", "catchall.mta.test": "127.0.0.1",
                  "implicit.mta.test": "127.0.0.5", "notls.mta.test": "127.0.0.5"}
LISTENER = {"127.0.0.1": "mta-mx1", "127.0.0.5": "mta-notls"}


@pytest.fixture(scope="module")
def polite_dns(tmp_path_factory):
    d = tmp_path_factory.mktemp("polite-dns")
    conf = d / "dnsmasq.conf"
    lines = ["port=%d" % POLITE_DNS_PORT, "listen-address=127.0.0.1", "bind-interfaces",
             "no-resolv", "no-hosts", "user=root", "local=/test/"]
    for k, (dom, ip) in enumerate(sorted(POLITE_DOMAINS.items())):
        lines += ["host-record=mx%d.polite.test,%s" % (k, ip),
                  "mx-host=%s,mx%d.polite.test,10" % (dom, k)]
    conf.write_text("\n".join(lines) + "\n")
    p = subprocess.Popen(["dnsmasq", "-k", "-C", str(conf), "--pid-file="],
                         stderr=open(d / "err", "wb"))
    time.sleep(0.3)
    assert p.poll() is None, (d / "err").read_text()
    yield "127.0.0.1:%d" % POLITE_DNS_PORT
    p.terminate()
    p.wait(10)


_CONNECT = re.compile(r" (mta-[a-z0-9]+)/smtpd\[(\d+)\]: connect from ")
_DISCONNECT = re.compile(r" (mta-[a-z0-9]+)/smtpd\[(\d+)\]: disconnect from ")


def peak_sessions(mta_log, mark, settle=15.0):
    """{listener: most sessions open at once} from the connect/disconnect lines since mark, in
    the log's order, once every connect has its disconnect (smtpd logs asynchronously)."""
    end = time.monotonic() + settle
    while True:
        open_, peak, unclosed = collections.defaultdict(set), collections.Counter(), 0
        for line in mta_log.lines_since(mark):
            m = _CONNECT.search(line)
            if m:
                open_[m.group(1)].add(m.group(2))
                peak[m.group(1)] = max(peak[m.group(1)], len(open_[m.group(1)]))
                continue
            m = _DISCONNECT.search(line)
            if m:
                open_[m.group(1)].discard(m.group(2))
        unclosed = sum(len(v) for v in open_.values())
        if not unclosed or time.monotonic() > end:
            return dict(peak), unclosed
        time.sleep(0.2)


def polite_addresses():
    return ["bulk%04d@%s" % (i, d) for i in range(1, 201) for d in sorted(POLITE_DOMAINS)]


POLITE_OPTS = dict(starttls="off", per_host=1, rcpt_per_session=25, **SENDER)


def test_per_host_holds_across_workers_in_postfix_log(mail_world, mta_log, polite_dns, cluster):
    addrs = polite_addresses()
    mark = mta_log.mark()
    # rounds=3: each lane is three tasks; run side by side on three workers they would
    # triple the sessions on a listener, so the count below checks the time split too
    out = sdask.verify(addrs, column="email", npartitions=6, lanes=6, rounds=3,
                       dns_servers=polite_dns, port=mail_world["port"], **POLITE_OPTS)
    got = out.compute()
    assert sorted(got["email"]) == sorted(addrs)
    assert (got["verdict"].isin(["deliverable", "risky"])).all(), got["verdict"].value_counts()
    assert got["worker"].nunique() >= 2      # the work was spread over the cluster
    peak, unclosed = peak_sessions(mta_log, mark)
    assert unclosed == 0
    assert set(peak) == {"mta-mx1", "mta-notls"}
    assert all(v <= POLITE_OPTS["per_host"] for v in peak.values()), peak


def test_the_session_count_sees_uncoordinated_workers(mail_world, mta_log, polite_dns):
    # The control for the test above: the same addresses split by domain over 3 verify() runs
    # at once (what a cluster without MX groups would do) exceed per_host on a listener, and
    # the count from the log must see it.
    addrs = polite_addresses()
    by_domain = collections.defaultdict(list)
    for a in addrs:
        by_domain[a.split("@")[1]].append(a)
    chunks = [[], [], []]
    for k, dom in enumerate(sorted(by_domain)):
        chunks[k % 3] += by_domain[dom]
    mark = mta_log.mark()
    res = []

    def run(chunk):
        res.extend(smtpcode.verify(chunk, dns_servers=polite_dns, port=mail_world["port"],
                                   **POLITE_OPTS))
    ts = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(res) == len(addrs)
    peak, _ = peak_sessions(mta_log, mark)
    assert max(peak.values()) > POLITE_OPTS["per_host"], peak


# --- egress per worker ----------------------------------------------------------------------

def test_egress_options_per_worker(sink_world, cluster):
    names = {str(w["name"]) for w in cluster.scheduler_info()["workers"].values()}
    egress = {int(n): {"helo": "w%s.probe.test" % n} for n in names}
    out = sdask.verify(addresses(300, 30), column="email", npartitions=3, egress=egress,
                       transcript=True, mail_from="probe@probe.test",
                       dns_servers=sink_world["dns_servers"], port=sink_world["port"])
    got = out.compute()
    assert len(got) == 300
    for worker, transcript in zip(got["worker"], got["transcript"]):
        assert "EHLO w%s.probe.test" % worker in transcript, (worker, transcript[:300])


def test_egress_without_an_entry_for_a_worker_is_an_error(sink_world, cluster):
    out = sdask.verify(addresses(30, 30), column="email", npartitions=1,
                       egress={"no-such-worker": {"helo": "x.probe.test"}},
                       mail_from="probe@probe.test",
                       dns_servers=sink_world["dns_servers"], port=sink_world["port"])
    with pytest.raises(ValueError, match="no egress entry"):
        out.compute()


def _engine_has(option):
    try:
        smtpcode.verify([], **{option: None}, **SENDER).close()
    except TypeError as e:
        return "invalid keyword" not in str(e)
    return True


def test_egress_source_address_per_worker_in_postfix_log(mail_world, mta_log, polite_dns,
                                                          cluster):
    if not _engine_has("source_address"):
        pytest.skip("this engine has no source_address option yet (issue 12)")
    names = sorted(str(w["name"]) for w in cluster.scheduler_info()["workers"].values())
    egress = {int(n): {"source_address": "127.0.0.%d" % (21 + int(n))} for n in names}
    addrs = ["bulk%04d@%s" % (i, d) for i in range(1, 21) for d in sorted(POLITE_DOMAINS)]
    mark = mta_log.mark()
    got = sdask.verify(addrs, column="email", npartitions=2, lanes=2, egress=egress,
                       dns_servers=polite_dns, port=mail_world["port"],
                       **POLITE_OPTS).compute()
    assert len(got) == len(addrs) and got["code"].notna().all()
    peak_sessions(mta_log, mark)             # waits until every session is logged
    clients = set(re.findall(r"smtpd\[\d+\]: connect from \S*\[([0-9.]+)\]",
                             "\n".join(mta_log.lines_since(mark))))
    # each worker connected from its own address, and only from it
    assert clients == {egress[int(w)]["source_address"] for w in set(got["worker"])}, clients


# --- a worker killed mid-slot ---------------------------------------------------------------

def test_worker_killed_mid_slot_still_one_result_per_row(sink_world, cluster):
    n = 20_000
    src = pd.DataFrame({"email": addresses(n, 1000), "row": range(n)})
    # slow enough that slots run for seconds: few sessions, small transactions
    out = sdask.verify(dd.from_pandas(src, npartitions=3), column="email", lanes=3, rounds=2,
                       concurrency=4, per_host=1, rcpt_per_session=10,
                       dns_servers=sink_world["dns_servers"], port=sink_world["port"],
                       deadline=600, **SENDER)
    pids = cluster.run(os.getpid)
    fut = cluster.compute(out)
    killed = None
    end = time.monotonic() + 120
    while killed is None and time.monotonic() < end and not fut.done():
        for addr, keys in cluster.processing().items():
            slots = [k for k in keys if "_run_slot" in str(k)]
            if slots:
                time.sleep(1.0)          # let it get well into the slot
                if any(k in cluster.processing().get(addr, ()) for k in slots):
                    os.kill(pids[addr], signal.SIGKILL)
                    killed = (addr, slots)
                break
        time.sleep(0.1)
    assert killed is not None, "no slot was seen running to kill its worker"
    got = fut.result(timeout=300)
    assert len(got) == n
    assert sorted(got["row"]) == list(range(n))
    assert got["code"].notna().all()       # every row answered by a server, none lost
    # the nanny brought the worker back: the cluster is whole again for the tests after
    cluster.wait_for_workers(3, timeout=60)


# --- the command ----------------------------------------------------------------------------

CLI_BASE = ["--from", "probe@probe.test", "--helo", "probe.test", "--timeout", "10",
            "--deadline", "120", "--no-progress", "-q"]


def cli(*args, stdin=None, timeout=180):
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="3s")
    return subprocess.run([PY, "-m", "smtpcode", "verify", *args, *CLI_BASE], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_cli_local_cluster_csv_to_parquet(sink_world, tmp_path):
    n = 2000
    src = tmp_path / "big.csv"
    with open(src, "w") as f:
        f.write("id,email,text\n")        # `text` collides with a result field: input_text
        for i, a in enumerate(addresses(n, 1000)):
            f.write("%d,%s,note %d\n" % (i, a, i))
    out = tmp_path / "out.parquet"
    r = cli("--workers", "2", "--column", "email", str(src), "-o", str(out),
            "--port", str(sink_world["port"]), "--dns", sink_world["dns_servers"],
            "--partition-size", "20000")
    assert r.returncode == 0, r.stderr
    got = pd.read_parquet(out)
    assert len(got) == n
    assert sorted(got["id"].astype(int)) == list(range(n))
    assert (got["input_text"] == "note " + got["id"]).all()
    for a, v, reason, code in zip(got["email"], got["verdict"], got["reason"], got["code"]):
        assert (v, reason, code) == load.expected(a), a


def test_cli_scheduler_jsonl_matches_the_single_process_command(mail_world, cluster):
    from test_cli_verify import CASES
    text = "".join(a + "\n" for a, _, _ in CASES)
    opts = ["--port", "2525", "--dns", "127.0.0.1:5353", "--format", "jsonl"]
    one = cli(*opts, stdin=text)
    many = cli("--scheduler", cluster.scheduler.address, *opts, stdin=text)
    assert one.returncode == 0 and many.returncode == 0, (one.stderr, many.stderr)
    one = {j["address"]: j for j in map(json.loads, one.stdout.splitlines())}
    many = [json.loads(line) for line in many.stdout.splitlines()]
    assert sorted(j["address"] for j in many) == sorted(a for a, _, _ in CASES)
    for j in many:
        assert list(j) == list(one[j["address"]])         # the same record shape
        want = next((v, r) for a, v, r in CASES if a == j["address"])
        assert (j["verdict"], j["reason"]) == want, j


def test_cli_parquet_without_a_cluster(sink_world, tmp_path):
    src = tmp_path / "list.txt"
    src.write_text("".join(a + "\n" for a in addresses(500, 1000)) + "# a comment\nbad\n")
    out = tmp_path / "out.parquet"
    r = cli(str(src), "-o", str(out), "--port", str(sink_world["port"]),
            "--dns", sink_world["dns_servers"])
    assert r.returncode == 0, r.stderr
    got = pd.read_parquet(out)
    assert len(got) == 501
    assert list(got.columns) == list(smtpcode.cli.formats.FIELDS)
    bad = got[got["address"] == "bad"].iloc[0]
    assert (bad["verdict"], bad["reason"]) == ("undeliverable", "syntaxerror")
    assert pd.isna(bad["code"])


def test_cli_csv_column_named_like_a_result_field(cluster):
    # --column text: the input column is renamed in the frame, the records still name the
    # address; invalid addresses only, so no traffic
    csv_in = "id,text\n1,not-an-address\n2,also bad\n"
    r = cli("--scheduler", cluster.scheduler.address, "--column", "text", "--format", "jsonl",
            "--dns", "127.0.0.1:9", stdin=csv_in)
    assert r.returncode == 0, r.stderr
    recs = sorted((json.loads(line) for line in r.stdout.splitlines()), key=lambda j: j["id"])
    assert [(j["id"], j["address"], j["reason"]) for j in recs] == [
        ("1", "not-an-address", "syntaxerror"), ("2", "also bad", "syntaxerror")]
    assert recs[0]["text"] is None          # the result's text: no reply


def test_cli_cluster_usage_errors(tmp_path):
    r = cli("--workers", "0", "-")
    assert r.returncode == 2 and "positive integer" in r.stderr
    for flag in (["--cache", str(tmp_path / "c.db")], ["--dedupe"], ["--ordered"]):
        r = cli("--workers", "1", *flag, "-", stdin="a@b.test\n")
        assert r.returncode == 1 and "not available with --scheduler/--workers" in r.stderr
    r = cli("--format", "parquet", "-", stdin="a@b.test\n")
    assert r.returncode == 2 and "-o FILE" in r.stderr
    r = cli("--scheduler", "tcp://127.0.0.1:1", "-", stdin="a@b.test\n", timeout=60)
    assert r.returncode == 1 and "scheduler" in r.stderr
