"""verify() through real SOCKS5 proxies (dante, microsocks) and a fault proxy, in front of the
Postfix world; and source addresses seen by Postfix.  Expectations come from the fixtures'
configuration (tests/fixtures/socks/ctl, tests/fixtures/mta) and RFC 1928, written by hand;
the direct run in the same test is the other half of "the same verdicts as direct"."""
import re

import pytest

import smtpcode
from fixture_mta import PORT
from fixture_socks import COUNTING_RELAY, FAULT_DROP, FAULT_GENERAL, FAULT_TTL, PROXIES, proxy_url
from verify_run import opts, run_map


# the verdict cases of the Postfix world that do not need greylisting's wait
CASES = {
    "alice@users.mta.test": ("deliverable", "delivered"),
    "nobody@users.mta.test": ("undeliverable", "userunknown"),
    "full@users.mta.test": ("risky", "mailboxfull"),
    "disabled@users.mta.test": ("undeliverable", "suspend"),
    "moved@users.mta.test": ("undeliverable", "hasmoved"),
    "anyone@catchall.mta.test": ("risky", "delivered"),
    "alice@backup.mta.test": ("deliverable", "delivered"),     # first MX 421 at connect
    "alice@failover.mta.test": ("deliverable", "delivered"),   # first MX refuses
    "alice@notls.mta.test": ("deliverable", "delivered"),
    "alice@down.mta.test": ("unknown", "networkerror"),
    "alice@nullmx.mta.test": ("undeliverable", "notaccept"),
    "not-an-address": ("undeliverable", "syntaxerror"),
}


@pytest.fixture(scope="module")
def direct(socks_world):
    return run_map(CASES)


@pytest.mark.parametrize("name", sorted(PROXIES))
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_same_verdicts_as_direct(socks_world, direct, name, scheme):
    got = run_map(CASES, proxy=proxy_url(name, scheme))
    for address, want in CASES.items():
        r = got[address]
        assert (r.verdict, r.reason) == want, (address, r.to_dict())
        assert (r.verdict, r.reason) == (direct[address].verdict, direct[address].reason)
    # reached through the proxy, the MX is still the one DNS named
    assert got["alice@users.mta.test"].mx == "mx1.mta.test"
    assert got["alice@users.mta.test"].mx_address == "127.0.0.1"
    # the refusal of the failover domain's first MX comes from the proxy now
    assert got["alice@down.mta.test"].error == "PROXYREFUSED"


def test_socks5h_sends_names(socks_world):
    mark = socks_world.mark("microsocks.log")
    run_map(["alice@users.mta.test", "alice@notls.mta.test"], proxy=proxy_url("microsocks", "socks5h"))
    log = socks_world.since("microsocks.log", mark)
    assert "connected to mx1.mta.test:%d" % PORT in log
    assert "connected to mx-notls.mta.test:%d" % PORT in log
    assert not re.search(r"connected to 127\.0\.0\.\d+:", log)
    # and plain socks5 sends the addresses we resolved
    mark = socks_world.mark("microsocks.log")
    run_map(["alice@users.mta.test"], proxy=proxy_url("microsocks", "socks5"))
    log = socks_world.since("microsocks.log", mark)
    assert "connected to 127.0.0.1:%d" % PORT in log
    assert "mx1.mta.test" not in log


def test_socks5h_name_reaches_dante(socks_world):
    # dante logs the address it connected to; the fault proxy logs the request as received
    mark = socks_world.mark("fault-connects.log")
    run_map(["alice@users.mta.test"], proxy="socks5h://" + FAULT_TTL)
    assert "mx1.mta.test:%d" % PORT in socks_world.since("fault-connects.log", mark)


@pytest.mark.parametrize("proxy,address,error", [
    (proxy_url("dante-auth").replace("smtpcproxy:s3cret@", ""), "alice@users.mta.test", "PROXYAUTH"),
    (proxy_url("dante-auth", password="wrong"), "alice@users.mta.test", "PROXYAUTH"),
    (proxy_url("microsocks-auth", password="wrong"), "alice@users.mta.test", "PROXYAUTH"),
    (proxy_url("dante"), "alice@[127.0.0.30]", "PROXYDENIED"),      # dante's block rule
    (proxy_url("dante"), "alice@[127.0.0.9]", "PROXYREFUSED"),      # nothing listens there
    (proxy_url("microsocks"), "alice@[127.0.0.9]", "PROXYREFUSED"),
    ("socks5://" + FAULT_TTL, "alice@users.mta.test", "PROXYTTL"),
    ("socks5://" + FAULT_GENERAL, "alice@users.mta.test", "PROXY"),
    ("socks5://127.0.0.1:1099", "alice@users.mta.test", "PROXYCONNECT"),  # no proxy there
])
def test_proxy_failures(socks_world, proxy, address, error):
    r = run_map([address], proxy=proxy)[address]
    assert (r.verdict, r.reason, r.error) == ("unknown", "networkerror", error), r.to_dict()
    assert r.detail


def test_proxy_drops_mid_dialog(socks_world):
    # in clear, so that the fault proxy sees MAIL FROM and hangs up there
    mark = socks_world.mark("fault-connects.log")
    res = run_map(["alice@users.mta.test", "nobody@users.mta.test"],
              proxy="socks5://" + FAULT_DROP, starttls="off")
    for r in res.values():
        assert (r.verdict, r.reason, r.error) == ("unknown", "networkerror", "PROXYCLOSED"), r.to_dict()
    # it was retried on new sessions before giving up
    assert socks_world.since("fault-connects.log", mark).count("127.0.0.1:%d" % PORT) >= 2


@pytest.mark.parametrize("per_host", [1, 3])
def test_per_host_limit_holds_for_the_mx_behind_the_proxy(socks_world, per_host):
    mark = socks_world.mark("fault-connects.log")
    addrs = ["bulk%04d@users.mta.test" % i for i in range(1, 61)]
    res = run_map(addrs, proxy="socks5://" + COUNTING_RELAY, per_host=per_host, rcpt_per_session=5,
              host_pause=0, starttls="off")
    assert all(r.verdict == "deliverable" for r in res.values())
    opens = [int(m) for m in re.findall(r"^1087 127\.0\.0\.1:%d open=(\d+)$" % PORT,
                                         socks_world.since("fault-connects.log", mark), re.M)]
    assert len(opens) >= 12                    # 60 addresses, 5 a session
    assert max(opens) <= per_host
    if per_host > 1:
        assert max(opens) > 1                  # the count does see sessions side by side


def test_bad_proxy_option():
    for bad in ("http://127.0.0.1:8080", "socks5://", "socks5://u@127.0.0.1", "socks4://h"):
        with pytest.raises(ValueError):
            smtpcode.verify(["a@b.test"], **opts(proxy=bad))


def test_source_addresses_round_robin_per_mx(mta_log):
    """Each MX address keeps one source for the run; sources alternate across MXs."""
    mark = mta_log.mark()
    addrs = ["bulk%04d@users.mta.test" % i for i in range(1, 41)] + \
            ["bulk%04d@notls.mta.test" % i for i in range(1, 41)]
    res = run_map(addrs, source_address=["127.0.0.11", "127.0.0.12"], rcpt_per_session=10,
              host_pause=0)
    assert all(r.verdict == "deliverable" for r in res.values())
    peers = {}
    for line in mta_log.lines_since(mark):
        m = re.search(r" (mta-[a-z0-9]+)/smtpd\[\d+\]: connect from \S+\[([0-9.]+)\]", line)
        if m:
            peers.setdefault(m.group(1), set()).add(m.group(2))
    # mx1 (127.0.0.1) and mx-notls (127.0.0.5): several sessions each, one source each,
    # and not the same one
    assert len(peers) == 2, peers
    sources = [next(iter(s)) for s in peers.values()]
    assert all(len(s) == 1 for s in peers.values()), peers
    assert sorted(sources) == ["127.0.0.11", "127.0.0.12"]


def test_bad_source_address():
    with pytest.raises(ValueError):
        smtpcode.verify(["a@b.test"], **opts(source_address="not-an-ip"))
    with pytest.raises(ValueError):
        smtpcode.verify(["a@b.test"], **opts(source_address=["127.0.0.1", "mx1.mta.test"]))
