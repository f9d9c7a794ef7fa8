"""The result cache across runs (cache=PATH): a real SQLite file, the Postfix world behind it.
What must hold (issue 12): a warm run opens no connection; stale rows are probed again; unknown
results are not kept by default; a killed run keeps the rows written before; two processes
share one file; a file that is not a database is a clear error."""
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import smtpcode
from fixture_mta import DNS_SERVERS, PORT
from verify_run import opts, run_map


def connects(mta_log, mark):
    return [ln for ln in mta_log.lines_since(mark) if "/smtpd[" in ln and "connect from" in ln
            and "disconnect" not in ln]


CASES = {
    "alice@users.mta.test": ("deliverable", "delivered"),
    "nobody@users.mta.test": ("undeliverable", "userunknown"),
    "moved@users.mta.test": ("undeliverable", "hasmoved"),
    "x1@catchall.mta.test": ("risky", "delivered"),
}


def test_warm_run_opens_no_connection(mail_world, mta_log, tmp_path):
    db = str(tmp_path / "c.sqlite")
    cold = run_map(CASES, cache=db)
    assert not any(r.cached for r in cold.values())
    time.sleep(0.05)
    mark = mta_log.mark()
    warm = run_map(CASES, cache=db)
    for a, want in CASES.items():
        r = warm[a]
        assert (r.verdict, r.reason) == want, r.to_dict()
        assert r.cached and r.age > 0
        # the stored reply comes back decoded, with the same classification
        assert r.reply.code == cold[a].reply.code and r.reply.status == cold[a].reply.status
        assert r.reply.text == cold[a].reply.text
        assert r.mx == "mx1.mta.test" and r.catch_all == cold[a].catch_all
    time.sleep(1.0)  # postlogd writes asynchronously
    assert connects(mta_log, mark) == []


def test_expired_rows_are_probed_again(mail_world, mta_log, tmp_path):
    db = str(tmp_path / "c.sqlite")
    run_map(CASES, cache=db)
    time.sleep(0.2)
    # positive rows older than 0.1 s are stale now; negative ones (3 days) are not
    res = run_map(CASES, cache=db, cache_positive_ttl=0.1)
    assert not res["alice@users.mta.test"].cached
    assert not res["x1@catchall.mta.test"].cached
    assert res["nobody@users.mta.test"].cached
    assert res["alice@users.mta.test"].verdict == "deliverable"
    # and the probe refreshed the row: fresh again under the default lifetime
    assert run_map(["alice@users.mta.test"], cache=db)["alice@users.mta.test"].cached


def test_unknown_not_kept_unless_asked(mail_world, tmp_path):
    db = str(tmp_path / "c.sqlite")
    a = "alice@down.mta.test"
    run_map([a], cache=db)
    assert not run_map([a], cache=db)[a].cached
    run_map([a], cache=db, cache_unknown_ttl=600)
    r = run_map([a], cache=db, cache_unknown_ttl=600)[a]
    assert r.cached and (r.verdict, r.reason) == ("unknown", "networkerror")
    assert r.error == "CLOSED"


def test_refresh_probes_again_and_stores(mail_world, mta_log, tmp_path):
    db = str(tmp_path / "c.sqlite")
    run_map(["alice@users.mta.test"], cache=db)
    mark = mta_log.mark()
    r = run_map(["alice@users.mta.test"], cache=db, refresh=True)["alice@users.mta.test"]
    assert not r.cached
    time.sleep(1.0)
    assert len(connects(mta_log, mark)) == 1


def test_catch_all_answer_is_remembered(mail_world, tmp_path):
    db = str(tmp_path / "c.sqlite")
    run_map(["x1@catchall.mta.test"], cache=db)
    # a new address of the domain: probed, but without the random-address RCPT
    r = run_map(["x2@catchall.mta.test"], cache=db, transcript=True)["x2@catchall.mta.test"]
    assert not r.cached and r.verdict == "risky" and r.catch_all is True
    assert "smtpc-" not in r.transcript
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT catch_all FROM domains WHERE domain = 'catchall.mta.test'"
                         ).fetchone() == (1,)


def probe_rcpts(mta_log, mark):
    """The catch-all probes (RCPT TO a random smtpc-... address) Postfix rejected since mark."""
    return [ln for ln in mta_log.lines_since(mark) if "reject: RCPT" in ln and "<smtpc-" in ln]


def test_catch_all_answer_after_the_last_result_is_stored(mail_world, mta_log, tmp_path):
    # Every address of users.mta.test here is rejected: each result goes out with its 550,
    # before the probe RCPT behind them is answered (so no result carries the answer).
    db = str(tmp_path / "c.sqlite")
    rejected = ["nobody@users.mta.test", "moved@users.mta.test"]
    mark = mta_log.mark()
    cold = run_map(rejected, cache=db)
    assert all(r.verdict == "undeliverable" and r.catch_all is None for r in cold.values())
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT catch_all FROM domains WHERE domain = 'users.mta.test'"
                         ).fetchone() == (0,)
    time.sleep(1.0)  # postlogd writes asynchronously
    assert len(probe_rcpts(mta_log, mark)) == 1          # the probe the answer came from
    # the same input again: all from the file, no connection
    mark = mta_log.mark()
    warm = run_map(rejected, cache=db)
    assert all(r.cached for r in warm.values())
    time.sleep(1.0)
    assert connects(mta_log, mark) == []
    # a new address of the domain is probed, without a catch-all probe: the answer is used
    mark = mta_log.mark()
    r = run_map(["alice@users.mta.test"], cache=db)["alice@users.mta.test"]
    assert (r.cached, r.verdict, r.catch_all) == (False, "deliverable", False)
    time.sleep(1.0)
    assert len(connects(mta_log, mark)) == 1 and probe_rcpts(mta_log, mark) == []


def test_cached_results_are_inspected_as_live_ones(mail_world, mta_log, tmp_path):
    # disposable, role, free_provider and suggestion are made again on reading, by the rules
    # of a live result (tests/fixtures/dns/conf.d/inspect.conf: gmail.con and yahoo.co.jpp do
    # not exist; gmail.com has no answer in this world: unknown, kept here for 600 s)
    db = str(tmp_path / "c.sqlite")
    fields = ("verdict", "reason", "disposable", "role", "free_provider", "suggestion")
    want = {
        "taro@gmail.con": ("undeliverable", "hostunknown", False, False, False,
                           "taro@gmail.com"),
        "hanako@yahoo.co.jpp": ("undeliverable", "hostunknown", False, False, False,
                                "hanako@yahoo.co.jp"),
        "postmaster@users.mta.test": ("deliverable", "delivered", False, True, False, None),
        "someone@mailinator.com": ("risky", "delivered", True, False, False, None),
        "taro@gmail.com": ("unknown", "networkerror", False, False, True, None),
        "moved@users.mta.test": ("undeliverable", "hasmoved", False, False, False, None),
    }
    kw = dict(cache=db, cache_unknown_ttl=600, catch_all=False)
    cold = run_map(want, **kw)
    mark = mta_log.mark()
    warm = run_map(want, **kw)
    for a, fs in want.items():
        assert not cold[a].cached and warm[a].cached, a
        assert tuple(getattr(cold[a], f) for f in fields) == fs, (a, cold[a].to_dict())
        assert tuple(getattr(warm[a], f) for f in fields) == fs, (a, warm[a].to_dict())
    time.sleep(1.0)
    assert connects(mta_log, mark) == []


def test_case_of_the_domain_shares_a_row(mail_world, tmp_path):
    db = str(tmp_path / "c.sqlite")
    run_map(["alice@users.mta.test"], cache=db)
    r = run_map(["alice@USERS.mta.test"], cache=db)["alice@USERS.mta.test"]
    assert r.cached and r.address == "alice@USERS.mta.test"


CHILD = textwrap.dedent("""
    import sys, smtpcode
    db, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    addrs = ["bulk%04d@users.mta.test" % i for i in range(first, last)]
    for r in smtpcode.verify(addrs, mail_from="probe@probe.test", helo="probe.test",
                             port=PORT, dns_servers=DNS, cache=db, rcpt_per_session=RCPTS,
                             host_pause=HOST_PAUSE, per_host=PER_HOST, catch_all=False):
        print(r.address, r.verdict, flush=True)
""")


def child(db, first, last, host_pause=0.0, per_host=2, rcpts=50):
    code = CHILD.replace("PORT", str(PORT)).replace("DNS", repr(DNS_SERVERS)) \
                .replace("HOST_PAUSE", repr(host_pause)).replace("PER_HOST", str(per_host)) \
                .replace("RCPTS", str(rcpts))
    return subprocess.Popen([sys.executable, "-c", code, db, str(first), str(last)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_keeps_rows_written_before(mail_world, tmp_path):
    db = str(tmp_path / "c.sqlite")
    p = child(db, 1, 401, host_pause=0.05, per_host=1, rcpts=5)  # slow: killed in the middle
    seen = []
    for line in p.stdout:
        seen.append(line.split()[0])
        if len(seen) == 30:
            p.kill()                            # SIGKILL: no cleanup at all
            break
    p.wait()
    assert p.returncode == -9
    with sqlite3.connect(db) as c:
        rows = {a for (a,) in c.execute("SELECT address FROM results")}
    assert set(seen) <= rows                    # every reported result was already stored
    assert len(rows) < 400                      # and it was killed before the end
    # the file is fine for the next run: the reported ones come from it
    res = run_map(seen, cache=db)
    assert all(r.cached and r.verdict == "deliverable" for r in res.values())


def test_two_processes_share_one_file(mail_world, tmp_path):
    db = str(tmp_path / "c.sqlite")
    a, b = child(db, 1, 201), child(db, 201, 401)
    outs = [p.communicate(timeout=120) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    assert sum(len(o.splitlines()) for o, _ in outs) == 400
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM results").fetchone() == (400,)
        assert c.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    res = run_map(["bulk%04d@users.mta.test" % i for i in range(1, 401)], cache=db)
    assert all(r.cached for r in res.values())


def test_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(os.urandom(8192))
    with pytest.raises(OSError) as e:
        smtpcode.verify(["alice@users.mta.test"], **opts(cache=str(bad)))
    assert str(bad) in str(e.value) and "cache" in str(e.value)
    with pytest.raises(OSError):
        smtpcode.verify(["alice@users.mta.test"], **opts(cache=str(tmp_path)))  # a directory
    with pytest.raises(OSError):
        smtpcode.verify(["alice@users.mta.test"],
                        **opts(cache=str(tmp_path / "no" / "such" / "dir.sqlite")))


def test_bad_cache_options():
    with pytest.raises(ValueError):
        smtpcode.verify(["a@b.test"], **opts(cache_positive_ttl=-1))
