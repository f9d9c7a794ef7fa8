"""What the two measures on other projects' bounces (test_bounce_flufl.py,
test_bounce_bounceparser.py) ask of the parser's records: which of them report a failure (or a
delay), and whether they name exactly the addresses the other project's tests expect."""

NOT_FAILED = ("delayed", "delivered", "relayed", "expanded")


def picked(records, temporary=False):
    """The bounce records of failures (temporary: of delays)."""
    return [r for r in records if r.kind == "bounce" and
            (r.action == "delayed" if temporary else r.action not in NOT_FAILED)]


def names(records):
    """Each record's addresses, lower case: its recipient and its original recipient."""
    return [{x.lower() for x in (r.recipient, r.original_recipient) if x} for r in records]


def same_recipients(records, addrs):
    """Every address of addrs (lower case) is named by a record, and every record names one."""
    ns = names(records)
    return all(any(a in n for n in ns) for a in addrs) and all(n & addrs for n in ns)
