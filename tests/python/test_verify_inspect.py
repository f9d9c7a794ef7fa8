"""verify() results carry the inspection fields, with the route the probe found as the typo's
DNS fact and the disposable policy applied. The world: dnsmasq (tests/fixtures/dns/conf.d/
inspect.conf: mailinator.com and gmaill.com mail to smtp-sink, gmail.con and yahoo.co.jpp do
not exist) and Postfix (users.mta.test). Expectations are written by hand from issue 13."""
import pytest

import smtpcode
from fixture_mta import DNS_SERVERS, PORT


def verify(addresses, **kw):
    results = list(smtpcode.verify(addresses, mail_from="probe@probe.test", helo="probe.test",
                                   port=PORT, dns_servers=DNS_SERVERS, timeout=5.0,
                                   deadline=60.0, **kw))
    assert sorted(r.address for r in results) == sorted(addresses)
    return {r.address: r for r in results}


def test_fields_and_default_policy(mail_world):
    # catch_all off: smtp-sink takes any local part, and a catch-all domain is risky anyway;
    # here the disposable policy alone must make the verdict
    r = verify(["alice@users.mta.test", "postmaster@users.mta.test", "someone@mailinator.com",
                "taro@gmail.con", "hanako@yahoo.co.jpp", "taro@gmaill.com", "a..b@x.test"],
               catch_all=False)
    alice = r["alice@users.mta.test"]
    assert (alice.verdict, alice.disposable, alice.role, alice.free_provider,
            alice.suggestion) == ("deliverable", False, False, False, None)
    # a role account keeps its verdict: it is only flagged
    pm = r["postmaster@users.mta.test"]
    assert (pm.role, pm.verdict, pm.disposable) == (True, "deliverable", False)
    # smtp-sink accepts it, so SMTP alone says deliverable; the default policy says risky
    d = r["someone@mailinator.com"]
    assert (d.disposable, d.reason, d.verdict) == (True, "delivered", "risky")
    # NXDOMAIN: undeliverable, and the meant address is suggested
    t = r["taro@gmail.con"]
    assert (t.verdict, t.reason, t.suggestion) == ("undeliverable", "hostunknown",
                                                   "taro@gmail.com")
    assert r["hanako@yahoo.co.jpp"].suggestion == "hanako@yahoo.co.jp"
    # a domain with a mail route is real: no suggestion, though inspect() alone has a candidate
    g = r["taro@gmaill.com"]
    assert (g.verdict, g.suggestion) == ("deliverable", None)
    assert smtpcode.inspect("taro@gmaill.com").suggestion == "taro@gmail.com"
    assert smtpcode.inspect("taro@gmaill.com", mx=True).suggestion is None
    bad = r["a..b@x.test"]
    assert (bad.verdict, bad.disposable, bad.role, bad.free_provider, bad.suggestion) == (
        "undeliverable", False, False, False, None)
    assert set(alice.to_dict()) >= {"disposable", "role", "free_provider", "suggestion"}


def test_policy_undeliverable(mail_world):
    r = verify(["someone@mailinator.com", "alice@users.mta.test"], disposable="undeliverable",
               catch_all=False)
    assert r["someone@mailinator.com"].verdict == "undeliverable"
    assert r["alice@users.mta.test"].verdict == "deliverable"


def test_policy_is_checked():
    with pytest.raises(ValueError):
        smtpcode.verify(["a@b.test"], mail_from="p@p.test", helo="p.test", disposable="drop")
