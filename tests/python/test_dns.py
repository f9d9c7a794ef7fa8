"""smtpcode.resolve against a real dnsmasq on 127.0.0.1:5353 (tests/fixtures/dns).

Expected values are the fixture's zone data (tests/fixtures/dns/ctl, responder.py), written
here by hand. Every query goes to 127.0.0.1 only: each call passes dns_servers."""
import ipaddress
import threading
import time

import pytest

import smtpcode


@pytest.fixture
def resolve(dns_server):
    def run(domain, **kw):
        kw.setdefault("dns_servers", [dns_server])
        kw.setdefault("timeout", 2.0)
        return smtpcode.resolve(domain, **kw)
    return run


def test_two_mx_sorted_by_preference(resolve):
    r = resolve("two.test")
    assert isinstance(r, smtpcode.Route)
    assert r.error is None and not r.implicit and not r.null_mx
    assert r.domain == "two.test"
    assert [(m.preference, m.host, m.addresses) for m in r.mx] == [
        (10, "mx1.two.test", ["127.0.0.11"]),
        (20, "mx2.two.test", ["127.0.0.12"]),
    ]
    assert isinstance(r.mx[0], smtpcode.MX)
    assert 290 <= r.ttl <= 300


def test_u_label_domain_resolves_by_its_a_label(resolve):
    # the fixture serves xn--bcher-kva.test (tests/fixtures/dns/conf.d/idn.conf)
    r = resolve("b\u00fccher.test")
    assert r.error is None
    assert r.domain == "xn--bcher-kva.test"
    assert [(m.preference, m.host, m.addresses) for m in r.mx] == [
        (10, "mx.xn--bcher-kva.test", ["127.0.0.54"])]
    # IDNA2008 maps case; the root dot is allowed as for ASCII names
    assert resolve("B\u00dcCHER.test.").domain == "xn--bcher-kva.test"
    # a U-label domain that does not exist is a DNS answer, not bad input
    assert resolve("caf\u00e9.test").error == "nxdomain"


def test_case_and_root_dot_are_ignored(resolve):
    r = resolve("Two.TEST.")
    assert r.domain == "two.test"
    assert [m.host for m in r.mx] == ["mx1.two.test", "mx2.two.test"]


def test_equal_preferences_come_in_both_orders(resolve):
    orders = set()
    for _ in range(60):
        r = resolve("equal.test")
        assert [m.preference for m in r.mx] == [10, 10, 20]
        assert r.mx[2].host == "c.equal.test"
        orders.add(tuple(m.host for m in r.mx[:2]))
    assert orders == {("a.equal.test", "b.equal.test"), ("b.equal.test", "a.equal.test")}


def test_multi_homed_host(resolve):
    (mx,) = resolve("multi.test").mx
    assert mx.host == "mx.multi.test"
    v4, v6 = mx.addresses[:3], mx.addresses[3:]
    assert sorted(v4) == ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
    assert sorted(v6) == ["2001:db8::21", "2001:db8::22"]
    (mx,) = resolve("multi.test", family="prefer_ipv6").mx
    assert [ipaddress.ip_address(a).version for a in mx.addresses] == [6, 6, 4, 4, 4]
    (mx,) = resolve("multi.test", family="ipv4_only").mx
    assert sorted(mx.addresses) == ["127.0.0.21", "127.0.0.22", "127.0.0.23"]
    (mx,) = resolve("multi.test", family="ipv6_only").mx
    assert sorted(mx.addresses) == ["2001:db8::21", "2001:db8::22"]


def test_implicit_mx(resolve):
    r = resolve("implicit.test")
    assert r.implicit and not r.null_mx and r.error is None
    assert [(m.preference, m.host, m.addresses) for m in r.mx] == [
        (0, "implicit.test", ["127.0.0.31", "2001:db8::31"])]


def test_null_mx_wins_over_the_a_record(resolve):
    r = resolve("nullmx.test")
    assert r.null_mx and not r.implicit and r.error is None and r.mx == []


def test_mx_targets_that_do_not_resolve(resolve):
    assert resolve("dangling.test").error == "no-address"
    assert resolve("bare.test").error == "no-address"
    r = resolve("partial.test")
    assert r.error is None
    assert [(m.preference, m.host, m.addresses) for m in r.mx] == [
        (20, "mx.partial.test", ["127.0.0.33"])]


def test_cnames(resolve):
    (mx,) = resolve("cname.test").mx
    assert (mx.host, mx.addresses) == ("alias.cname.test", ["127.0.0.41"])
    r = resolve("aliased.test")
    assert r.domain == "aliased.test"
    assert [m.host for m in r.mx] == ["mx1.two.test", "mx2.two.test"]


@pytest.mark.parametrize("domain, error", [
    ("nope.test", "nxdomain"),
    ("a.b.nope.test", "nxdomain"),
    ("x.servfail.test", "servfail"),
    ("refused.test", "refused"),
    ("garbage.test", "servfail"),
    ("mxfail.test", "servfail"),
    ("dangling.test", "no-address"),
])
def test_failures_are_told_apart(resolve, domain, error):
    r = resolve(domain)
    assert r.error == error
    assert r.mx == [] and not r.implicit and not r.null_mx


def test_timeout(resolve):
    r = resolve("blackhole.test", timeout=0.5)
    assert r.error == "timeout" and r.mx == []


def test_hostile_mx_targets_are_dropped(resolve):
    assert [m.host for m in resolve("hostile.test").mx] == ["good.hostile.test"]
    r = resolve("many.hostile.test")
    assert [m.preference for m in r.mx] == list(range(16))
    assert r.mx[0].host == "g22.hostile.test"


def test_truncated_answer_is_retried_over_tcp(resolve):
    r = resolve("big.test")  # 20 MX: TC over UDP; the 16 best are kept
    assert [m.preference for m in r.mx] == list(range(1, 17))
    assert r.mx[0].host == "mx01.big.test" and r.mx[0].addresses == ["127.0.1.1"]


def test_negative_ttl(resolve):
    assert resolve("x.negttl.test").ttl == 2  # SOA MINIMUM 2 (RFC 2308)
    assert resolve("nope.test").ttl == 60  # no SOA: the default cap


def test_gil_released_while_resolving(resolve):
    # a thread blocked on a DNS timeout must not stop this one
    done = []
    t = threading.Thread(target=lambda: done.append(resolve("blackhole.test", timeout=1.5)))
    t.start()
    ticks = 0
    while t.is_alive():
        ticks += 1
        time.sleep(0.01)
    t.join()
    assert done[0].error == "timeout"
    assert ticks > 20


def test_threads_resolve_at_once(resolve):
    # each call runs its own loop and c-ares channel: nothing shared between threads
    domains = {"two.test": "mx1.two.test", "implicit.test": "implicit.test",
               "cname.test": "alias.cname.test", "partial.test": "mx.partial.test"}
    errors = []

    def work(name):
        for _ in range(25):
            r = resolve(name)
            if r.error is not None or r.mx[0].host != domains[name]:
                errors.append((name, r))

    threads = [threading.Thread(target=work, args=(d,)) for d in domains for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("domain", [
    "", ".", "a..b", "bad name.test", "a\r\nb.test", "-a.test", "\u2603.test", "a\u200db.test",
    "a" * 64 + ".test", ("a." * 127) + "a", "[127.0.0.1]", "x@y.test", "a\x00b.test",
])
def test_invalid_domains_raise(dns_server, domain):
    with pytest.raises(ValueError):
        smtpcode.resolve(domain, dns_servers=[dns_server])


@pytest.mark.parametrize("kw", [
    {"dns_servers": []},
    {"dns_servers": ["127.0.0.1:5353,127.0.0.2:5353"]},
    {"dns_servers": ["127.0.0.1 5353"]},
    {"dns_servers": ["not-an-address"]},
    {"timeout": 0},
    {"timeout": -1.0},
    {"timeout": float("nan")},
    {"tries": 0},
    {"family": "ipv5"},
])
def test_bad_options_raise(kw):
    with pytest.raises(ValueError):
        smtpcode.resolve("two.test", **kw)


def test_dns_servers_type(dns_server):
    with pytest.raises(TypeError):
        smtpcode.resolve("two.test", dns_servers=5)
    assert smtpcode.resolve("two.test", dns_servers=dns_server).error is None
    with pytest.raises(TypeError):
        smtpcode.resolve("two.test", "127.0.0.1:5353")  # keyword-only
