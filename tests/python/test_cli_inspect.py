"""`smtpcode verify` shows what the address itself tells: disposable, role, free_provider and
suggestion as csv/jsonl columns, and compact flags in the table; --disposable sets the policy.
The world: dnsmasq (tests/fixtures/dns/conf.d/inspect.conf) and Postfix + smtp-sink.
Expectations are written by hand from issue 13."""
import csv
import io
import json
import subprocess
import sys

BASE = ["--from", "probe@probe.test", "--helo", "probe.test", "--port", "2525", "--dns",
        "127.0.0.1:5353", "--timeout", "5", "--deadline", "60", "--no-catch-all"]
ADDRS = "postmaster@users.mta.test\nsomeone@mailinator.com\ntaro@gmail.con\n"


def verify(*args):
    r = subprocess.run([sys.executable, "-m", "smtpcode", "verify", "-", *args, *BASE],
                       input=ADDRS, capture_output=True, text=True, timeout=90)
    assert r.returncode in (0, 1), r.stderr
    return r.stdout


def test_jsonl_and_csv_columns(mail_world):
    recs = {d["address"]: d for d in map(json.loads, verify("--format", "jsonl").splitlines())}
    pick = lambda d: (d["verdict"], d["disposable"], d["role"], d["free_provider"], d["suggestion"])
    assert pick(recs["postmaster@users.mta.test"]) == ("deliverable", False, True, False, None)
    assert pick(recs["someone@mailinator.com"]) == ("risky", True, False, False, None)
    assert pick(recs["taro@gmail.con"]) == ("undeliverable", False, False, False,
                                            "taro@gmail.com")
    rows = {r["address"]: r for r in csv.DictReader(io.StringIO(verify("--format", "csv")))}
    assert (rows["taro@gmail.con"]["suggestion"], rows["someone@mailinator.com"]["disposable"],
            rows["postmaster@users.mta.test"]["role"]) == ("taro@gmail.com", "true", "true")


def test_table_flags_and_policy_option(mail_world):
    lines = verify("--format", "table", "--disposable", "undeliverable").splitlines()
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[1:]}
    assert rows["someone@mailinator.com"][0] == "undeliverable"
    assert "disp" in rows["someone@mailinator.com"][-2].split(",")
    assert "role" in rows["postmaster@users.mta.test"][-2].split(",")
    assert rows["taro@gmail.con"][:2] == ["undeliverable", "hostunknown"]
    assert "typo:gmail.com" in " ".join(rows["taro@gmail.con"])
