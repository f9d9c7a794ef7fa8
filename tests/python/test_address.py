"""parse_address() through the Python binding: the shared vectors (tests/vectors/addresses.tsv),
the Address type, and hypothesis properties (nothing accepted holds a control character; the
normalised form parses back to itself)."""
import pickle
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smtpcode
import vectors

ROWS = vectors.load("addresses.tsv")
# Unicode's controls, invisible format characters and line/paragraph separators: none may appear
# in an accepted address (they end or disguise SMTP command lines).
CONTROL_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


def is_control(ch):
    return unicodedata.category(ch) in CONTROL_CATEGORIES


def flags_of(a):
    return {f for f in ("literal", "smtputf8", "utf8_local") if getattr(a, f)}


def row_id(i, row):
    return "%d-%s" % (i + 1, row["kind"].decode())


def test_table_size():
    assert len(ROWS) >= 150
    kinds = {r["kind"] for r in ROWS}
    assert b"ok" in kinds and len(kinds) > 20


@pytest.mark.parametrize("row", ROWS, ids=[row_id(i, r) for i, r in enumerate(ROWS)])
def test_vector(row):
    raw = row["input"]
    try:
        as_text = raw.decode("utf-8")
    except UnicodeDecodeError:
        as_text = None
    args = (raw, as_text) if as_text is not None else (raw,)
    for arg in args:
        if row["kind"] == b"ok":
            a = smtpcode.parse_address(arg)
            assert a.address == vectors.text(row["address"])
            assert a.local_part == vectors.text(row["local_part"])
            assert a.domain == vectors.text(row["domain"])
            assert a.ascii_domain == vectors.text(row["ascii_domain"])
            assert a.ascii_address == a.local_part + "@" + a.ascii_domain
            want = set() if row["flags"] == b"-" else set(row["flags"].decode().split(","))
            assert flags_of(a) == want
            assert smtpcode.parse_address(a.address) == a
        else:
            with pytest.raises(smtpcode.AddressError) as info:
                smtpcode.parse_address(arg)
            assert info.value.kind == row["kind"].decode()
            assert info.value.offset == int(row["offset"])
            assert "at offset %d" % info.value.offset in str(info.value)


def test_error_is_a_value_error():
    with pytest.raises(ValueError):
        smtpcode.parse_address("a..b@example.com")
    assert issubclass(smtpcode.AddressError, ValueError)
    assert smtpcode.AddressError("x").kind is None  # raised by hand: no kind


def test_lone_surrogate_is_invalid_utf8():
    with pytest.raises(smtpcode.AddressError) as info:
        smtpcode.parse_address("é\udc80@example.com")
    assert info.value.kind == "invalid_utf8"
    assert info.value.offset == 2  # octets of what precedes it


def test_wrong_types_raise_type_error():
    for bad in (None, 3, ["a@b.c"], object()):
        with pytest.raises(TypeError):
            smtpcode.parse_address(bad)


def test_bytes_like():
    assert smtpcode.parse_address(bytearray(b"a@B.com")).address == "a@b.com"
    assert smtpcode.parse_address(memoryview(b"a@B.com")).address == "a@b.com"


def test_address_type():
    a = smtpcode.parse_address("Pelé@Bücher.DE")
    assert isinstance(a, smtpcode.Address)
    assert repr(a) == "Address('Pelé@bücher.de')"
    assert eval(repr(a), {"Address": smtpcode.Address}) == a
    assert str(a) == "Pelé@bücher.de"
    assert a.ascii_address == "Pelé@xn--bcher-kva.de"
    assert smtpcode.Address("pelé@bücher.de") != a  # local parts keep their case
    assert len({a, smtpcode.Address("Pelé@BÜCHER.de")}) == 1
    for field in ("address", "domain", "local_part", "smtputf8"):
        with pytest.raises(AttributeError):
            setattr(a, field, "x")
    with pytest.raises(AttributeError):
        a.extra = 1
    with pytest.raises(smtpcode.AddressError):
        smtpcode.Address("not an address")
    assert pickle.loads(pickle.dumps(a)) == a


def check_accepted(a):
    for field in (a.address, a.ascii_address, a.local_part, a.domain, a.ascii_domain):
        assert not any(is_control(ch) for ch in field), ascii(field)
    assert a.ascii_address.isascii() or a.utf8_local
    assert a.ascii_domain.isascii()
    assert len(a.address.encode()) <= 254 and len(a.ascii_address) <= 254
    assert len(a.local_part.encode()) <= 64
    again = smtpcode.parse_address(a.address)
    assert again.address == a.address
    assert again.ascii_address == a.ascii_address
    assert smtpcode.parse_address(a.ascii_address).address == a.ascii_address


def parse_or_none(x):
    try:
        return smtpcode.parse_address(x)
    except smtpcode.AddressError as e:
        assert e.kind and e.offset is not None
        return None


# --- properties -------------------------------------------------------------------------------

ATEXT = "abcXYZ019!#$%&'*+-/=?^_`{|}~"
ODD = "\"\\ .@[]()<>,;:\r\n\t\x00\x7f\x85\u00a0\u00ad\u200b\u200d\u200e\u202e\u2028\u2066\u2069\ufeff"
local_chars = st.one_of(st.sampled_from(ATEXT + "."), st.sampled_from(ODD),
                        st.characters(min_codepoint=0x80, max_codepoint=0x2FFFF,
                                      blacklist_categories=("Cs",)))
dot_atom = st.lists(st.text(st.sampled_from(ATEXT), min_size=1, max_size=6), min_size=1,
                    max_size=4).map(".".join)
quoted = st.text(st.one_of(st.sampled_from(ATEXT + ODD), st.characters()), max_size=20).map(
    lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
local = st.one_of(dot_atom, quoted, st.text(local_chars, min_size=1, max_size=12))
label = st.one_of(st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?\Z"),
                  st.text(st.one_of(st.sampled_from("abcü例пαé-"), st.characters(
                      min_codepoint=0x80, max_codepoint=0xFFFF, blacklist_categories=("Cs",))),
                      min_size=1, max_size=6))
domain = st.one_of(st.lists(label, min_size=1, max_size=4).map(".".join),
                   st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: "[%d.%d.%d.%d]" % t),
                   st.sampled_from(["[IPv6:2001:db8::1]", "[IPv6:::1]", "[ipv6:0:0:0:0:0:0:0:1]"]))
addresses = st.builds(lambda l, d: l + "@" + d, local, domain)

PROPS = settings(max_examples=1000, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(addresses)
def test_property_shaped_addresses(s):
    a = parse_or_none(s)
    if a is None:
        return
    assert not any(is_control(ch) for ch in s)  # an input with a control is never accepted
    check_accepted(a)


@PROPS
@given(st.text(max_size=40))
def test_property_any_text(s):
    a = parse_or_none(s)
    if a is not None:
        assert not any(is_control(ch) for ch in s)
        check_accepted(a)


@PROPS
@given(st.binary(max_size=40))
def test_property_any_bytes(b):
    a = parse_or_none(b)
    if a is not None:
        b.decode("utf-8")  # accepted bytes are valid UTF-8
        check_accepted(a)


@PROPS
@given(addresses, st.integers(min_value=0), st.sampled_from(
    ["\r", "\n", "\r\n", "\x00", "\x7f", "\x1b", "\x85", "\u2028", "\u202e", "\u2066", "\ufeff"]))
def test_property_injected_control_is_rejected(s, where, ctl):
    i = where % (len(s) + 1)
    with pytest.raises(smtpcode.AddressError) as info:
        smtpcode.parse_address(s[:i] + ctl + s[i:])
    assert info.value.kind in ("control_char", "invalid_utf8")


def test_shaped_strategy_reaches_valid_addresses():
    """Guards the properties above against a strategy that never produces a valid address."""
    accepted = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(addresses)
    def collect(s):
        if parse_or_none(s) is not None:
            accepted.append(s)

    collect()
    assert len(accepted) > 30
