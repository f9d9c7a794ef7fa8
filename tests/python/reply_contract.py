"""The design's rules that every classification keeps, whatever its reason (shared by the
property test of test_classify.py and the corpus-wide check of test_corpus.py)."""
import smtpcode

HARD_BOUNCE_REASONS = ("userunknown", "hostunknown", "hasmoved", "notaccept")


def assert_reply_contract(r):
    assert r.reason in smtpcode.reasons()
    assert r.hard_bounce in (True, False) and r.retry in (True, False)
    if r.hard_bounce:
        assert r.reason in HARD_BOUNCE_REASONS
        assert not r.temporary and not r.retry
    if r.temporary:
        assert r.retry
    if r.greylisted:
        assert r.temporary or r.code is None
        assert r.retry and 0 < r.retry_after <= 86400
    if r.kind == "success":
        assert r.reason == "delivered" and not r.retry
