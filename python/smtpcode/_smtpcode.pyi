# Type stubs for smtpcode._smtpcode (the C extension). Each module keeps its own section.
from typing import Iterator, Optional, Tuple, Union

__version__: str

# --- core: decode, classify, explain, Reader (reply.c, decode.c, classify.c, catalog.c) ---

class ReplyError(ValueError): ...

class Reply:
    @property
    def code(self) -> Optional[int]: ...
    @property
    def status(self) -> Optional[str]: ...
    @property
    def text(self) -> str: ...
    @property
    def lines(self) -> Tuple[str, ...]: ...
    @property
    def kind(self) -> str: ...
    @property
    def temporary(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def hard_bounce(self) -> bool: ...
    @property
    def retry(self) -> bool: ...
    @property
    def retry_after(self) -> Optional[int]: ...
    @property
    def greylisted(self) -> bool: ...
    @property
    def provider(self) -> Optional[str]: ...
    @property
    def command(self) -> Optional[str]: ...
    @property
    def code_source(self) -> Optional[str]: ...  # "text", "given", "provider" or None
    @property
    def code_inferred(self) -> Optional[int]: ...  # the provider's documented code; code stays None
    def to_dict(self) -> dict: ...

class Explanation(Tuple[str, str, str, str]):
    @property
    def key(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def causes(self) -> str: ...
    @property
    def fixes(self) -> str: ...

class Reader:
    def __init__(self, *, max_line: int = 0, max_lines: int = 0, max_reply: int = 0) -> None: ...
    def feed(self, data: bytes) -> None: ...
    def __iter__(self) -> Iterator[Reply]: ...
    def __next__(self) -> Reply: ...
    @property
    def pending(self) -> int: ...

def decode(text: Union[str, bytes], *, command: Optional[str] = None, host: Optional[str] = None) -> Reply: ...
def classify(code: Optional[int], status: Optional[str], text: Union[str, bytes, None], *,
             command: Optional[str] = None, host: Optional[str] = None) -> Reply: ...
def explain(key: Union[int, str], lang: str = "en") -> Explanation: ...
def reasons() -> Tuple[str, ...]: ...

# --- address (address.c) ---
# SMTPC-SECTION: address
class AddressError(ValueError):
    """An invalid mail address."""
    kind: Optional[str]    # "consecutive_dots", "control_char", "idna" ... (smtpc_address_kind_name)
    offset: Optional[int]  # octet of the UTF-8 input where the problem was found

class Address:
    """A parsed RFC 5321 mailbox (immutable); equal and hashed by its normalised text."""
    def __init__(self, address: Union[str, bytes]) -> None: ...
    @property
    def address(self) -> str: ...  # normalised: local_part "@" domain
    @property
    def ascii_address(self) -> str: ...  # local_part "@" ascii_domain (the form to send)
    @property
    def local_part(self) -> str: ...
    @property
    def domain(self) -> str: ...  # lower-cased, U-labels kept; canonical literal
    @property
    def ascii_domain(self) -> str: ...  # A-labels
    @property
    def literal(self) -> bool: ...
    @property
    def smtputf8(self) -> bool: ...  # the normalised address has non-ASCII
    @property
    def utf8_local(self) -> bool: ...
    @property
    def disposable(self) -> bool: ...  # see inspect(); these four are inspect(address)'s
    @property
    def role(self) -> bool: ...
    @property
    def free_provider(self) -> bool: ...
    @property
    def suggestion(self) -> Optional[str]: ...  # a candidate: no DNS was asked
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

def parse_address(address: Union[str, bytes]) -> Address: ...
# SMTPC-END: address

# --- dns (dns.c) ---
# SMTPC-SECTION: dns
from typing import Iterable, List

class MX(Tuple[int, str, List[str]]):
    """One mail exchanger (a struct sequence: immutable, also a tuple)."""
    @property
    def preference(self) -> int: ...  # 0 for the implicit MX
    @property
    def host(self) -> str: ...  # lower case, no trailing dot
    @property
    def addresses(self) -> List[str]: ...  # IPv4/IPv6 text, preferred family first

class Route(Tuple[str, List[MX], bool, bool, Optional[str], int]):
    """Where mail for a domain goes (a struct sequence)."""
    @property
    def domain(self) -> str: ...
    @property
    def mx(self) -> List[MX]: ...  # by preference; equal preferences in random order
    @property
    def implicit(self) -> bool: ...  # no MX: the one entry is the domain's own A/AAAA
    @property
    def null_mx(self) -> bool: ...  # MX 0 "." (RFC 7505): the domain takes no mail
    @property
    def error(self) -> Optional[str]: ...  # "nxdomain" "servfail" "refused" "timeout" "no-address"
    @property
    def ttl(self) -> int: ...

# Blocking (the GIL is released). domain: ASCII (A-labels). dns_servers None = the system
# configuration. DNS failures are Route.error; a bad domain or option raises ValueError.
# family: "prefer_ipv4" (default) | "prefer_ipv6" | "ipv4_only" | "ipv6_only"
def resolve(domain: str, *, dns_servers: Union[str, Iterable[str], None] = None,
            timeout: float = 5.0, tries: Optional[int] = None,
            family: Optional[str] = None) -> Route: ...
# SMTPC-END: dns

# --- verify (engine.c) ---
# SMTPC-SECTION: verify
import os
from typing import Iterable, Sequence

class Result:
    """One address's verification result (immutable)."""
    @property
    def address(self) -> str: ...
    @property
    def verdict(self) -> str: ...  # "deliverable" | "undeliverable" | "risky" | "unknown"
    @property
    def reason(self) -> str: ...
    @property
    def reply(self) -> Optional[Reply]: ...
    @property
    def mx(self) -> Optional[str]: ...
    @property
    def mx_address(self) -> Optional[str]: ...
    @property
    def catch_all(self) -> Optional[bool]: ...
    @property
    def tls(self) -> bool: ...
    @property
    def greylisted(self) -> bool: ...
    @property
    def error(self) -> Optional[str]: ...
    @property
    def detail(self) -> Optional[str]: ...
    @property
    def duration(self) -> float: ...
    @property
    def transcript(self) -> Optional[str]: ...
    @property
    def disposable(self) -> bool: ...
    @property
    def role(self) -> bool: ...
    @property
    def free_provider(self) -> bool: ...
    @property
    def suggestion(self) -> Optional[str]: ...  # only when the domain has no mail route
    @property
    def cached(self) -> bool: ...
    @property
    def age(self) -> float: ...
    def to_dict(self) -> dict: ...

class VerifyIterator(Iterator[Result]):
    def __iter__(self) -> "VerifyIterator": ...
    def __next__(self) -> Result: ...
    def close(self) -> None: ...
    def __enter__(self) -> "VerifyIterator": ...
    def __exit__(self, *exc: object) -> None: ...

def verify(addresses: Iterable[str], *, mail_from: str, helo: str, port: int = 25,
           dns_servers: Union[str, Sequence[str], None] = None, concurrency: int = 100,
           per_host: int = 2, rcpt_per_session: int = 50, starttls: str = "opportunistic",
           tls_verify: bool = False, catch_all: bool = True, greylist_delay: float = 60.0,
           deadline: float = 300.0, timeout: float = 30.0, transcript: bool = False,
           connect_timeout: float = 10.0, max_rejections: int = 8,
           host_pause: float = 0.1, disposable: str = "risky", proxy: Optional[str] = None,
           source_address: Union[str, Sequence[str], None] = None,
           cache: Union[str, "os.PathLike[str]", None] = None,
           cache_positive_ttl: float = 2678400.0, cache_negative_ttl: float = 259200.0,
           cache_unknown_ttl: float = 0.0, refresh: bool = False) -> VerifyIterator: ...
# SMTPC-END: verify

# SMTPC-SECTION: plan
# The planner for Python drivers (smtpcode.aio); times are microseconds of the driver's clock.
from typing import Any, Dict
class _Plan:
    def __init__(self, *, mail_from: Optional[str] = None, helo: Optional[str] = None,
                 port: int = 25, concurrency: int = 100, per_host: int = 2,
                 rcpt_per_session: int = 50, starttls: str = "opportunistic",
                 catch_all: bool = True, greylist_delay: float = 60.0, deadline: float = 300.0,
                 timeout: float = 30.0, transcript: bool = False, connect_timeout: float = 10.0,
                 max_rejections: int = 8, host_pause: float = 0.1, seed: int = 0,
                 disposable: str = "risky") -> None: ...
    def add(self, now: int, address: str, tag: int) -> bool: ...
    def end(self) -> None: ...
    def cancel(self, now: int) -> None: ...
    def tick(self, now: int) -> None: ...
    def resolved(self, now: int, token: int, route: Optional[Route]) -> bool: ...
    def connected(self, now: int, sid: int) -> bool: ...
    def read(self, now: int, sid: int, data: bytes) -> bool: ...
    def tls(self, now: int, sid: int, ok: bool) -> bool: ...
    def eof(self, now: int, sid: int, detail: Optional[str] = None, timeout: bool = False) -> bool: ...
    def released(self, now: int, sid: int) -> bool: ...
    def drain(self, now: int) -> List[Tuple[Any, ...]]: ...
    @property
    def pending(self) -> int: ...
    @property
    def done(self) -> bool: ...
    @property
    def stats(self) -> Dict[str, int]: ...
# SMTPC-END: plan

# --- bounces (_bounce.c; readers in _bounces.py) ---
# SMTPC-SECTION: bounce
class BounceError(ValueError):
    offset: int   # octet of the message where the limit was exceeded
    code: str     # "MSGLINE", "TOOMANYHEADERS", "TOOMANYPARTS", "TOODEEP"

class Bounce(Tuple[object, ...]):
    """One recipient of a bounce (kind "bounce"), an ARF report ("feedback") or an
    auto-reply ("autoreply"). A named tuple: fields by name, immutable."""
    kind: str
    recipient: Optional[str]
    action: Optional[str]
    status: Optional[str]
    diagnostic: Optional[str]
    diagnostic_type: Optional[str]
    command: Optional[str]
    rhost: Optional[str]
    reporting_mta: Optional[str]
    arrival_date: Optional[str]
    last_attempt: Optional[str]
    original_message_id: Optional[str]
    original_subject: Optional[str]
    original_from: Optional[str]
    original_to: Optional[str]
    feedback_type: Optional[str]
    mta: Optional[str]
    note: Optional[str]
    reply_code: Optional[int]
    reason: str
    hard_bounce: bool
    retry: bool
    temporary: bool
    provider: Optional[str]

def parse_bounce(message: bytes) -> list[Bounce]: ...

class _Mbox:
    def __init__(self) -> None: ...
    def feed(self, data: bytes, eof: bool = False) -> list[bytes]: ...
# SMTPC-END: bounce
# --- inspect (inspect.c) ---
# SMTPC-SECTION: inspect
from typing import Dict

class Inspection(Tuple[bool, bool, bool, Optional[str]]):
    """What an address tells besides SMTP (a struct sequence: immutable, also a tuple)."""
    @property
    def disposable(self) -> bool: ...  # the domain, or one above it, is a throw-away service
    @property
    def role(self) -> bool: ...  # info@, postmaster@, sales@ ...
    @property
    def free_provider(self) -> bool: ...  # gmail.com, yahoo.co.jp, docomo.ne.jp ...
    @property
    def suggestion(self) -> Optional[str]: ...  # the address with its domain corrected

def inspect(address: Union[str, bytes], *, mx: Optional[bool] = None) -> Inspection: ...
def inspect_tables() -> Dict[str, int]: ...
# SMTPC-END: inspect
