"""`smtpcode resolve DOMAIN...`: the mail route of each domain (MX hosts by preference and their
addresses, the implicit MX, a null MX), as the probe engine would see it."""
import json
import sys

import smtpcode

from .main import EXIT_FAILURE, EXIT_OK, Failure, dns_servers, positive_float

# A definite answer from DNS: the route exists, or DNS says there is none. The others are
# failures to get an answer (exit 1).
ANSWERS = (None, "", "nxdomain", "no-address")
SAYS = {"nxdomain": "the domain does not exist (NXDOMAIN)",
        "no-address": "no mail host of the domain has an address",
        "servfail": "the DNS server failed (SERVFAIL)",
        "refused": "the DNS server refused the query or is not listening",
        "timeout": "no DNS answer in time"}


def add_parser(sub):
    sp = sub.add_parser(
        "resolve", help="show a domain's mail route (MX, addresses, null MX, implicit MX)",
        description="Resolve each DOMAIN's mail hosts as the probe engine does. Exit 1 when a "
                    "lookup failed (SERVFAIL, refused, timeout); NXDOMAIN is an answer.")
    sp.add_argument("domains", nargs="+", metavar="DOMAIN")
    sp.add_argument("--dns", action="append", metavar="SERVER",
                    help="DNS server ip[:port], repeatable (default: the system's resolvers)")
    sp.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                    help="time limit per domain (default 5)")
    sp.add_argument("--format", choices=("text", "jsonl"), default="text")
    sp.set_defaults(run=run, parser=sp)


def _route_dict(domain, route):
    return {
        "domain": domain,
        "error": route.error or None,
        "null_mx": bool(route.null_mx),
        "implicit": bool(route.implicit),
        "mx": [{"preference": m.preference, "host": m.host, "addresses": list(m.addresses)}
               for m in route.mx],
    }


def _text(d):
    if d["error"]:
        return "%s: %s\n" % (d["domain"], SAYS.get(d["error"], d["error"]))
    if d["null_mx"]:
        return "%s: null MX (RFC 7505): the domain accepts no mail\n" % d["domain"]
    head = d["domain"] + (" (no MX record: implicit MX, its own address)" if d["implicit"] else "")
    lines = [head]
    for m in d["mx"]:
        lines.append("  %-6s %-4s %-32s %s" % ("A/AAAA" if d["implicit"] else "MX",
                                               "" if d["implicit"] else m["preference"],
                                               m["host"], " ".join(m["addresses"])))
    return "\n".join(lines) + "\n"


def run(a):
    if not hasattr(smtpcode, "resolve"):
        raise Failure("this build of smtpcode has no resolver (smtpcode.resolve)")
    opts = {}
    if a.dns:
        opts["dns_servers"] = dns_servers(a.dns)
    if a.timeout is not None:
        opts["timeout"] = a.timeout
    failed = []
    for domain in a.domains:
        try:
            route = smtpcode.resolve(domain, **opts)
        except ValueError as e:            # not a domain name, bad --dns
            failed.append("%s: %s" % (domain, e))
            continue
        d = _route_dict(domain, route)
        if d["error"] not in ANSWERS:
            failed.append("%s: %s" % (domain, d["error"]))
        if a.format == "jsonl":
            sys.stdout.write(json.dumps(d, ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(_text(d))
        sys.stdout.flush()
    if failed:
        sys.stderr.write("".join("smtpcode resolve: error: %s\n" % f for f in failed))
        return EXIT_FAILURE
    return EXIT_OK
