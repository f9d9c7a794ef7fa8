"""verify() against the Postfix world (fixture_mta): the options every such test starts from,
and runs that check the one rule every run must keep, exactly one result per input address."""
import smtpcode
from fixture_mta import DNS_SERVERS, PORT


def opts(**kw):
    base = dict(mail_from="probe@probe.test", helo="probe.test", port=PORT,
                dns_servers=DNS_SERVERS, timeout=5.0, deadline=60.0)
    base.update(kw)
    return base


def run(addresses, **kw):
    """All results, in the order they came."""
    addresses = list(addresses)
    results = list(smtpcode.verify(addresses, **opts(**kw)))
    got = sorted(r.address for r in results)
    assert got == sorted(addresses), "not exactly one result per input address"
    return results


def run_map(addresses, **kw):
    """The results keyed by address (the input addresses are distinct)."""
    return {r.address: r for r in run(addresses, **kw)}
