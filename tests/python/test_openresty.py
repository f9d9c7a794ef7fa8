"""The OpenResty HTTP service (examples/openresty/) in Debian's nginx with the Lua module, on
loopback: decode and explain endpoints driven by the shared vectors, and the error contract
(400 / 404 / 405 / 413 / 429 with a JSON body)."""
import json
import urllib.parse

import pytest

import vectors

DECODE = [r for r in vectors.load("decode.tsv") if not r["error"] and b"\\x" not in r["input"]]
# an empty key is no path of this endpoint (test_explain_missing_key covers it)
EXPLAIN = [r for r in vectors.load("explain.tsv") if r["key"]]


@pytest.fixture(scope="module")
def svc(http_service):
    return http_service()


@pytest.mark.parametrize("row", DECODE, ids=[r["id"].decode() for r in DECODE])
def test_decode_vector(svc, row):
    status, r = svc.json("POST", "/v1/decode", body=row["input"])
    assert status == 200, r
    assert r.get("code") == (int(row["code"]) if row["code"] else None)
    assert r.get("status") == (row["status"].decode() or None)
    assert r["kind"] == row["kind"].decode()
    assert r["temporary"] is (row["temporary"] == b"1")
    assert r["text"] == vectors.text(row["text"])
    assert len(r["lines"]) == int(row["nlines"])
    if row["reason"] != b"*":
        assert r["reason"] == row["reason"].decode()


def test_decode_json_body_passes_context(svc):
    body = json.dumps({"reply": "550 5.7.1 Message rejected", "command": "DATA", "host": "mx.example.test"})
    status, r = svc.json("POST", "/v1/decode", body=body, headers={"Content-Type": "application/json"})
    assert status == 200 and r["code"] == 550 and r["status"] == "5.7.1"


@pytest.mark.parametrize("body,why", [
    ("", "empty"),
    ('{"reply": 5}', "reply not a string"),
    ('{"text": "550 x"}', "no reply field"),
    ('{"reply": "550 x", "command": ["RCPT"]}', "command not a string"),
    ("{not json", "malformed JSON"),
])
def test_decode_bad_input_is_400_json(svc, body, why):
    status, r = svc.json("POST", "/v1/decode", body=body, headers={"Content-Type": "application/json"})
    assert status == 400, why
    assert isinstance(r["error"], str) and r["error"]


@pytest.mark.parametrize("row", EXPLAIN, ids=["%d-%s" % (i, vectors.text(r["key"])) for i, r in enumerate(EXPLAIN)])
def test_explain_vector(svc, row):
    key = vectors.text(row["key"])
    lang = row["lang"].decode()
    path = "/v1/explain/" + urllib.parse.quote(key, safe="")
    if lang != "-":
        path += "?lang=" + urllib.parse.quote(lang)
    if "\0" in key:
        # nginx itself refuses a NUL in the URI (its own 400 page, before any Lua runs)
        assert svc.request("GET", path)[0] == 400
        return
    status, r = svc.json("GET", path)
    if row["outcome"] == b"ok":
        assert status == 200, r
        assert r["key"] == row["norm_key"].decode()
        if row["title"] != b"-":
            assert vectors.text(row["title"]).lower() in r["title"].lower()
    elif row["outcome"] == b"BADLANG":
        assert status == 400 and r["error"]
    else:
        assert status in (400, 404) and r["error"]


def test_explain_missing_key(svc):
    status, r = svc.json("GET", "/v1/explain/")
    assert status == 400 and r["error"]


def test_wrong_method_and_unknown_path(svc):
    assert svc.json("GET", "/v1/decode")[0] == 405
    assert svc.json("POST", "/v1/explain/550", body="x")[0] == 405
    assert svc.json("GET", "/v2/nothing")[0] == 404


def test_body_over_limit_is_413_json(http_service):
    small = http_service(body_max="1k")
    status, r = small.json("POST", "/v1/decode", body=b"550 " + b"x" * 4096)
    assert status == 413 and "too large" in r["error"]
    # under the limit the same instance answers
    assert small.json("POST", "/v1/decode", body=b"550 5.1.1 nobody here")[0] == 200


def test_client_over_rate_is_429_json(http_service):
    limited = http_service(rate=5)
    statuses = [limited.json("POST", "/v1/decode", body=b"250 OK")[0] for _ in range(30)]
    # 30 requests inside a second or two: at most 5 a second pass, the rest are refused
    assert statuses.count(429) >= 15, statuses
    assert statuses[0] == 200
